package controller

import (
	"cmp"
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
	ep := netip.AddrPortFrom(remote.Unmap(), uint16(listenPort))
	if endpointFault(ep) != "" {
		return netip.AddrPort{} // a link-local peer address, with its zone: no use to others
	}
	return ep
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
// is valid and free, else the lowest free address; never one that is
// promised (a route's next hop, a live token's address: see pool.go). A
// full pool leaves the member without one (it reports
// REQUESTING_CONFIGURATION) rather than failing the call. used are the
// addresses other members hold, routes the network's.
func (s *Server) giveAddress(tx *Tx, n networkRec, routes []control.Route, used map[netip.Addr]string, m *memberRec, want netip.Addr) error {
	if m.State != control.StateAllowed || m.Address.IsValid() {
		return nil
	}
	toks, err := tx.promisedAddresses(n.ID, s.now())
	if err != nil {
		return err
	}
	a, passedOver, err := pickAddress(n.CIDR, taken{members: used, promised: promises(routes, toks)}, want)
	if passedOver != nil {
		s.logf("network %s: member %s: %v; using the pool", n.ID, m.NodeID, passedOver)
	}
	if err != nil {
		s.logf("network %s: member %s is allowed but gets no address: %v", n.ID, m.NodeID, err)
		return nil
	}
	m.Address = a
	return nil
}

// Limits on members waiting for an admin, so that strangers who know a
// network's ID (anyone can make a client certificate) cannot fill its
// member list: per network, and per address they come from. When one is
// reached, the pending member unheard of for longest gives way, if that
// is more than pendingStale; otherwise the join is refused.
// They are the defaults of Server.pendingLimits, which tests lower.
const (
	maxPendingPerNetwork = 256
	maxPendingPerSource  = 16
	pendingStale         = 24 * time.Hour
)

// pendingLimits bound the members waiting for an admin.
type pendingLimits struct {
	perNetwork, perSource int
	stale                 time.Duration
}

// makePendingRoom makes room in network v for a new pending member from
// remote, or refuses it (429) when there is none. Call inside the write.
func (s *Server) makePendingRoom(tx *Tx, v *netView, remote netip.Addr, now time.Time) error {
	var all, same []*viewMember
	src := sourceKey(remote)
	for _, vm := range v.members {
		if vm.rec.State != control.StatePending {
			continue
		}
		all = append(all, vm)
		if sourceKey(vm.rec.Observed.Addr()) == src {
			same = append(same, vm)
		}
	}
	lim := s.pending
	full, msg := all, fmt.Sprintf("network %s has %d members waiting for approval, the most it takes", v.n.ID, len(all))
	switch {
	case len(all) >= lim.perNetwork:
	case remote.IsValid() && len(same) >= lim.perSource:
		full, msg = same, fmt.Sprintf("network %s has %d members from %s waiting for approval, the most it takes from one address (an IPv6 /64 counts as one)", v.n.ID, len(same), remote)
	default:
		return nil
	}
	stalest := slices.MinFunc(full, func(a, b *viewMember) int { return cmp.Compare(a.seen.Load(), b.seen.Load()) })
	if last := fromNanos(stalest.seen.Load()); now.Sub(last) <= lim.stale {
		return errorf(http.StatusTooManyRequests, "%s; an admin must allow or remove some first", msg)
	}
	if err := tx.deleteMember(v.n.ID, stalest.rec.NodeID); err != nil {
		return err
	}
	s.logf("network %s: pending member %s, unheard of since %s, forgotten to make room", v.n.ID, stalest.rec.NodeID, fromNanos(stalest.seen.Load()).Format(time.RFC3339))
	return nil
}

// checkKeyFree refuses, for a member that is allowed, a WireGuard public
// key that another allowed member of the network has: every member's peers
// would otherwise hold two entries for one key, and the copy could take
// the other's traffic. Pending and denied members are no one's peers and
// hold no key: a stranger who joins with a member's key (every peer sees
// it) and waits must not keep that member out.
func checkKeyFree(v *netView, m memberRec) error {
	if m.State != control.StateAllowed {
		return nil
	}
	if holder, ok := v.byKey[m.PublicKey]; ok && holder != m.NodeID {
		return conflict("public_key is already used by another member of this network; each member needs its own WireGuard key")
	}
	return nil
}

// visible reports whether a change to a member's record, as a join or a
// sync made it, shows in any configuration: its own (its state, address,
// keepalive) or, while it is allowed, its peers'. A pending or denied
// member's reports change nothing anyone is sent, so they wake no one.
func visible(old, m memberRec, reported bool) bool {
	return configChanged(old, m) || reported && m.State == control.StateAllowed
}

// answerOf builds member node's configuration from its network's view: a
// delta against since if delta is set and one can be given, else full.
func (s *Server) answerOf(ctx context.Context, id, node string, since uint64, delta bool) (answer, error) {
	v, err := s.viewOf(ctx, id)
	if err != nil {
		return answer{}, err
	}
	return v.answer(node, since, delta)
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
	return a.State != b.State || a.Address != b.Address || !slices.Equal(a.Tags, b.Tags)
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

// checkNamed refuses an admin's change to a member named by a fingerprint
// that is not the member's.
func checkNamed(m memberRec, ref memberRef) error {
	if ref.key != "" && m.Identity != ref.key {
		return conflict("member %s of network %s has the fingerprint %s, not %s: it is not the node you named", m.NodeID, m.NetworkID, m.Identity, ref.key)
	}
	return nil
}

func (s *Server) join(ctx context.Context, id string, c caller, req control.JoinRequest, remote netip.Addr) (answer, error) {
	node := c.node
	req, err := checkJoin(req)
	if err != nil {
		return answer{}, err
	}
	now := s.now()
	var event string
	err = s.writeNet(ctx, id, func(tx *Tx) error {
		n, err := tx.network(id)
		if err != nil {
			return err
		}
		// The view holds every address in use, so a join reads one row,
		// not the whole network. Inside a write it is exactly what the
		// database holds.
		v, err := s.viewTx(tx, id)
		if err != nil {
			return err
		}
		var tok *tokenRec
		if req.Token != "" {
			t, err := lookupToken(tx, req.Token, id, c, now)
			if err != nil {
				return err
			}
			tok = &t
		}
		m, existing, err := tx.memberIfAny(id, node)
		if err != nil {
			return err
		}
		if existing {
			if err := checkIdentity(m, c.key); err != nil {
				return err
			}
		} else if tok != nil && !tok.Reusable && tok.Uses > 0 {
			// A used single-use token may be retried while its member
			// is there (a join whose answer was lost), not to come back
			// as new after leaving or being removed.
			return forbidden("join token already used")
		} else if n.RequireToken && tok == nil {
			return forbidden("network " + id + " admits new members only with a join token; ask an admin for one (gate token create)")
		}
		old := m
		if !existing {
			m = memberRec{NetworkID: id, NodeID: node, Identity: c.key, State: control.StatePending, Created: now}
			if n.AutoAllow || tok != nil && tok.Allow {
				m.State = control.StateAllowed
			} else if err := s.makePendingRoom(tx, v, remote.Unmap(), now); err != nil {
				return err
			}
		} else if m.State == control.StatePending && tok != nil && tok.Allow {
			m.State = control.StateAllowed // a denied member stays denied
		}

		if tok != nil && len(tok.Tags) > 0 && len(m.Tags) == 0 {
			m.Tags = slices.Clone(tok.Tags) // an admin's tags are never overwritten by a token's
		}
		if req.RequestedAddress.IsValid() {
			m.Requested = req.RequestedAddress
		}
		reported := applyReport(&m, report{req.PublicKey, req.Hostname, req.Version, req.ListenPort, req.Endpoints}, remote, now)
		if err := checkKeyFree(v, m); err != nil {
			return err
		}
		// The member's own address, if any, is in used: it is never the
		// one checked or picked below (the token's differs from it; a
		// member with an address gets none).
		used := v.byAddr
		if tok != nil && tok.Address.IsValid() && m.Address != tok.Address && m.State != control.StateDenied {
			// The token's own promise is what gives the address: only
			// members count against it.
			if err := checkFree("token address", n.CIDR, taken{members: used}, tok.Address); err != nil {
				return err
			}
			m.Address = tok.Address
		}
		if err := s.giveAddress(tx, n, v.routes, used, &m, m.Requested); err != nil {
			return err
		}
		if existing {
			err = tx.updateMember(m)
		} else {
			err = tx.insertMember(m)
		}
		if err != nil {
			return err
		}
		if tok != nil && m.State != control.StateDenied { // a denied member does not use up a token
			if err := recordUse(tx, *tok, c, req.InstanceID); err != nil {
				return err
			}
		}
		if !existing && m.State != control.StatePending || existing && visible(old, m, reported) {
			if _, err := tx.bump(id); err != nil {
				return err
			}
		}
		event = joinEvent(existing, m, tok)
		return nil
	})
	if err != nil {
		return answer{}, err
	}
	s.logf("network %s: member %s (%q) %s", id, node, req.Hostname, event)
	v, err := s.viewOf(ctx, id)
	if err != nil {
		return answer{}, err
	}
	a, err := v.answer(node, 0, false)
	if err == nil {
		v.mu.RLock()
		if vm := v.members[node]; vm != nil {
			vm.answered.Store(s.monotonic()) // its syncs are paced from here
		}
		v.mu.RUnlock()
	}
	return a, err
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
// configuration: a delta against req.Since if delta is set and one can be
// given. A report that changes nothing but when the member was last seen
// does not write the database.
func (s *Server) sync(ctx context.Context, id string, c caller, req control.SyncRequest, remote netip.Addr, delta bool) (answer, error) {
	node := c.node
	req, err := checkSync(req)
	if err != nil {
		return answer{}, err
	}
	// Take the channel before reading the revision: a change committed
	// after the read still closes it.
	changed, done := s.watch.wait(id)
	defer func() { done() }()
	v, err := s.viewOf(ctx, id)
	if err != nil {
		return answer{}, err
	}
	v.mu.RLock()
	vm := v.members[node]
	var m memberRec
	if vm != nil {
		m = vm.rec
		m.Endpoints = slices.Clone(m.Endpoints)
	}
	v.mu.RUnlock()
	if vm == nil {
		return answer{}, errMemberNotFound(node, id)
	}
	if err := checkIdentity(m, c.key); err != nil {
		return answer{}, err
	}
	now := s.now()
	rep := report{req.PublicKey, req.Hostname, req.Version, req.ListenPort, req.Endpoints}
	was := m
	reported := applyReport(&m, rep, remote, now)
	// A change others see (an allowed member's endpoints, key, name)
	// wakes every member of the network: one a member makes more often
	// than reportEvery is refused, and asked for again later.
	if reported && m.State == control.StateAllowed {
		if last := vm.reported.Load(); last != 0 && s.monotonic()-last < int64(s.reportEvery) {
			return answer{}, errorf(http.StatusTooManyRequests, "member %s reports changes more often than every %s; try again later", node, s.reportEvery)
		}
	}
	if reported || m.Version != was.Version {
		err = s.writeNet(ctx, id, func(tx *Tx) error {
			m, err = tx.member(id, node)
			if err != nil {
				return err
			}
			if err := checkIdentity(m, c.key); err != nil {
				return err
			}
			old := m
			reported = applyReport(&m, rep, remote, now)
			if m.PublicKey != old.PublicKey {
				v, err := s.viewTx(tx, id)
				if err != nil {
					return err
				}
				if err := checkKeyFree(v, m); err != nil {
					return err
				}
			}
			if err := tx.updateMember(m); err != nil {
				return err
			}
			if visible(old, m, reported) {
				if _, err := tx.bump(id); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return answer{}, err
		}
		if reported {
			if m.State == control.StateAllowed {
				vm.reported.Store(s.monotonic())
			}
			s.logf("network %s: member %s reported a change: endpoints %v, seen at %v, listen port %d, behind NAT %t",
				id, node, m.Endpoints, m.Observed, m.ListenPort, m.BehindNAT)
		}
	} else if t := nanos(now); t > vm.seen.Load() {
		vm.seen.Store(t)
	}
	// What the member holds is what it would hold at revision from: a
	// change that concerns it not (another spoke joining, under rules
	// that keep spokes apart) moves from on without an answer.
	from := req.Since
	deadline := time.NewTimer(time.Duration(req.Wait))
	defer deadline.Stop()
	for {
		rev, size, err := s.revisionOf(ctx, id)
		if err != nil {
			return answer{}, err
		}
		// Wait for a change only at from itself. A revision behind it
		// means the controller's state was restored from an older copy:
		// answer at once rather than wait for it to catch up.
		over := false
		if rev == from {
			select {
			case <-changed:
			case <-deadline.C:
				over = true
			case <-s.stopping:
				over = true
			case <-ctx.Done():
				return answer{}, ctx.Err()
			}
			if rev, size, err = s.revisionOf(ctx, id); err != nil {
				return answer{}, err
			}
		}
		if err := s.holdBurst(ctx, vm, rev, from, size); err != nil {
			return answer{}, err
		}
		if over || !delta || from == 0 {
			break
		}
		// Take a new channel before looking: a change after the look
		// still wakes it.
		done()
		changed, done = s.watch.wait(id)
		at, quiet, err := s.quiet(ctx, id, node, from)
		if err != nil {
			return answer{}, err
		}
		if !quiet {
			break
		}
		from = at
	}
	a, err := s.answerOf(ctx, id, node, from, delta)
	if a.mc.Delta {
		a.mc.Since = req.Since // what it holds at req.Since is what it would at from
	}
	return a, err
}

// quiet reports whether nothing member node of network id is sent has
// changed after revision since, and the revision it looked up to
// (netView.quiet).
func (s *Server) quiet(ctx context.Context, id, node string, since uint64) (uint64, bool, error) {
	v, err := s.viewOf(ctx, id)
	if err != nil {
		return 0, false, err
	}
	return v.quiet(node, since)
}

// revisionOf is network id's revision now, and how many members it has.
func (s *Server) revisionOf(ctx context.Context, id string) (uint64, int, error) {
	v, err := s.viewOf(ctx, id)
	if err != nil {
		return 0, 0, err
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.n.Revision, len(v.members), nil
}

// holdBurst holds back the answer to a member catching up with a burst of
// changes: one that was answered less than the pace ago and is more than
// one revision (rev) behind waits until the pace has passed since; its
// answer, built after that, has what changed by then. Without this, a
// member that falls behind while many others join asks again as soon as it
// has its answer, gets a few new peers, and asks again: in a 10,000-member
// join storm that was most of a million answers, whose cost starved the
// joins themselves. The pace is s.paceEach for each of the network's
// members (size), at most s.paceMax: then catching-up members of any
// network cost the controller at most about 1/paceEach answers a second
// (1,700), and a small network, which cannot overload it, waits little. A
// single change is never held back, nor is a member that was last answered
// a while ago. The caller answers right after.
func (s *Server) holdBurst(ctx context.Context, vm *viewMember, rev, since uint64, size int) error {
	pace := min(s.paceMax, time.Duration(size)*s.paceEach)
	last := vm.answered.Load()
	// Since past the revision (a member that asks as if from the future
	// gets a full answer) is paced like one far behind.
	behind := rev > since+1 || since > rev
	if wait := time.Duration(last + int64(pace) - s.monotonic()); behind && last != 0 && wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.stopping:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	vm.answered.Store(s.monotonic())
	return nil
}

// monotonic is the time since the process started, in ns (never 0 once
// it runs): pacing is about time passing, not about the controller's
// clock, which tests move by hand.
func (s *Server) monotonic() int64 { return int64(time.Since(s.started)) + 1 }

// removeMember deletes a member, freeing its address: the member itself
// leaving (self; ref.key is its identity), or an admin removing it.
func (s *Server) removeMember(ctx context.Context, id string, ref memberRef, self bool) error {
	node, how := ref.node, "removed"
	if self {
		how = "left"
	}
	var addr netip.Addr
	kept := false // a denied member that left: its record stays
	err := s.writeNet(ctx, id, func(tx *Tx) error {
		m, err := tx.member(id, node)
		if err != nil {
			if _, nerr := tx.network(id); nerr != nil {
				return nerr
			}
			return err
		}
		if self {
			err = checkIdentity(m, ref.key)
		} else {
			err = checkNamed(m, ref)
		}
		if err != nil {
			return err
		}
		if self && m.State == control.StateDenied {
			// Leaving would forget the denial, and the node could come
			// back as new (with its token, or into an auto-allow
			// network). The node leaves on its side all the same.
			kept = true
			return nil
		}
		addr = m.Address
		if err := tx.deleteMember(id, node); err != nil {
			return err
		}
		_, err = tx.bump(id)
		return err
	})
	switch {
	case err == nil && kept:
		s.logf("network %s: denied member %s left; its denial is kept until an admin removes it", id, node)
	case err == nil:
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
	// Syncs that change nothing keep when a member was last seen in
	// memory; it is written to the database every so often.
	if v := s.views.get(id); v != nil {
		v.mu.RLock()
		for i, m := range ms {
			if vm := v.members[m.NodeID]; vm != nil {
				if t := fromNanos(vm.seen.Load()); t.After(m.LastSeen) {
					ms[i].LastSeen = t
				}
			}
		}
		v.mu.RUnlock()
	}
	out := make([]control.Member, 0, len(ms))
	for _, m := range sortedMembers(ms) {
		out = append(out, memberView(m))
	}
	return out, nil
}

// memberIn reads network id, its members and the one ref names, inside
// tx; a member that is not there, or not the one its fingerprint names,
// is an error.
func memberIn(tx *Tx, id string, ref memberRef) (networkRec, []memberRec, memberRec, error) {
	n, err := tx.network(id)
	if err != nil {
		return n, nil, memberRec{}, err
	}
	members, err := tx.members(id)
	if err != nil {
		return n, nil, memberRec{}, err
	}
	m, ok := findMember(members, ref.node)
	if !ok {
		return n, nil, m, errMemberNotFound(ref.node, id)
	}
	return n, members, m, checkNamed(m, ref)
}

// changeMember applies an admin's change to one member in a transaction,
// bumping the revision if the change shows in any configuration.
func (s *Server) changeMember(ctx context.Context, id string, ref memberRef, change func(tx *Tx, n networkRec, members []memberRec, m *memberRec) error) (memberRec, bool, error) {
	var m memberRec
	var changed bool
	err := s.writeNet(ctx, id, func(tx *Tx) error {
		n, members, found, err := memberIn(tx, id, ref)
		if err != nil {
			return err
		}
		m = found
		old := m
		if err := change(tx, n, members, &m); err != nil {
			return err
		}
		if changed = configChanged(old, m); !changed {
			return nil
		}
		if err := tx.updateMember(m); err != nil {
			return err
		}
		_, err = tx.bump(id)
		return err
	})
	return m, changed, err
}

func (s *Server) allowMember(ctx context.Context, id string, ref memberRef) (control.Member, error) {
	node := ref.node
	m, changed, err := s.changeMember(ctx, id, ref, func(tx *Tx, n networkRec, members []memberRec, m *memberRec) error {
		m.State = control.StateAllowed
		v, err := s.viewTx(tx, id)
		if err != nil {
			return err
		}
		if err := checkKeyFree(v, *m); err != nil {
			return err
		}
		routes, err := tx.routes(id)
		if err != nil {
			return err
		}
		return s.giveAddress(tx, n, routes, usedAddresses(members, m.NodeID), m, m.Requested)
	})
	if err == nil && changed {
		s.logf("network %s: member %s allowed, address %s", id, node, textAddr(m.Address))
	}
	return memberView(m), err
}

func (s *Server) denyMember(ctx context.Context, id string, ref memberRef) (control.Member, error) {
	node := ref.node
	m, changed, err := s.changeMember(ctx, id, ref, func(_ *Tx, _ networkRec, _ []memberRec, m *memberRec) error {
		m.State = control.StateDenied
		return nil
	})
	if err == nil && changed {
		s.logf("network %s: member %s denied (keeps address %s until removed)", id, node, textAddr(m.Address))
	}
	return memberView(m), err
}

func (s *Server) setMemberAddress(ctx context.Context, id string, ref memberRef, a netip.Addr) (control.Member, error) {
	node := ref.node
	a = a.Unmap()
	var was netip.Addr
	m, changed, err := s.changeMember(ctx, id, ref, func(tx *Tx, n networkRec, members []memberRec, m *memberRec) error {
		if err := s.checkMemberAddress(tx, n, members, node, a); err != nil {
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

// checkMemberAddress says whether a may be member node's address in
// network n: inside it, not another member's, and not what a live token
// promises to whoever joins with it (an admin may give a route's next
// hop: that is how a gateway gets it).
func (s *Server) checkMemberAddress(tx *Tx, n networkRec, members []memberRec, node string, a netip.Addr) error {
	toks, err := tx.promisedAddresses(n.ID, s.now())
	if err != nil {
		return err
	}
	return checkFree("address", n.CIDR, taken{members: usedAddresses(members, node), promised: promises(nil, toks)}, a)
}

// checkAddress answers whether setting member ref's address to a would
// be accepted now, by the check the change itself makes, without making
// it: for a form that validates as the admin types.
func (s *Server) checkAddress(ctx context.Context, id string, ref memberRef, a netip.Addr) (control.AddressCheck, error) {
	out := control.AddressCheck{Address: a.Unmap()}
	err := s.store.Read(ctx, func(tx *Tx) error {
		n, members, _, err := memberIn(tx, id, ref)
		if err != nil {
			return err
		}
		if err := s.checkMemberAddress(tx, n, members, ref.node, out.Address); err != nil {
			if statusOf(err) == http.StatusInternalServerError {
				return err
			}
			out.Problem = err.Error()
		}
		return nil
	})
	return out, err
}
