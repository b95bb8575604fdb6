// Package pgtest runs a real PostgreSQL for a package's tests.
//
// The controller's store runs on SQLite and on PostgreSQL, and a backend
// is only as good as the tests run on it: a fake or an in-process
// imitation would not abort a transaction on a failed statement, lock a
// row or overflow a 32-bit column as PostgreSQL does. So the tests start
// the server itself (services/pglocal), from Debian's postgresql package:
// one per test package, on the first test that asks for a database, in a
// temporary directory of its own (in memory when /dev/shm has room),
// listening on a unix socket there only (nothing on the network, no clash
// with a system cluster), with fsync off (a test's data need not survive
// a crash of the machine). Each test gets a fresh database. Main, called
// from TestMain, stops the server (immediate shutdown) and removes the
// directory when the tests end; should the test binary die first, the
// postmaster is killed with it (parent-death signal).
//
// PostgreSQL refuses to run as root, which CI is: then the server runs as
// the postgres user. A missing PostgreSQL fails the tests, with what to
// install; it never skips them.
package pgtest

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/gatenet/gate/services/pglocal"
)

var (
	mu       sync.Mutex
	inMain   bool
	srv      *pglocal.Server
	startErr error // the first start's failure, given to every test after
	dbs      int
)

// Main runs the tests, stops the server if one was started and exits with
// the tests' status. Call it from TestMain.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main without the exit, for a TestMain with a wrapper of its own
// (nstest.MainRun): it runs the tests, stops the server if one was started
// and returns the tests' status.
func Run(m *testing.M) int {
	mu.Lock()
	inMain = true
	mu.Unlock()
	code := m.Run()
	mu.Lock()
	if srv != nil {
		srv.Stop()
		srv = nil
	}
	mu.Unlock()
	return code
}

// NewDB creates an empty database for t, dropped when t ends, and returns
// its URL (postgres://, over the unix socket, no password). The first call
// starts the server.
func NewDB(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if !inMain {
		t.Fatal("pgtest: call pgtest.Main (or Run) from TestMain: it stops the server the tests start")
	}
	if srv == nil && startErr == nil {
		srv, startErr = pglocal.Start(pglocal.Config{})
	}
	if startErr != nil {
		t.Fatalf("pgtest: %v", startErr)
	}
	dbs++
	name := fmt.Sprintf("t%d", dbs)
	dsn, err := srv.CreateDB(name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	s := srv
	t.Cleanup(func() {
		// FORCE: a connection a failed test left open does not keep it.
		if err := s.DropDB(name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return dsn
}
