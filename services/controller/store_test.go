package controller

import (
	"context"
	"path/filepath"
	"testing"
)

func TestStoreOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	st, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	// Every connection gets the pragmas, not just the first.
	st.db.SetMaxIdleConns(0)
	for range 3 {
		var mode string
		var fk, sync int
		if err := st.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := st.db.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if err := st.db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || fk != 1 || sync != 2 {
			t.Fatalf("journal_mode %s, foreign_keys %d, synchronous %d; want wal, 1, 2 (FULL)", mode, fk, sync)
		}
	}
	st.Close()

	// Reopening applies nothing twice.
	st, err = OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := st.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(migrations)-1 {
		t.Fatalf("schema_migrations has %d rows (%v), want %d", n, err, len(migrations)-1)
	}
	// A database from a newer controller is refused, not damaged.
	if _, err := st.db.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied) VALUES ($1, 0)`, len(migrations)+5); err != nil {
		t.Fatal(err)
	}
	st.Close()
	_, err = OpenSQLite(ctx, path)
	wantErr(t, "newer schema", err, "is newer than this controller knows")
}

// TestFailedWriteRollsBack checks that an error half-way through a write
// leaves nothing behind.
func TestFailedWriteRollsBack(t *testing.T) {
	ctx := context.Background()
	st, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.Write(ctx, func(tx *Tx) error {
		if err := tx.insertNetwork(networkRec{ID: "0123456789abcdef", Name: "x", CIDR: mustPrefix("10.0.0.0/24"), MTU: 1420}); err != nil {
			return err
		}
		return badRequest("stop here")
	})
	wantErr(t, "write", err, "stop here")
	st.Read(ctx, func(tx *Tx) error {
		ns, err := tx.networks()
		if err != nil || len(ns) != 0 {
			t.Errorf("after rollback: %v, %v", ns, err)
		}
		return nil
	})
}
