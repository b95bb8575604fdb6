// Package pgtest runs a real PostgreSQL for a package's tests.
//
// The controller's store runs on SQLite and on PostgreSQL, and a backend
// is only as good as the tests run on it: a fake or an in-process
// imitation would not abort a transaction on a failed statement, lock a
// row or overflow a 32-bit column as PostgreSQL does. So the tests start
// the server itself, from Debian's postgresql package: one per test
// package, on the first test that asks for a database, in a temporary
// directory of its own (in memory when /dev/shm has room), listening on a
// unix socket there only (nothing on the network, no clash with a system
// cluster), with fsync off (a test's data need not survive a crash of the
// machine). Each test gets a fresh
// database. Main, called from TestMain, stops the server (immediate
// shutdown) and removes the directory when the tests end; should the test
// binary die first, the postmaster is killed with it (parent-death
// signal).
//
// PostgreSQL refuses to run as root, which CI is: then the server runs as
// the postgres user the package creates. A missing PostgreSQL fails the
// tests, with what to install; it never skips them.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql's "pgx"
)

var (
	mu       sync.Mutex
	inMain   bool
	srv      *server
	startErr error // the first start's failure, given to every test after
	dbs      int
)

// Main runs the tests, stops the server if one was started and exits with
// the tests' status. Call it from TestMain.
func Main(m *testing.M) {
	mu.Lock()
	inMain = true
	mu.Unlock()
	code := m.Run()
	mu.Lock()
	if srv != nil {
		srv.stop()
		srv = nil
	}
	mu.Unlock()
	os.Exit(code)
}

// NewDB creates an empty database for t, dropped when t ends, and returns
// its URL (postgres://, over the unix socket, no password). The first call
// starts the server.
func NewDB(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if !inMain {
		t.Fatal("pgtest: call pgtest.Main from TestMain: it stops the server the tests start")
	}
	if srv == nil && startErr == nil {
		srv, startErr = start()
	}
	if startErr != nil {
		t.Fatalf("pgtest: %v", startErr)
	}
	dbs++
	name := fmt.Sprintf("t%d", dbs)
	if _, err := srv.admin.Exec(`CREATE DATABASE ` + name + srv.strategy); err != nil {
		t.Fatalf("pgtest: creating database %s: %v", name, err)
	}
	s := srv
	t.Cleanup(func() {
		// FORCE: a connection a failed test left open does not keep it.
		if _, err := s.admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`); err != nil {
			t.Errorf("pgtest: dropping database %s: %v", name, err)
		}
	})
	return s.url(name)
}

// server is a running postmaster.
type server struct {
	dir    string // data/, the socket, log
	proc   *os.Process
	exited chan struct{} // closed when the postmaster has exited
	admin  *sql.DB       // to the postgres database, as the superuser
	// strategy is how CREATE DATABASE copies the template: FILE_COPY
	// where there is a choice (15 and later), five times as fast as the
	// default (WAL_LOG) for an empty database.
	strategy string
}

// superuser is the role initdb makes; the server trusts local connections.
const superuser = "postgres"

func start() (*server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, PostgreSQL needs a user to run as: %v (Debian's postgresql package creates the user postgres)", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	dir, err := os.MkdirTemp(memDir(), "gate-pgtest-")
	if err != nil {
		dir, err = os.MkdirTemp("", "gate-pgtest-")
	}
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*server, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", superuser, "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("%s: %v\n%s", initdb, err, out))
	}
	logPath := filepath.Join(dir, "log")
	logf, err := os.Create(logPath)
	if err != nil {
		return fail(err)
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-k", dir,
		"-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200", "-c", "max_wal_size=128MB")
	cmd.Stdout, cmd.Stderr = logf, logf
	// The postmaster dies with the test binary, killed by the kernel: the
	// signal is sent when the thread that started it ends, so that thread
	// is kept, locked to the goroutine that waits for the postmaster.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	s := &server{dir: dir, exited: make(chan struct{})}
	go func() {
		runtime.LockOSThread()
		defer close(s.exited)
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		cmd.Wait()
	}()
	if err := <-started; err != nil {
		return fail(fmt.Errorf("starting %s: %v", cmd, err))
	}
	s.proc = cmd.Process
	s.admin, err = sql.Open("pgx", s.url("postgres"))
	if err != nil {
		s.stop()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		var version int
		err := s.admin.QueryRowContext(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&version)
		if err == nil {
			if version >= 150000 {
				s.strategy = " STRATEGY = FILE_COPY"
			}
			return s, nil
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(logPath)
			s.stop()
			return nil, fmt.Errorf("%s exited at start:\n%s", cmd, log)
		case <-ctx.Done():
			log, _ := os.ReadFile(logPath)
			s.stop()
			return nil, fmt.Errorf("%s did not answer in 60 s (%v):\n%s", cmd, err, log)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// memDir is where the server's directory goes: in memory (/dev/shm) if
// it has room, which makes CREATE DATABASE 10 ms rather than 200 (it
// checkpoints, and a disk makes that cost even with fsync off); else ""
// (os.TempDir).
func memDir() string {
	var fs syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &fs); err != nil || uint64(fs.Bavail)*uint64(fs.Bsize) < 1<<30 {
		return ""
	}
	return "/dev/shm"
}

// url is database name's URL: the unix socket in the server's directory.
func (s *server) url(name string) string {
	q := url.Values{"host": {s.dir}, "sslmode": {"disable"}}
	return (&url.URL{Scheme: "postgres", User: url.User(superuser), Path: "/" + name, RawQuery: q.Encode()}).String()
}

// stop shuts the postmaster down at once (SIGQUIT: immediate shutdown, as
// pg_ctl stop -m immediate; killed if it takes more than 10 s) and removes
// its directory.
func (s *server) stop() {
	if s.admin != nil {
		s.admin.Close()
	}
	s.proc.Signal(syscall.SIGQUIT)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.proc.Kill()
		<-s.exited
	}
	os.RemoveAll(s.dir)
}

// binDir finds PostgreSQL's programs: Debian keeps initdb and postgres off
// PATH, in /usr/lib/postgresql/VERSION/bin (the newest is taken); other
// systems put them on PATH.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	if p, err := exec.LookPath("postgres"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		if isExec(filepath.Join(d, "postgres")) && isExec(filepath.Join(d, "initdb")) {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL is not installed: no /usr/lib/postgresql/*/bin/{postgres,initdb}, and none on PATH; " +
		"install Debian's postgresql package (make deps does)")
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}
