package controller

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
)

// The store's write path: one goroutine, groups of writes per transaction
// (see Store).

type writeReq struct {
	ctx  context.Context
	fn   func(*Tx) error
	done chan error
}

// maxGroup bounds how many writes share one transaction.
const maxGroup = 256

var errClosed = errors.New("controller store is closed")

// Write runs fn in a transaction that is committed, durably, if fn returns
// nil and undone otherwise. Writes run one at a time, in the order they
// arrive, on the store's writer goroutine; fn must not call Write. Its
// queries do not stop when ctx is cancelled mid-way (a write is short, and
// an interrupted statement could abort the whole group), but a write whose
// ctx is done before it starts is skipped.
func (st *Store) Write(ctx context.Context, fn func(*Tx) error) error {
	r := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case st.writes <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-st.quit:
		return errClosed
	}
	return <-r.done
}

func (st *Store) writer() {
	defer close(st.exited)
	for {
		var group []*writeReq
		select {
		case r := <-st.writes:
			group = append(group, r)
		case <-st.quit:
			return
		}
	more:
		for len(group) < maxGroup {
			select {
			case r := <-st.writes:
				group = append(group, r)
			default:
				break more
			}
		}
		st.commit(group)
	}
}

// commit runs a group of writes in one transaction, each in a savepoint.
func (st *Store) commit(group []*writeReq) {
	errs := make([]error, len(group))
	finish := func() {
		for i, r := range group {
			r.done <- errs[i]
		}
	}
	defer finish()
	sqlTx, err := st.db.BeginTx(context.Background(), nil)
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return
	}
	var after []func()
	// What the writes that succeeded leave to the next ones (Tx.locked)
	// and to the commit (Tx.notes).
	locked := map[string]bool{}
	var notes []string
	ok := 0
	abort := func(i int, err error) {
		sqlTx.Rollback()
		for j := range errs {
			if j >= i || errs[j] == nil {
				errs[j] = err
			}
		}
		if ok > 0 {
			st.failed()
		}
	}
	// open says whether savepoint w, where the next write starts, is set
	// already: on PostgreSQL, the statement that releases a write's
	// savepoint sets the next one's, a round trip saved per write.
	open := false
	for i, r := range group {
		if err := r.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if !open {
			if _, err := sqlTx.Exec(`SAVEPOINT w`); err != nil {
				abort(i, err)
				return
			}
			open = true
		}
		var tx *Tx
	attempt:
		for n := 1; ; n++ {
			tx = &Tx{ctx: context.WithoutCancel(r.ctx), tx: sqlTx, dialect: st.dialect, locked: locked}
			errs[i] = r.fn(tx)
			if !retryable(errs[i]) || n == maxAttempts {
				break attempt
			}
			// Two replicas' transactions waited for each other (their
			// writes took networks in different orders), and PostgreSQL
			// undid this write: run it again, from its savepoint, as the
			// other has gone on by now. A conflict comes from the lock a
			// write takes first (Server.hold): nothing was patched yet.
			// The savepoint stays, for the write's next attempt.
			if _, err := sqlTx.Exec(`ROLLBACK TO w`); err != nil {
				abort(i, fmt.Errorf("undoing a write to run it again: %w", err))
				return
			}
		}
		if errs[i] == nil {
			// A write that went on after a failed statement, as SQLite
			// allows, cannot be released in PostgreSQL, which aborted the
			// transaction at that statement: the write is undone alone.
			// It may have patched caches already: they are dropped.
			// PostgreSQL runs a second statement in the same Exec only
			// after the first succeeded (no arguments: its simple
			// protocol); should it fail, the rollback to w below fails
			// too, and the whole group with it.
			release := `RELEASE w`
			if st.dialect == postgresDB && i+1 < len(group) {
				release = `RELEASE w; SAVEPOINT w`
			}
			_, err := sqlTx.Exec(release)
			open = err == nil && release != `RELEASE w`
			if err != nil {
				errs[i] = fmt.Errorf("a statement of this write failed: %w", err)
				st.failed()
			}
		}
		if errs[i] != nil {
			// It may have left views unlike the database (a patch
			// undone): the next writes check theirs again.
			clear(locked)
			// After an error SQLite may have rolled the whole transaction
			// back by itself; then the savepoint is gone and this fails.
			// PostgreSQL runs nothing after a failed statement until this.
			if _, err := sqlTx.Exec(`ROLLBACK TO w`); err != nil {
				abort(i+1, fmt.Errorf("undoing a failed write: %w", err))
				return
			}
			if _, err := sqlTx.Exec(`RELEASE w`); err != nil {
				abort(i+1, err)
				return
			}
			open = false
		}
		if errs[i] == nil {
			after = append(after, tx.after...)
			for _, id := range tx.held {
				locked[id] = true
			}
			notes = append(notes, tx.notes...)
			ok++
		}
	}
	if ok == 0 {
		sqlTx.Rollback()
		return
	}
	if len(notes) > 0 {
		if err := sendNotes(sqlTx, notes); err != nil {
			abort(len(group), fmt.Errorf("announcing the writes to other replicas: %w", err))
			return
		}
	}
	if err := sqlTx.Commit(); err != nil {
		abort(len(group), err)
		return
	}
	for _, f := range after {
		f()
	}
}

// maxAttempts is how many times a write that conflicted with another
// replica's is run.
const maxAttempts = 5

// retryable says whether err is PostgreSQL undoing a statement for another
// transaction's sake (a deadlock, a serialization failure): the write may
// be run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}
