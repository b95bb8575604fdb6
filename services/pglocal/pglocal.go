// Package pglocal starts a private PostgreSQL server from the system's
// packages, for the programs that need a real one and must leave nothing
// running: the tests (services/pgtest, whose API is testing's: Main and
// NewDB(t)) and the controller benchmark (scripts/ctlbench, an ordinary
// program, which needs production's durability settings where tests want
// speed). It is not part of the gate binary.
//
// The server runs in a temporary directory of its own, listening on a
// unix socket there only (nothing on the network, no clash with a system
// cluster), trusting local connections as the superuser postgres.
// PostgreSQL refuses to run as root: as root, the server runs as the
// postgres user (Debian's postgresql package creates it). Stop shuts it
// down and removes the directory; should the program die first, the
// kernel kills the postmaster with it (parent-death signal).
package pglocal

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
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql's "pgx"
)

// Config is how a server runs.
type Config struct {
	// Durable runs the server as production should: fsync,
	// synchronous_commit and full_page_writes on (PostgreSQL's defaults,
	// as are its other settings), its directory on disk (os.TempDir).
	// Otherwise, as tests want: the three off (a test's data need not
	// survive a crash of the machine), checkpoints every 128 MB of WAL and
	// the directory in memory (/dev/shm) when there is room.
	Durable bool
	// MaxConnections is max_connections (0: 200).
	MaxConnections int
	// Settings are more "name=value" server settings (postgres -c), after
	// those above: the last wins.
	Settings []string
}

// Server is a running postmaster.
type Server struct {
	dir    string // data/, the socket, log
	proc   *os.Process
	exited chan struct{} // closed when the postmaster has exited
	admin  *sql.DB       // to the postgres database, as the superuser
	// strategy is how CREATE DATABASE copies the template: FILE_COPY
	// where there is a choice (15 and later), five times as fast as the
	// default (WAL_LOG) for an empty database.
	strategy string
	version  string
	settings []string
}

// Superuser is the role initdb makes; the server trusts local connections.
const Superuser = "postgres"

// Start initializes a cluster in a new temporary directory and starts its
// server, ready for connections when Start returns.
func Start(cfg Config) (*Server, error) {
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
	parent := ""
	if !cfg.Durable {
		parent = memDir()
	}
	dir, err := os.MkdirTemp(parent, "gate-pg-")
	if err != nil && parent != "" {
		dir, err = os.MkdirTemp("", "gate-pg-")
	}
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Server, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(err)
		}
	}
	data := filepath.Join(dir, "data")
	// --no-sync: an initdb that does not finish is started again, whatever
	// the server's settings.
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", Superuser, "--auth=trust",
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
	maxConns := cfg.MaxConnections
	if maxConns <= 0 {
		maxConns = 200
	}
	settings := []string{"listen_addresses=", "max_connections=" + strconv.Itoa(maxConns)}
	if cfg.Durable {
		// PostgreSQL's defaults, said for whoever reads the settings back.
		settings = append(settings, "fsync=on", "synchronous_commit=on", "full_page_writes=on")
	} else {
		// Less WAL between checkpoints: a test's databases are small.
		settings = append(settings, "fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_wal_size=128MB")
	}
	settings = append(settings, cfg.Settings...)
	args := []string{"-D", data, "-k", dir}
	for _, s := range settings {
		args = append(args, "-c", s)
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The postmaster dies with this program, killed by the kernel: the
	// signal is sent when the thread that started it ends, so that thread
	// is kept, locked to the goroutine that waits for the postmaster.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	s := &Server{dir: dir, exited: make(chan struct{}), settings: settings}
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
	s.admin, err = sql.Open("pgx", s.URL("postgres"))
	if err != nil {
		s.Stop()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		var num int
		err := s.admin.QueryRowContext(ctx, `SELECT current_setting('server_version_num')::int, current_setting('server_version')`).Scan(&num, &s.version)
		if err == nil {
			if num >= 150000 {
				s.strategy = " STRATEGY = FILE_COPY"
			}
			return s, nil
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(logPath)
			s.Stop()
			return nil, fmt.Errorf("%s exited at start:\n%s", cmd, log)
		case <-ctx.Done():
			log, _ := os.ReadFile(logPath)
			s.Stop()
			return nil, fmt.Errorf("%s did not answer in 60 s (%v):\n%s", cmd, err, log)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// CreateDB creates the empty database name and returns its URL.
func (s *Server) CreateDB(name string) (string, error) {
	if _, err := s.admin.Exec(`CREATE DATABASE ` + name + s.strategy); err != nil {
		return "", fmt.Errorf("creating database %s: %w", name, err)
	}
	return s.URL(name), nil
}

// DropDB drops database name, closing any connection still open to it.
func (s *Server) DropDB(name string) error {
	if _, err := s.admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`); err != nil {
		return fmt.Errorf("dropping database %s: %w", name, err)
	}
	return nil
}

// URL is database name's URL (postgres://, over the unix socket in the
// server's directory, no password).
func (s *Server) URL(name string) string {
	q := url.Values{"host": {s.dir}, "sslmode": {"disable"}}
	return (&url.URL{Scheme: "postgres", User: url.User(Superuser), Path: "/" + name, RawQuery: q.Encode()}).String()
}

// Dir is the server's directory: data/, the socket and the log.
func (s *Server) Dir() string { return s.dir }

// Pid is the postmaster's process ID.
func (s *Server) Pid() int { return s.proc.Pid }

// Version is the server's version (server_version).
func (s *Server) Version() string { return s.version }

// Settings are the settings the server was started with (name=value).
func (s *Server) Settings() []string { return slices.Clone(s.settings) }

// Stop shuts the postmaster down at once (SIGQUIT: immediate shutdown, as
// pg_ctl stop -m immediate; killed if it takes more than 10 s) and removes
// its directory.
func (s *Server) Stop() {
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

// memDir is where a test server's directory goes: in memory (/dev/shm)
// if it has room, which makes CREATE DATABASE 10 ms rather than 200 (it
// checkpoints, and a disk makes that cost even with fsync off); else ""
// (os.TempDir).
func memDir() string {
	var fs syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &fs); err != nil || uint64(fs.Bavail)*uint64(fs.Bsize) < 1<<30 {
		return ""
	}
	return "/dev/shm"
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
