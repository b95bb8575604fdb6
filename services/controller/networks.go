package controller

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"slices"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/policy"
)

// write runs fn in a write transaction, records the change in the audit
// log when ctx's request is an audited one (audit.go), brings the views of
// the networks it changed up to date (inside the same transaction) and,
// once it has committed, wakes the long-polls of every network whose
// revision moved. A change and its audit entry commit together, or
// neither does.
func (s *Server) write(ctx context.Context, fn func(*Tx) error) error {
	a := auditOf(ctx)
	return s.store.Write(ctx, func(tx *Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if err := a.inWrite(tx, s.now()); err != nil {
			return err
		}
		if err := s.patchViews(tx); err != nil {
			return fmt.Errorf("updating the network cache: %w", err)
		}
		bumped := slices.Clone(tx.bumped)
		tx.afterCommit(func() {
			for _, id := range bumped {
				s.watch.notify(id)
			}
			s.changes.notify()
		})
		return nil
	})
}

// patchViews applies a write to the views (on the writer goroutine).
func (s *Server) patchViews(tx *Tx) error {
	ids := slices.Concat(slices.Collect(maps.Keys(tx.touched)), slices.Collect(maps.Keys(tx.netChanged)), tx.bumped)
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		s.announce(tx, id)
		if tx.deleted[id] {
			s.views.set(id, nil)
			continue
		}
		v := s.views.get(id)
		if v == nil {
			// A new network, or the views were dropped after a failed
			// commit: start from what the database holds now, and give
			// no delta across this write, whose changes the view did not
			// see.
			if _, err := tx.tx.ExecContext(tx.ctx, `UPDATE networks SET horizon = revision WHERE id = $1`, id); err != nil {
				return err
			}
			nv, err := loadView(tx, id, s.layout())
			if err != nil {
				return err
			}
			s.views.set(id, nv)
			continue
		}
		if err := v.patch(tx, tx.touched[id], s.now()); err != nil {
			return err
		}
	}
	return nil
}

// viewTx returns network id's view inside a write, loading it if need be
// (call it before the write changes anything). The error is a 404 if the
// network does not exist.
func (s *Server) viewTx(tx *Tx, id string) (*netView, error) {
	// Held, so that no other replica changes it while it loads, and
	// brought up to the database's if another replica changed it.
	if err := s.hold(tx, id); err != nil {
		return nil, err
	}
	if v := s.views.get(id); v != nil {
		return v, nil
	}
	v, err := loadView(tx, id, s.layout())
	if err != nil {
		return nil, err
	}
	s.views.set(id, v)
	return v, nil
}

// viewOf returns network id's view; the error is a 404 if the network does
// not exist.
func (s *Server) viewOf(ctx context.Context, id string) (*netView, error) {
	if v := s.views.get(id); v != nil {
		return v, nil
	}
	var v *netView
	err := s.store.Write(ctx, func(tx *Tx) (err error) {
		v, err = s.viewTx(tx, id)
		return err
	})
	return v, err
}

// loadViews loads every network's view, at start.
func (s *Server) loadViews(ctx context.Context) error {
	return s.store.Write(ctx, func(tx *Tx) error {
		ns, err := tx.networks()
		if err != nil {
			return err
		}
		for _, n := range ns {
			if _, err := s.viewTx(tx, n.ID); err != nil {
				return err
			}
		}
		return nil
	})
}

// networkOf reads network id with its routes, as the API shows it.
func networkOf(tx *Tx, id string) (control.Network, error) {
	n, err := tx.network(id)
	if err != nil {
		return control.Network{}, err
	}
	rs, err := tx.routes(id)
	if err != nil {
		return control.Network{}, err
	}
	return networkView(n, rs), nil
}

func (s *Server) createNetwork(ctx context.Context, req control.CreateNetworkRequest) (control.Network, error) {
	req, err := checkCreateNetwork(req)
	if err != nil {
		return control.Network{}, err
	}
	n := networkRec{
		ID:           control.NewNetworkID(),
		Name:         req.Name,
		CIDR:         req.CIDR,
		MTU:          req.MTU,
		AutoAllow:    req.AutoAllow,
		RequireToken: req.RequireToken,
		Revision:     1,
		Created:      s.now(),
		Rules:        policy.DefaultRules(),
	}
	auditOf(ctx).setNetwork(n.ID)
	err = s.write(ctx, func(tx *Tx) error {
		// Two replicas must not both make networks whose CIDRs overlap.
		if err := tx.lockNetworkList(); err != nil {
			return err
		}
		others, err := tx.networks()
		if err != nil {
			return err
		}
		for _, o := range others {
			if o.CIDR.Overlaps(n.CIDR) {
				return conflict("cidr %s overlaps network %q (%s, %s)", n.CIDR, o.Name, o.ID, o.CIDR)
			}
		}
		return tx.insertNetwork(n)
	})
	if err != nil {
		return control.Network{}, err
	}
	s.logf("network %s created: name %q, cidr %s, mtu %d, auto_allow %t, require_token %t", n.ID, n.Name, n.CIDR, n.MTU, n.AutoAllow, n.RequireToken)
	return networkView(n, nil), nil
}

// listNetworks returns all networks, by name.
func (s *Server) listNetworks(ctx context.Context) ([]control.Network, error) {
	var out []control.Network
	err := s.store.Read(ctx, func(tx *Tx) error {
		ns, err := tx.networks()
		if err != nil {
			return err
		}
		out = make([]control.Network, 0, len(ns))
		for _, n := range ns {
			rs, err := tx.routes(n.ID)
			if err != nil {
				return err
			}
			out = append(out, networkView(n, rs))
		}
		return nil
	})
	slices.SortFunc(out, func(a, b control.Network) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return out, err
}

func (s *Server) getNetwork(ctx context.Context, id string) (control.Network, error) {
	var out control.Network
	err := s.store.Read(ctx, func(tx *Tx) (err error) {
		out, err = networkOf(tx, id)
		return err
	})
	return out, err
}

func (s *Server) updateNetwork(ctx context.Context, id string, req control.UpdateNetworkRequest) (control.Network, error) {
	if err := checkUpdateNetwork(req); err != nil {
		return control.Network{}, err
	}
	var out control.Network
	var updated bool
	err := s.writeNet(ctx, id, func(tx *Tx) error {
		n, err := tx.network(id)
		if err != nil {
			return err
		}
		old := n
		if req.Name != nil {
			n.Name = *req.Name
		}
		if req.MTU != nil {
			n.MTU = *req.MTU
		}
		if req.AutoAllow != nil {
			n.AutoAllow = *req.AutoAllow
		}
		if req.RequireToken != nil {
			n.RequireToken = *req.RequireToken
		}
		updated = n.Name != old.Name || n.MTU != old.MTU || n.AutoAllow != old.AutoAllow || n.RequireToken != old.RequireToken
		if updated {
			if err := tx.updateNetwork(n); err != nil {
				return err
			}
		}
		// The name and MTU are in every member's configuration; how new
		// members are admitted is not.
		if n.Name != old.Name || n.MTU != old.MTU {
			if _, err := tx.bump(id); err != nil {
				return err
			}
		}
		out, err = networkOf(tx, id)
		return err
	})
	if err == nil && updated {
		s.logf("network %s updated: name %q, mtu %d, auto_allow %t, require_token %t", id, out.Name, out.MTU, out.AutoAllow, out.RequireToken)
	}
	return out, err
}

func (s *Server) deleteNetwork(ctx context.Context, id string) error {
	err := s.writeNet(ctx, id, func(tx *Tx) error {
		if _, err := tx.network(id); err != nil {
			return err
		}
		if err := tx.deleteNetwork(id); err != nil {
			return err
		}
		tx.changed(id) // waiting members learn the network is gone
		return nil
	})
	if err == nil {
		s.logf("network %s deleted, with its members, routes and tokens", id)
	}
	return err
}

// addRoute adds route r to network id; replace replaces the route to the
// same destination in the same write, if there is one (its gateways,
// backups or probes changed without a moment with no route).
func (s *Server) addRoute(ctx context.Context, id string, r control.Route, replace bool) (control.Network, error) {
	r.Via = r.Via.Unmap()
	for i, b := range r.Backups {
		r.Backups[i] = b.Unmap()
	}
	var out control.Network
	err := s.writeNet(ctx, id, func(tx *Tx) error {
		n, err := tx.network(id)
		if err != nil {
			return err
		}
		rs, err := tx.routes(id)
		if err != nil {
			return err
		}
		if replace {
			rs = slices.DeleteFunc(rs, func(old control.Route) bool { return old.Dest == r.Dest })
		}
		if err := checkRoute(n.CIDR, rs, r); err != nil {
			return err
		}
		if replace {
			if _, err := tx.deleteRoute(id, r.Dest); err != nil {
				return err
			}
		}
		if err := tx.insertRoute(id, r); err != nil {
			return err
		}
		if _, err := tx.bump(id); err != nil {
			return err
		}
		out, err = networkOf(tx, id)
		return err
	})
	if err == nil {
		s.logf("network %s: route %s added", id, r)
	}
	return out, err
}

func (s *Server) deleteRoute(ctx context.Context, id string, dest netip.Prefix) (control.Network, error) {
	if err := checkPrefix("route dest", dest); err != nil {
		return control.Network{}, err
	}
	var out control.Network
	err := s.writeNet(ctx, id, func(tx *Tx) error {
		if _, err := tx.network(id); err != nil {
			return err
		}
		found, err := tx.deleteRoute(id, dest)
		if err != nil {
			return err
		}
		if !found {
			return errorf(http.StatusNotFound, "network %s has no route to %s", id, dest)
		}
		if _, err := tx.bump(id); err != nil {
			return err
		}
		out, err = networkOf(tx, id)
		return err
	})
	if err == nil {
		s.logf("network %s: route %s deleted", id, dest)
	}
	return out, err
}

// layout is how the server's views lay out peer entries.
func (s *Server) layout() layout {
	if s.cfg.layout == (layout{}) {
		return defaultLayout()
	}
	return s.cfg.layout
}
