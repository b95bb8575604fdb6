package controller

import (
	"context"
	"time"
)

// How often the controller writes when members were last seen (syncs keep
// it in memory) and forgets old tombstones, and how long tombstones are
// kept: a member that was away longer gets a full configuration.
const (
	maintainEvery = 30 * time.Second
	tombstoneTTL  = 7 * 24 * time.Hour
)

// maintain writes the last-seen times that changed and prunes tombstones
// and old audit entries, in one write.
func (s *Server) maintain(ctx context.Context) error {
	cutoff := s.now().Add(-tombstoneTTL)
	if err := s.seenReplica(ctx); err != nil {
		return err
	}
	if err := s.writeURL(); err != nil {
		s.logf("maintenance: %v", err)
	}
	return s.write(ctx, func(tx *Tx) error {
		if err := tx.pruneAudit(s.now().Add(-auditKeep)); err != nil {
			return err
		}
		if err := tx.pruneSessions(s.now()); err != nil {
			return err
		}
		for _, v := range s.views.all() {
			// Only the writer goroutine, which runs this, changes a view.
			for node, vm := range v.members {
				if t := vm.seen.Load(); t > vm.flushed {
					if err := tx.setLastSeen(v.n.ID, node, fromNanos(t)); err != nil {
						return err
					}
					vm.flushed = t
				}
			}
			horizon, err := tx.pruneTombstones(v.n.ID, cutoff)
			if err != nil {
				return err
			}
			if horizon > v.n.Horizon {
				v.mu.Lock()
				v.n.Horizon = horizon
				for node, rev := range v.tombs {
					if rev <= horizon {
						delete(v.tombs, node)
					}
				}
				v.mu.Unlock()
			}
		}
		return nil
	})
}
