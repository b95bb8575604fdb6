package controller

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/gatenet/gate/services/control"
)

// report is what a member tells the controller about itself on join and
// sync. Empty fields, and nil endpoints, mean "unchanged".
type report struct {
	publicKey  string
	hostname   string
	version    string
	listenPort int
	endpoints  []netip.AddrPort
}

// observedEndpoint is where a member's WireGuard traffic most likely comes
// from: the address its control connection came from, with its listen port.
func observedEndpoint(remote netip.Addr, listenPort int) netip.AddrPort {
	if !remote.IsValid() || listenPort < 1 || listenPort > 65535 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(remote.Unmap(), uint16(listenPort))
}

// applyReport records what a member reported, seen from remote at now, and
// reports whether anything in other members' configurations or its own
// changed.
func applyReport(m *memberRec, r report, remote netip.Addr, now time.Time) (changed bool) {
	old := *m
	if r.publicKey != "" {
		m.PublicKey = r.publicKey
	}
	if r.hostname != "" {
		m.Hostname = r.hostname
	}
	if r.version != "" {
		m.Version = r.version
	}
	if r.listenPort != 0 {
		m.ListenPort = r.listenPort
	}
	if r.endpoints != nil {
		m.Endpoints = slices.Clone(r.endpoints)
	}
	if obs := observedEndpoint(remote, m.ListenPort); obs.IsValid() {
		m.Observed = obs
	}
	m.BehindNAT = behindNAT(m.Observed, m.Endpoints)
	m.LastSeen = now
	return m.PublicKey != old.PublicKey || m.Hostname != old.Hostname || m.ListenPort != old.ListenPort ||
		!slices.Equal(m.Endpoints, old.Endpoints) || m.Observed != old.Observed || m.BehindNAT != old.BehindNAT
}

// giveAddress gives an allowed member without an address one: want if it
// is valid and free, else the lowest free address. A full pool leaves the
// member without one (it reports REQUESTING_CONFIGURATION) rather than
// failing the call.
func (s *Server) giveAddress(n networkRec, members []memberRec, m *memberRec, want netip.Addr) {
	if m.State != control.StateAllowed || m.Address.IsValid() {
		return
	}
	a, passedOver, err := pickAddress(n.CIDR, usedAddresses(members, m.NodeID), want)
	if passedOver != nil {
		s.logf("network %s: member %s: %v; using the pool", n.ID, m.NodeID, passedOver)
	}
	if err != nil {
		s.logf("network %s: member %s is allowed but gets no address: %v", n.ID, m.NodeID, err)
		return
	}
	m.Address = a
}

// configOf reads member node's configuration inside tx.
func configOf(tx *Tx, id, node string) (control.MemberConfig, error) {
	n, err := tx.network(id)
	if err != nil {
		return control.MemberConfig{}, err
	}
	self, err := tx.member(id, node)
	if err != nil {
		return control.MemberConfig{}, err
	}
	rs, err := tx.routes(id)
	if err != nil {
		return control.MemberConfig{}, err
	}
	ms, err := tx.members(id)
	if err != nil {
		return control.MemberConfig{}, err
	}
	return buildMemberConfig(n, rs, ms, self), nil
}

func findMember(ms []memberRec, node string) (memberRec, bool) {
	for _, m := range ms {
		if m.NodeID == node {
			return m, true
		}
	}
	return memberRec{}, false
}

// configChanged reports whether a member's record changed in a way that
// shows in any configuration.
func configChanged(a, b memberRec) bool {
	return a.State != b.State || a.Address != b.Address
}

// checkIdentity refuses a node whose key is not the one its membership was
// made with. Node IDs are 40 bits of a hash, short enough that a key with
// someone else's ID can be searched for; the full key fingerprint cannot.
func checkIdentity(m memberRec, key string) error {
	if m.Identity != key {
		return errorf(http.StatusForbidden, "member %s of network %s was registered with a different identity key", m.NodeID, m.NetworkID)
	}
	return nil
}

func (s *Server) join(ctx context.Context, id string, c caller, req control.JoinRequest, remote netip.Addr) (control.MemberConfig, error) {
	node := c.node
	req, err := checkJoin(req)
	if err != nil {
		return control.MemberConfig{}, err
	}
	now := s.now()
	var mc control.MemberConfig
	var event string
	err = s.write(ctx, func(tx *Tx) error {
		n, err := tx.network(id)
		if err != nil {
			return err
		}
		var tok *tokenRec
		if req.Token != "" {
			t, err := lookupToken(tx, req.Token, id, node, now)
			if err != nil {
				return err
			}
			tok = &t
		}
		members, err := tx.members(id)
		if err != nil {
			return err
		}
		m, existing := findMember(members, node)
		if existing {
			if err := checkIdentity(m, c.key); err != nil {
				return err
			}
		}
		old := m
		if !existing {
			m = memberRec{NetworkID: id, NodeID: node, Identity: c.key, State: control.StatePending, Created: now}
			if n.AutoAllow || tok != nil && tok.Allow {
				m.State = control.StateAllowed
			}
		} else if m.State == control.StatePending && tok != nil && tok.Allow {
			m.State = control.StateAllowed // a denied member stays denied
		}
		if req.RequestedAddress.IsValid() {
			m.Requested = req.RequestedAddress
		}
		reported := applyReport(&m, report{req.PublicKey, req.Hostname, req.Version, req.ListenPort, req.Endpoints}, remote, now)
		if tok != nil && tok.Address.IsValid() && m.Address != tok.Address && m.State != control.StateDenied {
			if err := checkFree("token address", n.CIDR, usedAddresses(members, node), tok.Address); err != nil {
				return err
			}
			m.Address = tok.Address
		}
		s.giveAddress(n, members, &m, m.Requested)
		if existing {
			err = tx.updateMember(m)
		} else {
			err = tx.insertMember(m)
		}
		if err != nil {
			return err
		}
		if tok != nil && m.State != control.StateDenied { // a denied member does not use up a token
			if err := recordUse(tx, *tok, node); err != nil {
				return err
			}
		}
		if !existing && m.State != control.StatePending || existing && (reported || configChanged(old, m)) {
			if err := tx.bump(id); err != nil {
				return err
			}
		}
		event = joinEvent(existing, m, tok)
		mc, err = configOf(tx, id, node)
		return err
	})
	if err != nil {
		return control.MemberConfig{}, err
	}
	s.logf("network %s: member %s (%q) %s", id, node, req.Hostname, event)
	return mc, nil
}

func joinEvent(existing bool, m memberRec, tok *tokenRec) string {
	verb := "joined"
	if existing {
		verb = "rejoined"
	}
	via := ""
	if tok != nil {
		via = " with token " + tok.ID
	}
	addr := ""
	if m.Address.IsValid() {
		addr = ", address " + m.Address.String()
	}
	return fmt.Sprintf("%s%s: %s%s", verb, via, m.State, addr)
}

// sync records a member's report, then waits until the network's revision
// differs from req.Since (or the wait runs out) and answers its
// configuration.
func (s *Server) sync(ctx context.Context, id string, c caller, req control.SyncRequest, remote netip.Addr) (control.MemberConfig, error) {
	node := c.node
	req, err := checkSync(req)
	if err != nil {
		return control.MemberConfig{}, err
	}
	// Take the channel before reading the revision: a change committed
	// after the read still closes it.
	changed, done := s.watch.wait(id)
	defer done()
	var mc control.MemberConfig
	var m memberRec
	var reported bool
	err = s.write(ctx, func(tx *Tx) error {
		if _, err := tx.network(id); err != nil {
			return err
		}
		m, err = tx.member(id, node)
		if err != nil {
			return err
		}
		if err := checkIdentity(m, c.key); err != nil {
			return err
		}
		reported = applyReport(&m, report{req.PublicKey, req.Hostname, req.Version, req.ListenPort, req.Endpoints}, remote, s.now())
		if err := tx.updateMember(m); err != nil {
			return err
		}
		if reported {
			if err := tx.bump(id); err != nil {
				return err
			}
		}
		mc, err = configOf(tx, id, node)
		return err
	})
	if err != nil {
		return control.MemberConfig{}, err
	}
	if reported {
		s.logf("network %s: member %s reported a change: endpoints %v, seen at %v, listen port %d, behind NAT %t",
			id, node, m.Endpoints, m.Observed, m.ListenPort, m.BehindNAT)
	}
	// A revision behind Since means the controller's state was restored
	// from an older copy: answer at once rather than wait for it to catch up.
	if mc.Revision != req.Since {
		return mc, nil
	}
	t := time.NewTimer(time.Duration(req.Wait))
	defer t.Stop()
	select {
	case <-changed:
	case <-t.C:
	case <-s.stopping:
	case <-ctx.Done():
		return control.MemberConfig{}, ctx.Err()
	}
	return s.memberConfig(ctx, id, node)
}

func (s *Server) memberConfig(ctx context.Context, id, node string) (control.MemberConfig, error) {
	var mc control.MemberConfig
	err := s.store.Read(ctx, func(tx *Tx) (err error) {
		mc, err = configOf(tx, id, node)
		return err
	})
	return mc, err
}

// removeMember deletes a member, freeing its address. key is the caller's
// identity when the member leaves by itself, "" when an admin removes it.
func (s *Server) removeMember(ctx context.Context, id, node, key string) error {
	how := "removed"
	if key != "" {
		how = "left"
	}
	var addr netip.Addr
	err := s.write(ctx, func(tx *Tx) error {
		m, err := tx.member(id, node)
		if err != nil {
			if _, nerr := tx.network(id); nerr != nil {
				return nerr
			}
			return err
		}
		if key != "" {
			if err := checkIdentity(m, key); err != nil {
				return err
			}
		}
		addr = m.Address
		if err := tx.deleteMember(id, node); err != nil {
			return err
		}
		return tx.bump(id)
	})
	if err == nil {
		s.logf("network %s: member %s %s (address %s freed)", id, node, how, textAddr(addr))
	}
	return err
}

func (s *Server) listMembers(ctx context.Context, id string) ([]control.Member, error) {
	var ms []memberRec
	err := s.store.Read(ctx, func(tx *Tx) error {
		if _, err := tx.network(id); err != nil {
			return err
		}
		var err error
		ms, err = tx.members(id)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]control.Member, 0, len(ms))
	for _, m := range sortedMembers(ms) {
		out = append(out, memberView(m))
	}
	return out, nil
}

// changeMember applies an admin's change to one member in a transaction,
// bumping the revision if the change shows in any configuration.
func (s *Server) changeMember(ctx context.Context, id, node string, change func(n networkRec, members []memberRec, m *memberRec) error) (memberRec, bool, error) {
	var m memberRec
	var changed bool
	err := s.write(ctx, func(tx *Tx) error {
		n, err := tx.network(id)
		if err != nil {
			return err
		}
		members, err := tx.members(id)
		if err != nil {
			return err
		}
		var ok bool
		if m, ok = findMember(members, node); !ok {
			return errMemberNotFound(node, id)
		}
		old := m
		if err := change(n, members, &m); err != nil {
			return err
		}
		if changed = configChanged(old, m); !changed {
			return nil
		}
		if err := tx.updateMember(m); err != nil {
			return err
		}
		return tx.bump(id)
	})
	return m, changed, err
}

func (s *Server) allowMember(ctx context.Context, id, node string) (control.Member, error) {
	m, changed, err := s.changeMember(ctx, id, node, func(n networkRec, members []memberRec, m *memberRec) error {
		m.State = control.StateAllowed
		s.giveAddress(n, members, m, m.Requested)
		return nil
	})
	if err == nil && changed {
		s.logf("network %s: member %s allowed, address %s", id, node, textAddr(m.Address))
	}
	return memberView(m), err
}

func (s *Server) denyMember(ctx context.Context, id, node string) (control.Member, error) {
	m, changed, err := s.changeMember(ctx, id, node, func(_ networkRec, _ []memberRec, m *memberRec) error {
		m.State = control.StateDenied
		return nil
	})
	if err == nil && changed {
		s.logf("network %s: member %s denied (keeps address %s until removed)", id, node, textAddr(m.Address))
	}
	return memberView(m), err
}

func (s *Server) setMemberAddress(ctx context.Context, id, node string, a netip.Addr) (control.Member, error) {
	a = a.Unmap()
	var was netip.Addr
	m, changed, err := s.changeMember(ctx, id, node, func(n networkRec, members []memberRec, m *memberRec) error {
		if err := checkFree("address", n.CIDR, usedAddresses(members, node), a); err != nil {
			return err
		}
		was, m.Address = m.Address, a
		return nil
	})
	if err == nil && changed {
		s.logf("network %s: member %s address set to %s (was %s)", id, node, a, textAddr(was))
	}
	return memberView(m), err
}
