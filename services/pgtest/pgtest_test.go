package pgtest

import (
	"bufio"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatenet/gate/services/pglocal"
)

const childEnv = "GATE_PGTEST_CHILD"

func TestMain(m *testing.M) { Main(m) }

// TestNewDB: each test's database is its own, and the server does not run
// as root.
func TestNewDB(t *testing.T) {
	a, b := NewDB(t), NewDB(t)
	if a == b {
		t.Fatalf("two databases at one URL %s", a)
	}
	for i, dsn := range []string{a, b} {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`CREATE TABLE x (n BIGINT)`); err != nil {
			t.Fatalf("database %d: %v", i, err)
		}
		var user string
		if err := db.QueryRow(`SELECT current_user`).Scan(&user); err != nil || user != pglocal.Superuser {
			t.Errorf("current_user %q, %v", user, err)
		}
	}
	if os.Geteuid() == 0 {
		fi, err := os.Stat(filepath.Join(srv.Dir(), "data"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Sys().(*syscall.Stat_t).Uid == 0 {
			t.Errorf("the data directory is root's: the server would refuse to start")
		}
	}
}

// TestNothingLeft runs a test binary that starts a server, then ends as
// a failed test does (Main stops the server) or dies (the kernel kills
// the postmaster): either way no postmaster is left.
func TestNothingLeft(t *testing.T) {
	for _, mode := range []string{"fail", "die"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), childEnv+"="+mode)
			out, err := cmd.Output()
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("the child ended with %v, want a failure; output:\n%s", err, out)
			}
			var pid int
			var dir string
			sc := bufio.NewScanner(strings.NewReader(string(out)))
			for sc.Scan() {
				if _, err := fmt.Sscanf(sc.Text(), "postmaster %d %s", &pid, &dir); err == nil {
					break
				}
			}
			if pid == 0 {
				t.Fatalf("the child printed no postmaster:\n%s", out)
			}
			defer os.RemoveAll(dir)
			deadline := time.Now().Add(10 * time.Second)
			for syscall.Kill(pid, 0) == nil {
				if time.Now().After(deadline) {
					syscall.Kill(pid, syscall.SIGKILL)
					t.Fatalf("postmaster %d still runs after the test binary ended", pid)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if _, err := os.Stat(dir); mode == "fail" && err == nil {
				t.Errorf("%s is left after Main", dir)
			}
		})
	}
}

// TestChild is TestNothingLeft's child.
func TestChild(t *testing.T) {
	mode := os.Getenv(childEnv)
	if mode == "" {
		return
	}
	NewDB(t)
	fmt.Printf("postmaster %d %s\n", srv.Pid(), srv.Dir())
	if data, err := os.ReadFile(filepath.Join(srv.Dir(), "data", "postmaster.pid")); err != nil || !strings.HasPrefix(string(data), strconv.Itoa(srv.Pid())+"\n") {
		t.Errorf("postmaster.pid: %q, %v; want pid %d", data, err, srv.Pid())
	}
	if mode == "die" {
		os.Stdout.Sync()
		os.Exit(3)
	}
	t.Fatal("failing, as asked")
}
