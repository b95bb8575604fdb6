package controller

// Replicas: several controllers on one PostgreSQL, sharing one identity,
// so that the controller is no single point of failure.
//
// Each replica holds every network's view in memory (view.go) and answers
// its own members from it. Three things keep the replicas' views the
// database's:
//
//   - A write to a network takes the network's row lock first (on
//     PostgreSQL, SELECT ... FOR UPDATE; hold) and, when the network's gen
//     says another replica wrote it since this replica's view was built,
//     loads the view again under that lock. Writes to one network thus run
//     one after the other whatever replica takes them, each validated
//     against all those before it (two admins changing one network through
//     two replicas both succeed, in some order, or one is refused by the
//     same checks as on one controller), and revisions move one at a time.
//   - A write that changed a view says so (pg_notify, which PostgreSQL
//     delivers on commit, to every replica listening), and each other
//     replica loads that view again and wakes its long-polls: a change
//     reaches the members of every replica within a notification and a
//     load, with no polling, and costs nothing while nothing changes.
//   - The views' delta markers are kept with their network (networkRec),
//     so a view loaded anywhere gives the deltas its writer's would: a
//     member that moves to another replica resumes with a delta.
//
// A replica whose notifications' connection was lost loads every view
// again once it is back. On SQLite, one process, the lock is a plain read
// and nothing is announced.
//
// The replicas share the controller's key and admin token as files
// (0600), copied from the first: the key never enters the database, which
// holds only its pin, so that a replica started with another key is
// refused rather than handing members a pin they would not trust.

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatenet/gate/services/control"
)

// newReplicaID names this process in its announcements, so that it skips
// its own.
func newReplicaID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// writeNet is write for a write to network id: it holds the network first.
func (s *Server) writeNet(ctx context.Context, id string, fn func(*Tx) error) error {
	return s.write(ctx, func(tx *Tx) error {
		if err := s.hold(tx, id); err != nil {
			return err
		}
		return fn(tx)
	})
}

// hold locks network id for the rest of the write (PostgreSQL) and brings
// its view up to the database's. A network that is gone loses its view.
func (s *Server) hold(tx *Tx, id string) error {
	if slices.Contains(tx.held, id) {
		return nil
	}
	if tx.locked[id] {
		// An earlier write of this transaction locked it and brought
		// its view up to date, and the writes since kept the view the
		// database's: no other replica can have written it meanwhile.
		tx.held = append(tx.held, id)
		return nil
	}
	gen, found, err := tx.lockNetwork(id)
	if err != nil {
		return err
	}
	tx.held = append(tx.held, id)
	v := s.views.get(id)
	switch {
	case !found && v != nil:
		// Deleted through another replica: its members learn it now.
		s.views.set(id, nil)
		tx.afterCommit(func() { s.watch.notify(id) })
	case found && v != nil && v.gen != gen:
		nv, err := loadView(tx, id, s.layout())
		if err != nil {
			return err
		}
		s.views.set(id, nv)
		tx.afterCommit(func() { s.watch.notify(id) })
	}
	return nil
}

// announce tells the other replicas that this write changed network id's
// view (PostgreSQL: the writer sends a group's announcements together,
// each once, just before the commit delivers them; Store.commit).
func (s *Server) announce(tx *Tx, id string) {
	if tx.dialect == postgresDB {
		tx.notes = append(tx.notes, s.replica+" "+id)
	}
}

// follow loads again the views other replicas announce they changed, until
// ctx is done. Announcements that arrive while a load runs are taken
// together after it.
func (s *Server) follow(ctx context.Context) {
	if s.store.pg == nil {
		return
	}
	var mu sync.Mutex
	pending, everything := map[string]bool{}, false
	kick := make(chan struct{}, 1)
	wake := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	got := func(payload string) {
		from, id, ok := strings.Cut(payload, " ")
		if !ok || from == s.replica || control.CheckNetworkID(id) != nil {
			return
		}
		mu.Lock()
		pending[id] = true
		mu.Unlock()
		wake()
	}
	resync := func() {
		mu.Lock()
		everything = true
		mu.Unlock()
		wake()
	}
	go s.store.Listen(ctx, got, resync, s.logf)
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		}
		mu.Lock()
		ids, all := slices.Sorted(maps.Keys(pending)), everything
		pending, everything = map[string]bool{}, false
		mu.Unlock()
		if all {
			for _, v := range s.views.all() {
				ids = append(ids, v.n.ID)
			}
			slices.Sort(ids)
			ids = slices.Compact(ids)
		}
		err := s.catchUp(ctx, ids)
		if err != nil && ctx.Err() == nil {
			s.logf("loading what other replicas changed: %v", err)
			mu.Lock()
			for _, id := range ids {
				pending[id] = true
			}
			mu.Unlock()
			time.AfterFunc(time.Second, wake)
		}
	}
}

// catchUp loads the views of networks ids again, each from one snapshot
// of the database, without holding them (the other replicas' writes go
// on meanwhile), then puts in those still newer than this replica's own:
// a view this replica's writes have moved past since the snapshot is
// kept. A network that is gone loses its view. Views this replica never
// loaded are left to be loaded when first needed.
func (s *Server) catchUp(ctx context.Context, ids []string) error {
	loaded := map[string]*netView{}
	for _, id := range ids {
		if s.views.get(id) == nil {
			continue
		}
		err := s.store.Read(ctx, func(tx *Tx) error {
			v, err := loadView(tx, id, s.layout())
			if statusOf(err) == http.StatusNotFound {
				loaded[id] = nil
				return nil
			}
			loaded[id] = v
			return err
		})
		if err != nil {
			return fmt.Errorf("network %s: %w", id, err)
		}
	}
	if len(loaded) == 0 {
		return nil
	}
	return s.store.Write(ctx, func(tx *Tx) error {
		for id, nv := range loaded {
			v := s.views.get(id)
			if v == nil || nv != nil && nv.gen <= v.gen {
				continue
			}
			s.views.set(id, nv)
			tx.afterCommit(func() { s.watch.notify(id) })
		}
		tx.afterCommit(s.changes.notify)
		return nil
	})
}

// claimIdentity records the controller's pin in a new database, or checks
// that this replica holds the key the database was made with.
func (s *Server) claimIdentity(ctx context.Context) error {
	return s.store.Write(ctx, func(tx *Tx) error {
		var pin string
		err := tx.tx.QueryRowContext(tx.ctx, `SELECT pin FROM controller`).Scan(&pin)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.tx.ExecContext(tx.ctx, `INSERT INTO controller (pin, created) VALUES ($1, $2)`, s.pin, nanos(s.now()))
			return err
		case err != nil:
			return err
		case pin != s.pin:
			return fmt.Errorf("this controller's key (pin %s) is not the one its database was made with (pin %s): every replica must hold the same %s and %s; copy them (mode 0600) from a replica that runs", s.pin, pin, keyFile, tokenFile)
		}
		return nil
	})
}

// replicaTTL is how long a replica that stopped saying it runs is still
// put in join strings.
const replicaTTL = 10 * time.Minute

// seenReplica records that this replica runs, at its advertised address.
func (s *Server) seenReplica(ctx context.Context) error {
	return s.store.Write(ctx, func(tx *Tx) error {
		_, err := tx.tx.ExecContext(tx.ctx, `INSERT INTO replicas (advertise, seen) VALUES ($1, $2)
			ON CONFLICT (advertise) DO UPDATE SET seen = excluded.seen`, s.advertise, nanos(s.now()))
		return err
	})
}

// controllers is the addresses members are given: this replica's first,
// then every other seen within replicaTTL, in order. A replica that no
// longer parses as HOST:PORT (written by hand) is left out.
func (s *Server) controllers(ctx context.Context) []string {
	out := []string{s.advertise}
	var others []string
	err := s.store.Read(ctx, func(tx *Tx) error {
		rows, err := tx.tx.QueryContext(tx.ctx, `SELECT advertise FROM replicas WHERE seen >= $1 ORDER BY advertise`, nanos(s.now().Add(-replicaTTL)))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var a string
			if err := rows.Scan(&a); err != nil {
				return err
			}
			others = append(others, a)
		}
		return rows.Err()
	})
	if err != nil {
		s.logf("reading the replicas' addresses: %v", err)
		return out
	}
	for _, a := range others {
		if host, _, err := net.SplitHostPort(a); err == nil && host != "" && !slices.Contains(out, a) && len(out) < control.MaxControllers {
			out = append(out, a)
		}
	}
	return out
}
