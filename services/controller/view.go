package controller

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"iter"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/policy"
)

// A view is one network held in memory, so that a sync is answered without
// touching the database and without work in proportion to the network's
// size: a long-poll that wakes after a change costs what changed, not what
// the network holds.
//
// The database stays the source of truth. A view is loaded from it when
// the controller starts (or when a network is created), and after every
// write the rows that write touched are read back from the same
// transaction and patched in (patch), on the store's writer goroutine, in
// the order the writes ran. Only that goroutine changes a view; syncs read
// it under its read lock. The patch is also where each member's rev (the
// revision at which its peer entry last changed) and the tombstones of
// deleted members are kept up to date, by comparing the member's encoded
// peer entry before and after, so no write can forget them.
//
// Each in-service member's peer entry is encoded once, when it changes,
// and the same bytes go to every member: a full configuration is the
// encoded list of all of them minus the member itself, a delta is the
// entries whose rev is past the member's revision, found through the log.
// The list is kept in blocks (peerList) so that a change re-encodes one
// block, not the whole list, and answers still being written from older
// revisions share the blocks that did not change instead of each holding
// a copy of the list.
type netView struct {
	lay     layout
	mu      sync.RWMutex
	n       networkRec
	routes  []control.Route // sorted
	members map[string]*viewMember
	byAddr  map[netip.Addr]string // every member holding an address, in service or not
	byKey   map[string]string     // allowed members' WireGuard public keys -> node ID
	ranked  []*viewMember         // in service, by address then node ID: the order of Peers
	tombs   map[string]uint64     // deleted members: node ID -> revision of the removal
	// log lists (revision, node) in revision order; an entry is current
	// when it carries the node's rev (or tombstone revision), and stale
	// entries are skipped and compacted away.
	log []logEntry

	// arena holds the in-service members' entries (their peer), and
	// entryBytes is how many bytes those are.
	arena      entryArena
	entryBytes int

	fullMu sync.Mutex // guards full among readers (taken with mu held for reading)
	// full is the peer list last built, kept when it goes stale for the
	// blocks that did not change.
	full *fullList

	// rulesRev is the revision of the last change of the rules or the
	// routes, which may change what every member's rules compile to; a
	// delta from before it carries the member's rules. Other members
	// coming, going or changing tags do not change them: the sets of
	// tags and members are filled in by each member from its peers
	// (policy.Ruleset.Fill).
	rulesRev uint64
	// confRev is the revision of the last change to what every member's
	// configuration says of the network itself (name, CIDR, MTU).
	confRev uint64
	// peersRev is the revision of the last change that may have changed
	// who is whose peer wholesale: rules that are not open, before or
	// after the change (openRules), or routes under such rules. A delta
	// from before it is a full configuration instead.
	peersRev uint64

	pixMu sync.Mutex // guards pix among readers (taken with mu held for reading)
	// pix is the network as its rules see it, built when an answer needs
	// it (rules that name tags or members) and dropped by any change to
	// members, tags, routes or rules (policy.go).
	pix *policy.Index

	// gen is the network's gen (networkRec.Gen) this view was built at:
	// when the database's has moved, another replica wrote the network
	// and the view is loaded again (replicas.go).
	gen uint64
}

type viewMember struct {
	rec memberRec
	// svcRev is the revision at which the member last came into service:
	// a member that was not in service at Since gets a full configuration.
	svcRev uint64
	// peer is its control.Peer, encoded after a comma (so that entries
	// are joined without separators of their own), in the view's arena;
	// nil when not in service. Never appended to (entryArena).
	peer []byte
	// cut ends a block of the peer list after this member (cutsAfter).
	cut bool
	// seen is when it was last heard from (Unix ns). Syncs that change
	// nothing do not write the database; seen is flushed every so often.
	seen    atomic.Int64
	flushed int64 // the seen value last written (writer goroutine only)
	// answered is when it was last answered (monotonic; 0: never), for
	// pacing.
	answered atomic.Int64
	// reported is when it last reported a change others see (monotonic;
	// 0: never), to bound how often it may (Server.reportEvery).
	reported atomic.Int64
	// born is the revision at which it first appeared in this view with
	// no tombstone before it (0: not known, as for members loaded at
	// start): no member held it as a peer at a revision before that.
	born uint64
}

type logEntry struct {
	rev  uint64
	node string
}

// encodePeer returns m's peer entry after a comma, nil when m is not in
// service.
func encodePeer(m memberRec, routes []control.Route) ([]byte, error) {
	if !inService(m) {
		return nil, nil
	}
	b, err := json.Marshal(peerOf(m, routes))
	if err != nil {
		return nil, fmt.Errorf("member %s: encoding peer entry: %w", m.NodeID, err)
	}
	return append([]byte{','}, b...), nil
}

func newViewMember(rec memberRec, lay layout) *viewMember {
	vm := &viewMember{rec: rec, cut: cutsAfter(rec.NodeID, lay.block)}
	vm.seen.Store(nanos(rec.LastSeen))
	vm.flushed = nanos(rec.LastSeen)
	return vm
}

func rankCmp(a, b *viewMember) int {
	return cmp.Or(compareAddr(a.rec.Address, b.rec.Address), cmp.Compare(a.rec.NodeID, b.rec.NodeID))
}

// loadView reads network id whole.
func loadView(tx *Tx, id string, lay layout) (*netView, error) {
	n, err := tx.network(id)
	if err != nil {
		return nil, err
	}
	rs, err := tx.routes(id)
	if err != nil {
		return nil, err
	}
	ms, err := tx.members(id)
	if err != nil {
		return nil, err
	}
	tombs, err := tx.tombstones(id)
	if err != nil {
		return nil, err
	}
	v := &netView{lay: lay, arena: entryArena{size: lay.chunk}, n: n, routes: sortedRoutes(rs), members: make(map[string]*viewMember, len(ms)),
		byAddr: make(map[netip.Addr]string, len(ms)), byKey: make(map[string]string, len(ms)), tombs: tombs}
	if v.routes == nil {
		v.routes = []control.Route{}
	}
	for _, m := range ms {
		vm := newViewMember(m, lay)
		vm.svcRev = m.Rev
		if vm.peer, err = encodePeer(m, v.routes); err != nil {
			return nil, err
		}
		v.members[m.NodeID] = vm
		if m.Address.IsValid() {
			v.byAddr[m.Address] = m.NodeID
		}
		if m.State == control.StateAllowed {
			v.byKey[m.PublicKey] = m.NodeID
		}
		if vm.peer != nil {
			v.ranked = append(v.ranked, vm)
		}
		v.log = append(v.log, logEntry{m.Rev, m.NodeID})
	}
	for node, rev := range tombs {
		if _, ok := v.members[node]; ok {
			delete(v.tombs, node) // a stale tombstone of a member that came back
			continue
		}
		v.log = append(v.log, logEntry{rev, node})
	}
	slices.SortFunc(v.ranked, rankCmp)
	slices.SortFunc(v.log, func(a, b logEntry) int { return cmp.Compare(a.rev, b.rev) })
	v.compact()
	v.rulesRev, v.peersRev, v.confRev, v.gen = n.RulesRev, n.PeersRev, n.ConfRev, n.Gen
	return v, nil
}

// compact puts every entry in a fresh arena, in the order of the log, so
// that entries a delta sends together lie together; the old arena's chunks
// go when nothing uses them any more. Call with mu held for writing (or
// before anyone else has the view).
func (v *netView) compact() {
	v.arena, v.entryBytes = entryArena{size: v.lay.chunk}, 0
	moved := make(map[*viewMember]bool, len(v.members))
	move := func(vm *viewMember) {
		if vm.peer != nil && !moved[vm] {
			moved[vm] = true
			vm.peer = v.arena.add(vm.peer)
			v.entryBytes += len(vm.peer)
		}
	}
	for _, e := range v.log {
		if vm, ok := v.members[e.node]; ok && vm.rec.Rev == e.rev {
			move(vm)
		}
	}
	for _, vm := range v.members { // none should be left, but in any case
		move(vm)
	}
	v.staleList()
}

// staleList marks the peer list for a rebuild. Call with mu held for
// writing: no reader is then in peerList, so fullMu is not needed.
func (v *netView) staleList() {
	if v.full != nil {
		v.full.fresh = false
	}
}

// patch brings the view up to date with a write (inside its transaction):
// the network row, the routes if they changed, and the members in nodes.
// It sets the rev of every member whose peer entry changed and tombstones
// the deleted ones, moving the network's revision if the write did not.
func (v *netView) patch(tx *Tx, nodes []string, now time.Time) error {
	id := v.n.ID
	n, err := tx.network(id)
	if err != nil {
		return err
	}
	routes := v.routes
	cands := slices.Clone(nodes)
	if tx.netChanged[id] {
		rs, err := tx.routes(id)
		if err != nil {
			return err
		}
		if routes = sortedRoutes(rs); routes == nil {
			routes = []control.Route{}
		}
		if !slices.EqualFunc(routes, v.routes, control.Route.Equal) {
			// The members routes go through carry them in AllowedIPs.
			for _, r := range slices.Concat(routes, v.routes) {
				if node, ok := v.byAddr[r.Via]; ok && !slices.Contains(cands, node) {
					cands = append(cands, node)
				}
			}
		}
	}
	changes := make([]change, 0, len(cands))
	needRev := false
	for _, node := range cands {
		rec, found, err := tx.memberIfAny(id, node)
		if err != nil {
			return err
		}
		c := change{node: node, rec: rec, found: found}
		if found {
			if c.peer, err = encodePeer(rec, routes); err != nil {
				return err
			}
		}
		old := v.members[node]
		switch {
		case old == nil && !found:
			continue // inserted and deleted in one write, or never there
		case old != nil && !found:
			c.newRev = true // deleted: tombstone
		case old == nil:
			// New, or back after it was deleted: then its tombstone
			// gives way to an entry of its own, which must tell those
			// who saw the removal, and those who did not, where it
			// stands now.
			_, back := v.tombs[node]
			c.newRev = c.peer != nil || back
		default:
			c.newRev = !bytes.Equal(old.peer, c.peer)
		}
		needRev = needRev || c.newRev
		changes = append(changes, c)
	}
	rev := n.Revision
	if needRev {
		if rev, err = tx.bump(id); err != nil {
			return err
		}
		n.Revision = rev
	}
	for i := range changes {
		c := &changes[i]
		switch {
		case !c.found:
			if err := tx.putTombstone(id, c.node, rev, now); err != nil {
				return err
			}
		case c.newRev:
			if err := tx.setMemberRev(id, c.node, rev); err != nil {
				return err
			}
			c.rec.Rev = rev
			fallthrough
		default:
			if _, ok := v.tombs[c.node]; ok {
				if err := tx.dropTombstone(id, c.node); err != nil {
					return err
				}
			}
		}
	}

	// The markers, and the write, go with the network into the database
	// (only this goroutine changes v: reading it unlocked is safe here).
	stale := !slices.EqualFunc(routes, v.routes, control.Route.Equal)
	newRules := !slices.EqualFunc(n.Rules, v.n.Rules, policy.Rule.Equal)
	rulesRev, confRev, peersRev := v.rulesRev, v.confRev, v.peersRev
	if stale || newRules {
		rulesRev = n.Revision
	}
	if n.Name != v.n.Name || n.CIDR != v.n.CIDR || n.MTU != v.n.MTU {
		confRev = n.Revision
	}
	if newRules && (!openRules(v.n.Rules) || !openRules(n.Rules)) || stale && !openRules(n.Rules) {
		peersRev = n.Revision
	}
	gen, err := tx.markNetwork(id, rulesRev, peersRev, confRev)
	if err != nil {
		return err
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	v.rulesRev, v.confRev, v.peersRev, v.gen = rulesRev, confRev, peersRev, gen
	if v.pix != nil {
		v.patchIndex(routes, changes...)
	}
	v.n, v.routes = n, routes
	for _, c := range changes {
		old := v.members[c.node]
		if !c.found {
			if a := old.rec.Address; a.IsValid() && v.byAddr[a] == c.node {
				delete(v.byAddr, a)
			}
			if v.byKey[old.rec.PublicKey] == c.node {
				delete(v.byKey, old.rec.PublicKey)
			}
			if old.peer != nil {
				v.unrank(old)
				v.entryBytes -= len(old.peer)
				stale = true
			}
			delete(v.members, c.node)
			v.tombs[c.node] = rev
			v.log = append(v.log, logEntry{rev, c.node})
			continue
		}
		vm := old
		if vm == nil {
			vm = newViewMember(c.rec, v.lay)
			if _, back := v.tombs[c.node]; !back {
				vm.born = rev // it was in no one's list before: nothing to remove
			}
			v.members[c.node] = vm
		}
		moved := vm.rec.Address != c.rec.Address
		if vm.peer != nil && (c.peer == nil || moved) {
			v.unrank(vm) // by its record as it was
		}
		if a := vm.rec.Address; old != nil && a.IsValid() && v.byAddr[a] == c.node {
			delete(v.byAddr, a)
		}
		if k := vm.rec.PublicKey; old != nil && v.byKey[k] == c.node {
			delete(v.byKey, k)
		}
		wasRanked := vm.peer != nil && !moved
		if c.peer != nil && vm.peer == nil {
			vm.svcRev = rev
		}
		if s := nanos(c.rec.LastSeen); s > vm.seen.Load() {
			vm.seen.Store(s)
		}
		vm.rec = c.rec
		if !bytes.Equal(vm.peer, c.peer) { // the same bytes keep their place, and their blocks
			v.entryBytes -= len(vm.peer)
			vm.peer = nil
			if c.peer != nil {
				vm.peer = v.arena.add(c.peer)
				v.entryBytes += len(vm.peer)
			}
		}
		delete(v.tombs, c.node)
		if a := c.rec.Address; a.IsValid() {
			v.byAddr[a] = c.node
		}
		if c.rec.State == control.StateAllowed {
			v.byKey[c.rec.PublicKey] = c.node
		}
		if vm.peer != nil && !wasRanked {
			v.rank(vm)
		}
		if c.newRev {
			v.log = append(v.log, logEntry{rev, c.node})
			stale = true
		}
	}
	if stale {
		v.staleList()
	}
	if live := len(v.members) + len(v.tombs); len(v.log) > 2*live+64 {
		v.log = slices.DeleteFunc(v.log, func(e logEntry) bool { return !v.current(e) })
	}
	if v.arena.appended > 4*v.entryBytes+v.lay.chunk {
		v.compact()
	}
	return nil
}

func (v *netView) rank(vm *viewMember) {
	i, _ := slices.BinarySearchFunc(v.ranked, vm, rankCmp)
	v.ranked = slices.Insert(v.ranked, i, vm)
}

// unrank removes vm, ranked by its record as it was.
func (v *netView) unrank(vm *viewMember) {
	if i, ok := slices.BinarySearchFunc(v.ranked, vm, rankCmp); ok {
		v.ranked = slices.Delete(v.ranked, i, i+1)
	}
}

// current reports whether a log entry is the latest of its node.
func (v *netView) current(e logEntry) bool {
	if vm, ok := v.members[e.node]; ok {
		return vm.rec.Rev == e.rev
	}
	rev, ok := v.tombs[e.node]
	return ok && rev == e.rev
}

// answer is a member configuration with its peers already encoded.
type answer struct {
	mc    control.MemberConfig // Peers unset
	peers [][]byte             // the inside of the "peers" array, in pieces
}

// encode returns the answer as JSON, the same as json.Marshal of the
// whole MemberConfig would give, then a newline.
func (a answer) encode() ([]byte, error) {
	head, tail, err := a.frame()
	if err != nil {
		return nil, err
	}
	out := head
	for _, p := range a.peers {
		out = append(out, p...)
	}
	return append(out, tail...), nil
}

// frame returns what goes before and after the peers.
func (a answer) frame() (head, tail []byte, err error) {
	mc := a.mc
	mc.Peers = []control.Peer{}
	b, err := json.Marshal(mc)
	if err != nil {
		return nil, nil, err
	}
	const empty = `"peers":[]}`
	if !bytes.HasSuffix(b, []byte(empty)) {
		return nil, nil, fmt.Errorf("member configuration does not end with its peers: %.40q", b[max(0, len(b)-40):])
	}
	return b[:len(b)-2], []byte("]}\n"), nil
}

// answer builds member node's configuration: a delta against revision
// since when want is set and the view can give one, else a full one.
func (v *netView) answer(node string, since uint64, want bool) (answer, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	vm, ok := v.members[node]
	if !ok {
		return answer{}, errMemberNotFound(node, v.n.ID)
	}
	self := vm.rec
	a := answer{mc: control.MemberConfig{
		NetworkID: v.n.ID,
		Name:      v.n.Name,
		Status:    memberStatus(self),
		NodeID:    self.NodeID,
		CIDR:      v.n.CIDR,
		MTU:       v.n.MTU,
		Addresses: []netip.Prefix{},
		Routes:    []control.Route{},
		Revision:  v.n.Revision,
	}}
	if a.mc.Status != control.StatusOK {
		return a, nil
	}
	a.mc.Addresses = append(a.mc.Addresses, netip.PrefixFrom(self.Address, v.n.CIDR.Bits()))
	a.mc.Routes = v.routes
	if self.BehindNAT {
		a.mc.Keepalive = natKeepalive
	}
	p, err := v.plan(vm, since, want)
	if err != nil {
		return answer{}, err
	}
	if p.rules {
		if a.mc.Policy, err = compileFor(v.n, v.routes, self); err != nil {
			return answer{}, fmt.Errorf("network %s: %w", v.n.ID, err)
		}
	}
	switch {
	case p.delta:
		a.mc.Delta, a.mc.Since = true, since
		for m, gone := range v.changes(node, since, p.may) {
			if m == nil {
				a.mc.RemovedPeers = append(a.mc.RemovedPeers, gone)
				continue
			}
			// The entries themselves, not copies: they are never changed
			// once encoded (a change encodes a new one).
			if n := len(a.peers); n > 0 && adjacent(a.peers[n-1], m.peer) {
				a.peers[n-1] = a.peers[n-1][:len(a.peers[n-1])+len(m.peer)]
			} else {
				a.peers = append(a.peers, m.peer)
			}
		}
	case p.may != nil:
		a.peers = v.somePeers(p.may)
	default:
		i, _ := slices.BinarySearchFunc(v.ranked, vm, rankCmp)
		a.peers = v.peerList().except(i)
	}
	if len(a.peers) > 0 {
		a.peers[0] = a.peers[0][1:] // the first entry's comma
	}
	return a, nil
}

// plan is how a member in service is answered from a revision: with a
// delta or whole, with its rules or without, with every peer or those in
// may.
type plan struct {
	delta bool
	rules bool
	may   map[string]bool // nil: every member in service
}

// plan says how member vm (in service) is answered from revision since,
// when a delta is wanted. Call with mu held for reading.
func (v *netView) plan(vm *viewMember, since uint64, want bool) (plan, error) {
	self := vm.rec
	p := plan{delta: want && since != 0 && since >= v.n.Horizon && since <= v.n.Revision && vm.svcRev <= since}
	// Under rules that do not let everyone reach everyone, a member gets
	// only the peers it may reach or that may reach it. Who those are
	// changes wholesale with the rules, the routes or its own tags and
	// address: then it gets a full configuration.
	if !openRules(v.n.Rules) {
		ix, err := v.policyIndex()
		if err != nil {
			return plan{}, err
		}
		p.may = peerSet(policy.Peers(v.n.Rules, ix, self.NodeID))
		if self.Rev > since {
			p.delta = false
		}
	}
	if v.peersRev > since {
		p.delta = false
	}
	// Its rules depend on the rules, the routes and its own entry (its
	// address and tags), and on nothing else.
	p.rules = !p.delta || v.rulesRev > since || self.Rev > since
	return p, nil
}

// changes yields what a delta from since tells member node of its peers,
// in the order of the log: (m, "") for an entry to send, (nil, node) for
// a peer to remove. Call with mu held for reading.
func (v *netView) changes(node string, since uint64, may map[string]bool) iter.Seq2[*viewMember, string] {
	return func(yield func(*viewMember, string) bool) {
		i := sort.Search(len(v.log), func(i int) bool { return v.log[i].rev > since })
		for _, e := range v.log[i:] {
			if e.node == node || !v.current(e) {
				continue
			}
			m, ok := v.members[e.node]
			switch {
			case ok && m.peer != nil && (may == nil || may[e.node]):
				if !yield(m, "") {
					return
				}
			case !ok || m.born == 0 || m.born <= since:
				// Gone, or not (or no longer) its peer. A member that
				// appeared after since was never its peer: under rules
				// that keep it out, a newcomer costs a member nothing.
				if !yield(nil, e.node) {
					return
				}
			}
		}
	}
}

// quiet reports whether nothing that member node is sent changed after
// revision since: a delta from since would be empty (no peers, no
// removals, no rules, the same network). A long-poll is not answered
// for such a change (Server.sync): in a hub-and-spoke network, a spoke
// joining concerns the hubs, not the other spokes. A member not in
// service is never quiet.
// It gives the revision it looked up to.
func (v *netView) quiet(node string, since uint64) (uint64, bool, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	at := v.n.Revision
	vm, ok := v.members[node]
	if !ok || memberStatus(vm.rec) != control.StatusOK || v.confRev > since {
		return at, false, nil
	}
	p, err := v.plan(vm, since, true)
	if err != nil || !p.delta || p.rules {
		return at, false, err
	}
	for range v.changes(node, since, p.may) {
		return at, false, nil
	}
	return at, true, nil
}

// somePeers is the encoded entries of the members in may that are in
// service, in the order of Peers, runs of adjacent entries as one piece.
// Call with mu held for reading.
func (v *netView) somePeers(may map[string]bool) [][]byte {
	ms := make([]*viewMember, 0, len(may))
	for node := range may {
		if m, ok := v.members[node]; ok && m.peer != nil {
			ms = append(ms, m)
		}
	}
	slices.SortFunc(ms, rankCmp)
	var out [][]byte
	for _, m := range ms {
		if n := len(out); n > 0 && adjacent(out[n-1], m.peer) {
			out[n-1] = out[n-1][:len(out[n-1])+len(m.peer)]
		} else {
			out = append(out, m.peer)
		}
	}
	return out
}

// change is what a write did to one member, as patch finds it.
type change struct {
	node   string
	rec    memberRec
	found  bool
	peer   []byte
	newRev bool
}

// patchIndex brings the rules' index up to date with a write: new routes,
// members coming into or out of service, new addresses or tags. It costs
// what changed, not the network's size (policy.Index.Put). An update the
// index refuses drops it: the next answer that needs it builds it anew
// and reports what is wrong. Call with mu held for writing, before v.n,
// v.routes and the members take the write's values.
func (v *netView) patchIndex(routes []control.Route, changes ...change) {
	if !slices.EqualFunc(routes, v.routes, control.Route.Equal) {
		if err := v.pix.SetRoutes(policyRoutes(routes)); err != nil {
			v.pix = nil
			return
		}
	}
	for _, c := range changes {
		if !c.found || !inService(c.rec) {
			v.pix.Remove(c.node)
			continue
		}
		if old := v.members[c.node]; old != nil && inService(old.rec) && old.rec.Address == c.rec.Address && slices.Equal(old.rec.Tags, c.rec.Tags) {
			continue // nothing the rules see
		}
		if err := v.pix.Put(policyMember(c.rec)); err != nil {
			v.pix = nil
			return
		}
	}
}

// policyIndex returns the network as its rules see it, building it if a
// change dropped it. Call with mu held for reading.
func (v *netView) policyIndex() (*policy.Index, error) {
	v.pixMu.Lock()
	defer v.pixMu.Unlock()
	if v.pix != nil {
		return v.pix, nil
	}
	pn := policy.Network{CIDR: v.n.CIDR, Routes: policyRoutes(v.routes), Members: make([]policy.Member, 0, len(v.ranked))}
	for _, vm := range v.ranked { // the members in service
		pn.Members = append(pn.Members, policyMember(vm.rec))
	}
	ix, err := policy.NewIndex(pn)
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", v.n.ID, err)
	}
	v.pix = ix
	return ix, nil
}

// entryArena keeps encoded peer entries one after another in chunks, so
// that entries encoded one after another, as a burst of joins makes them,
// lie next to each other and a delta sends each run of them as one piece
// (adjacent) rather than a slice header per peer, which was most of what a
// join storm allocated. An entry's slice reaches to the end of its chunk,
// so it must never be appended to. Entries are never changed: a changed
// entry is added anew, and the old bytes stay until no one uses their
// chunk. So that a few live entries cannot keep many chunks of dead ones,
// the view moves its entries to a fresh arena (compact) once it has added
// four times what is live.
type entryArena struct {
	size     int // of a chunk
	chunk    []byte
	appended int // bytes added
}

// layout is how a view lays out its peer entries: blocks of about block
// entries (cutsAfter) and arena chunks of chunk bytes. Tests make both
// small; Config.layout passes theirs at construction.
type layout struct {
	block uint32
	chunk int
}

// defaultLayout: blocks of about 64 entries, 64 KiB chunks.
func defaultLayout() layout { return layout{block: 64, chunk: 64 << 10} }

// add copies e into the arena and returns the copy.
func (ar *entryArena) add(e []byte) []byte {
	if len(e) > ar.size/4 {
		return slices.Clip(slices.Clone(e))
	}
	if cap(ar.chunk)-len(ar.chunk) < len(e) {
		ar.chunk = make([]byte, 0, ar.size)
	}
	start := len(ar.chunk)
	ar.chunk = append(ar.chunk, e...)
	ar.appended += len(e)
	return ar.chunk[start:len(ar.chunk)]
}

// adjacent reports whether b starts where a ends, in the same chunk: then
// a[:len(a)+len(b)] is both.
func adjacent(a, b []byte) bool {
	return len(b) > 0 && cap(a)-len(a) >= len(b) && &a[:len(a)+1][len(a)] == &b[0]
}

// peerList is every ranked peer's entry, in blocks of consecutive
// entries. Where a block ends depends only on its last member's node ID
// (cutsAfter), so a member joining or changing changes the one block it
// falls in, and the others keep their bytes from one list to the next.
type peerList struct {
	blocks []*peerBlock
	starts []int // index in ranked of each block's first entry
}

// peerBlock is the entries of some consecutive ranked members, each after
// its comma, and what they were encoded from.
type peerBlock struct {
	members []*viewMember
	entries [][]byte // each member's peer when the block was built
	buf     []byte
	off     []int // where each entry starts in buf, then len(buf)
}

// cutsAfter reports whether a block of the peer list ends after the member
// with this node ID: for one ID in block, by its FNV-1a hash.
func cutsAfter(node string, block uint32) bool {
	h := uint32(2166136261)
	for i := 0; i < len(node); i++ {
		h = (h ^ uint32(node[i])) * 16777619
	}
	return h%block == 0
}

// fresh reports whether b still holds the current entries of members.
func (b *peerBlock) fresh(members []*viewMember) bool {
	if len(b.members) != len(members) {
		return false
	}
	for i, m := range members {
		e := b.entries[i]
		if b.members[i] != m || len(m.peer) != len(e) || &m.peer[0] != &e[0] {
			return false
		}
	}
	return true
}

func newPeerBlock(members []*viewMember) *peerBlock {
	b := &peerBlock{members: members, entries: make([][]byte, len(members)), off: make([]int, 0, len(members)+1)}
	size := 0
	for _, m := range members {
		size += len(m.peer)
	}
	b.buf = make([]byte, 0, size)
	for i, m := range members {
		b.entries[i] = m.peer
		b.off = append(b.off, len(b.buf))
		b.buf = append(b.buf, m.peer...)
	}
	b.off = append(b.off, len(b.buf))
	return b
}

// peerList returns the encoded list of all ranked peers, building it if
// the last change made it stale, from the blocks of the last list that are
// still fresh. Call with mu held for reading.
func (v *netView) peerList() *peerList {
	v.fullMu.Lock()
	defer v.fullMu.Unlock()
	if v.full != nil && v.full.fresh {
		return v.full.list
	}
	old := map[*viewMember]*peerBlock{}
	if v.full != nil {
		for _, b := range v.full.list.blocks {
			old[b.members[0]] = b
		}
	}
	pl := &peerList{}
	for start := 0; start < len(v.ranked); {
		end := start + 1
		for end < len(v.ranked) && end-start < 4*int(v.lay.block) && !v.ranked[end-1].cut {
			end++
		}
		members := v.ranked[start:end]
		b := old[members[0]]
		if b == nil || !b.fresh(members) {
			b = newPeerBlock(slices.Clone(members))
		}
		pl.blocks = append(pl.blocks, b)
		pl.starts = append(pl.starts, start)
		start = end
	}
	v.full = &fullList{list: pl, fresh: true}
	return pl
}

// fullList is the last peer list built and whether it is still current.
type fullList struct {
	list  *peerList
	fresh bool
}

// except returns the list without entry i (none when i is out of range),
// in pieces: the blocks as they are, and the one holding entry i cut in
// two around it.
func (pl *peerList) except(i int) [][]byte {
	out := make([][]byte, 0, len(pl.blocks)+1)
	for k, b := range pl.blocks {
		j := i - pl.starts[k]
		if j < 0 || j >= len(b.members) {
			out = append(out, b.buf)
			continue
		}
		if before := b.buf[:b.off[j]]; len(before) > 0 {
			out = append(out, before)
		}
		if after := b.buf[b.off[j+1]:]; len(after) > 0 {
			out = append(out, after)
		}
	}
	return out
}

// Views of all networks, kept by the server.

type views struct {
	mu sync.RWMutex
	m  map[string]*netView
}

func (vs *views) get(id string) *netView {
	vs.mu.RLock()
	defer vs.mu.RUnlock()
	return vs.m[id]
}

func (vs *views) set(id string, v *netView) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if v == nil {
		delete(vs.m, id)
	} else {
		vs.m[id] = v
	}
}

func (vs *views) all() []*netView {
	vs.mu.RLock()
	defer vs.mu.RUnlock()
	out := make([]*netView, 0, len(vs.m))
	for _, v := range vs.m {
		out = append(out, v)
	}
	return out
}

func (vs *views) reset() {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	vs.m = map[string]*netView{}
}
