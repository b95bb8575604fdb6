package controller

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStoreOpen: SQLite's connections all get the pragmas; on both
// databases, reopening applies no migration twice and a database from a
// newer controller is refused, not damaged.
func TestStoreOpen(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db := b.db(t)
			st, err := Open(ctx, db, "")
			if err != nil {
				t.Fatal(err)
			}
			if st.dialect == sqliteDB {
				checkPragmas(t, st)
			}
			st.Close()

			st, err = Open(ctx, db, "")
			if err != nil {
				t.Fatal(err)
			}
			var n int
			if err := st.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(migrations)-1 {
				t.Fatalf("schema_migrations has %d rows (%v), want %d", n, err, len(migrations)-1)
			}
			if _, err := st.db.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied) VALUES ($1, 0)`, len(migrations)+5); err != nil {
				t.Fatal(err)
			}
			st.Close()
			_, err = Open(ctx, db, "")
			wantErr(t, "newer schema", err, "is newer than this controller knows")
		})
	}
}

// checkPragmas checks that every connection to SQLite gets the pragmas,
// not just the first.
func checkPragmas(t *testing.T, st *Store) {
	t.Helper()
	ctx := context.Background()
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
}

// TestFailedWriteRollsBack checks that an error half-way through a write
// leaves nothing behind.
func TestFailedWriteRollsBack(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			st, err := Open(ctx, b.db(t), "")
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
		})
	}
}

// TestGroupCommit: writes queued together commit together, each in its own
// savepoint: a failing one is undone alone, and later ones see earlier ones.
func TestGroupCommit(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { testGroupCommit(t, b.db(t)) })
	}
}

func testGroupCommit(t *testing.T, db string) {
	ctx := context.Background()
	st, err := Open(ctx, db, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	insert := func(id string) func(*Tx) error {
		return func(tx *Tx) error {
			return tx.insertNetwork(networkRec{ID: id, Name: id, CIDR: netip.MustParsePrefix("10.0.0.0/24"), MTU: 1420, Revision: 1})
		}
	}
	boom := errors.New("boom")
	// Hold the writer busy so that the writes below queue up as one group.
	hold, release := make(chan struct{}), make(chan struct{})
	go st.Write(ctx, func(*Tx) error { close(hold); <-release; return nil })
	<-hold
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("n%d", i)
			switch i {
			case 2: // writes, then fails: undone
				errs[i] = st.Write(ctx, func(tx *Tx) error {
					if err := insert(id)(tx); err != nil {
						return err
					}
					return boom
				})
			case 4: // the same key as n1: whichever of writes 1 and 4
				// queues second fails on the constraint, n1 stays
				errs[i] = st.Write(ctx, insert("n1"))
			default:
				errs[i] = st.Write(ctx, insert(id))
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	var have []string
	st.Read(ctx, func(tx *Tx) error {
		ns, err := tx.networks()
		for _, n := range ns {
			have = append(have, n.ID)
		}
		return err
	})
	slices.Sort(have)
	if want := []string{"n0", "n1", "n3", "n5"}; !slices.Equal(have, want) {
		t.Errorf("networks %v, want %v", have, want)
	}
	if !errors.Is(errs[2], boom) {
		t.Errorf("write 2: %v, want %v", errs[2], boom)
	}
	// The goroutines queue in no set order: one of the two writes of n1
	// succeeds, the other fails.
	if failed := errors.Join(errs[1], errs[4]); (errs[1] == nil) == (errs[4] == nil) || !strings.Contains(strings.ToUpper(failed.Error()), "UNIQUE") {
		t.Errorf("writes 1 and 4 (both n1): %v, %v; want exactly one to fail on the constraint", errs[1], errs[4])
	}
	for _, i := range []int{0, 3, 5} {
		if errs[i] != nil {
			t.Errorf("write %d: %v", i, errs[i])
		}
	}
}
