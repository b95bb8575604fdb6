package pglocal

import (
	"database/sql"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestDurable: a durable server runs with production's durability
// settings, on disk, with the connections asked for, and Stop leaves
// nothing.
func TestDurable(t *testing.T) {
	s, err := Start(Config{Durable: true, MaxConnections: 40, Settings: []string{"work_mem=8MB"}})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			s.Stop()
		}
	}()
	if strings.HasPrefix(s.Dir(), "/dev/shm/") {
		t.Errorf("a durable server's directory is in memory: %s", s.Dir())
	}
	dsn, err := s.CreateDB("bench")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on",
		"max_connections": "40", "work_mem": "8MB", "current_database": "bench"} {
		var got string
		q := `SELECT current_setting($1)`
		if name == "current_database" {
			q = `SELECT current_database() WHERE $1 <> ''`
		}
		if err := db.QueryRow(q, name).Scan(&got); err != nil || got != want {
			t.Errorf("%s = %q (%v), want %q", name, got, err, want)
		}
	}
	db.Close()
	if err := s.DropDB("bench"); err != nil {
		t.Error(err)
	}
	if s.Version() == "" {
		t.Error("no version")
	}
	s.Stop()
	stopped = true
	if _, err := os.Stat(s.Dir()); err == nil {
		t.Errorf("%s is left after Stop", s.Dir())
	}
	if err := s.proc.Signal(syscall.Signal(0)); err == nil {
		t.Errorf("postmaster %d still runs after Stop", s.Pid())
	}
}
