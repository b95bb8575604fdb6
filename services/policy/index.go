package policy

import (
	"cmp"
	"errors"
	"fmt"
	"iter"
	"net/netip"
	"slices"

	"github.com/gatenet/gate/services/names"
)

// Index is a Network prepared for the questions Check, Decide, Compile
// and Peers ask: members by node ID, by tag and by address. NewIndex
// builds it; Put, Remove and SetRoutes change it in place, at a cost that
// grows with the logarithm of the network's size (Put, Remove) or with
// the number of routes (SetRoutes), so that a controller keeps one Index
// per network and applies each join, leave or change to it rather than
// build a new one.
//
// An Index may be read (Check, Decide, Compile, Peers, Member) by any
// number of goroutines at once while no one changes it. Put, Remove and
// SetRoutes need the caller's exclusion: no reader and no other writer
// while one runs (a controller holds its view's write lock, and answers
// under the read lock). Nothing an Index returns shares memory that a
// change writes: a Ruleset or a peer list stays as it was given after
// Put, and so do the slices of a Member (which are the Index's own: leave
// them be).
type Index struct {
	cidr   netip.Prefix
	routes []route
	anyNet []netip.Prefix       // what "any" stands for: the CIDR and every served subnet, merged
	vias   map[netip.Addr][]int // address -> the routes via it, by position in routes

	byID   map[string]*member
	byAddr map[netip.Addr]*member
	// byTag lists each tag's members in no order (each member knows its
	// place, member.tags, so that leaving is a swap); what is read from
	// it is sorted before it is answered. Through a pointer, so that
	// joining a tag is one lookup.
	byTag map[string]*[]*member
	ids   chunks[*member]   // every member, by node ID: Peers answers in that order
	addrs chunks[addrEntry] // every address held, in order: for the addresses inside a prefix
	// slots numbers the members densely, for Peers' bitmaps; a slot
	// freed by Remove (nil) is on free until Put takes it again.
	slots []*member
	free  []int
}

// member is a member as the Index holds it. Member's slices are the
// Index's copies, never written after Put: a change gives new ones.
type member struct {
	Member
	slot int
	tags []tagPlace // its tags without repeats, and where it is in byTag
}

type tagPlace struct {
	tag string
	at  int // its position in byTag[tag]
}

type route struct {
	Route
	gw *member // the member whose address Via is; nil when none is
}

type addrEntry struct {
	addr netip.Addr
	m    *member
}

func byNodeID(a, b *member) int      { return cmp.Compare(a.NodeID, b.NodeID) }
func byAddress(a, b addrEntry) int   { return a.addr.Compare(b.addr) }
func byMemberNodeID(a, b Member) int { return cmp.Compare(a.NodeID, b.NodeID) }

// NewIndex checks and indexes n. It refuses what would make the questions
// ambiguous: an invalid CIDR, a node ID twice or not 10 hex digits, an
// address that is invalid or held by two members, a tag that is not as
// names.Tag returns it, a route to a non-canonical prefix or via no
// address. It copies what it keeps of n.
func NewIndex(n Network) (*Index, error) {
	if !n.CIDR.IsValid() {
		return nil, errors.New("the network has no overlay CIDR")
	}
	if err := checkPrefix(n.CIDR); err != nil {
		return nil, fmt.Errorf("overlay CIDR: %w", err)
	}
	ms := slices.Clone(n.Members)
	slices.SortFunc(ms, byMemberNodeID)
	var nAddrs, nTags int
	for i, m := range ms {
		if err := checkMember(m); err != nil {
			return nil, err
		}
		if i > 0 && ms[i-1].NodeID == m.NodeID {
			return nil, fmt.Errorf("member %s is listed twice", m.NodeID)
		}
		nAddrs += len(m.Addresses)
		nTags += len(m.Tags)
	}
	ix := &Index{
		cidr:   n.CIDR,
		byID:   make(map[string]*member, len(ms)),
		byAddr: make(map[netip.Addr]*member, nAddrs),
		byTag:  make(map[string]*[]*member),
		slots:  make([]*member, len(ms)),
	}
	// Built at once rather than by Put: one allocation for all the
	// members, one for their addresses, one for their tags, and the
	// ordered lists sorted once.
	held := make([]member, len(ms))
	addrCopies := make([]netip.Addr, 0, nAddrs)
	tagCopies := make([]string, 0, nTags)
	places := make([]tagPlace, 0, nTags)
	entries := make([]addrEntry, 0, nAddrs)
	for i, m := range ms {
		hm := &held[i]
		hm.NodeID = m.NodeID
		hm.Addresses, addrCopies = copyInto(addrCopies, m.Addresses)
		hm.Tags, tagCopies = copyInto(tagCopies, m.Tags)
		hm.slot = i
		k := len(places)
		places = places[:k+len(m.Tags)]
		hm.tags = places[k:k:len(places)] // tag fills it
		ix.slots[i] = hm
		ix.byID[m.NodeID] = hm
		for _, a := range m.Addresses {
			ix.byAddr[a] = hm
			entries = append(entries, addrEntry{a, hm})
		}
		ix.tag(hm)
	}
	slices.SortFunc(entries, byAddress)
	for i := 1; i < len(entries); i++ {
		if e, prev := entries[i], entries[i-1]; e.addr == prev.addr {
			first, second := prev.m, e.m
			if first.NodeID > second.NodeID {
				first, second = second, first
			}
			return nil, fmt.Errorf("address %s is held by both %s and %s", e.addr, first.NodeID, second.NodeID)
		}
	}
	ix.ids = buildChunks(slices.Clone(ix.slots), byNodeID)
	ix.addrs = buildChunks(entries, byAddress)
	if err := ix.SetRoutes(n.Routes); err != nil {
		return nil, err
	}
	return ix, nil
}

// copyInto appends s to arena and returns the copy (nil when s is nil),
// with no room to grow into what follows.
func copyInto[T any](arena, s []T) (copied, grown []T) {
	if s == nil {
		return nil, arena
	}
	i := len(arena)
	arena = append(arena, s...)
	return arena[i:len(arena):len(arena)], arena
}

// checkMember says what is wrong with m on its own: a node ID that is not
// 10 hex digits, an address that is invalid or listed twice, a tag that
// is not as names.Tag returns it.
func checkMember(m Member) error {
	if !isNodeID(m.NodeID) {
		return fmt.Errorf("member %s: want a node ID, 10 lower-case hex digits", quote(m.NodeID))
	}
	for i, a := range m.Addresses {
		if !a.IsValid() || a.Zone() != "" || a.Is4In6() {
			return fmt.Errorf("member %s: address %s is not a plain IPv4 or IPv6 address", m.NodeID, a)
		}
		if slices.Contains(m.Addresses[:i], a) {
			return fmt.Errorf("member %s: address %s is listed twice", m.NodeID, a)
		}
	}
	for _, t := range m.Tags {
		if nt, ok := names.Tag(t); !ok || nt != t {
			return fmt.Errorf("member %s: tag %s: want a tag as names.Tag gives it", m.NodeID, quote(t))
		}
	}
	return nil
}

// Put adds m to the network, or, when a member has m's node ID, puts m
// in its place: its addresses and tags become m's. It refuses, and
// changes nothing, what NewIndex refuses of a member: a node ID that is
// not 10 hex digits, an address that is invalid or that another member
// holds, a tag that is not as names.Tag returns it. It copies m's slices.
// It costs about the logarithm of the network's size, and a route's
// gateway is found again when m takes or gives up its Via.
func (ix *Index) Put(m Member) error {
	if err := checkMember(m); err != nil {
		return err
	}
	old := ix.byID[m.NodeID]
	for _, a := range m.Addresses {
		if h := ix.byAddr[a]; h != nil && h != old {
			return fmt.Errorf("address %s is held by both %s and %s", a, h.NodeID, m.NodeID)
		}
	}
	m.Addresses, m.Tags = slices.Clone(m.Addresses), slices.Clone(m.Tags)
	if old != nil {
		ix.release(old)
		old.Member = m
		ix.hold(old)
		return nil
	}
	nm := &member{Member: m}
	if n := len(ix.free); n > 0 {
		nm.slot, ix.free = ix.free[n-1], ix.free[:n-1]
		ix.slots[nm.slot] = nm
	} else {
		nm.slot = len(ix.slots)
		ix.slots = append(ix.slots, nm)
	}
	ix.byID[m.NodeID] = nm
	ix.ids.insert(nm)
	ix.hold(nm)
	return nil
}

// Remove takes the member with node ID id out of the network, if it is
// in it. A rule's member: selector naming it then matches nothing.
func (ix *Index) Remove(id string) {
	m, ok := ix.byID[id]
	if !ok {
		return
	}
	ix.release(m)
	ix.ids.delete(m)
	delete(ix.byID, id)
	ix.slots[m.slot] = nil
	ix.free = append(ix.free, m.slot)
	*m = member{} // NewIndex's members share one allocation: let go of what it held
}

// hold indexes m's addresses and tags.
func (ix *Index) hold(m *member) {
	for _, a := range m.Addresses {
		ix.byAddr[a] = m
		ix.addrs.insert(addrEntry{a, m})
		for _, r := range ix.vias[a] {
			ix.routes[r].gw = m
		}
	}
	ix.tag(m)
}

// release undoes hold.
func (ix *Index) release(m *member) {
	for _, a := range m.Addresses {
		delete(ix.byAddr, a)
		ix.addrs.delete(addrEntry{addr: a})
		for _, r := range ix.vias[a] {
			ix.routes[r].gw = nil
		}
	}
	for len(m.tags) > 0 {
		ix.untag(m, len(m.tags)-1)
	}
}

// tag lists m under each of its tags.
func (ix *Index) tag(m *member) {
	if m.tags = m.tags[:0]; cap(m.tags) < len(m.Tags) {
		m.tags = make([]tagPlace, 0, len(m.Tags))
	}
	for i, t := range m.Tags {
		if slices.Contains(m.Tags[:i], t) {
			continue
		}
		list := ix.byTag[t]
		if list == nil {
			list = new([]*member)
			ix.byTag[t] = list
		}
		m.tags = append(m.tags, tagPlace{t, len(*list)})
		*list = append(*list, m)
	}
}

// untag takes m off the list of its k-th tag (m.tags[k]), moving the
// list's last member into its place.
func (ix *Index) untag(m *member, k int) {
	p := m.tags[k]
	list := *ix.byTag[p.tag]
	last := list[len(list)-1]
	list[p.at] = last
	for i := range last.tags {
		if last.tags[i].tag == p.tag {
			last.tags[i].at = p.at
		}
	}
	list[len(list)-1] = nil
	if list = list[:len(list)-1]; len(list) == 0 {
		delete(ix.byTag, p.tag)
	} else {
		*ix.byTag[p.tag] = list
	}
	m.tags = slices.Delete(m.tags, k, k+1)
}

// SetRoutes replaces the served subnets with rs. It refuses, and changes
// nothing, a route to a non-canonical prefix or via no address. It costs
// about the number of routes.
func (ix *Index) SetRoutes(rs []Route) error {
	routes := make([]route, 0, len(rs))
	vias := make(map[netip.Addr][]int, len(rs))
	anyNet := []netip.Prefix{ix.cidr}
	for _, r := range rs {
		if err := checkPrefix(r.Dest); err != nil {
			return fmt.Errorf("route to %s: %w", r.Dest, err)
		}
		if !r.Via.IsValid() {
			return fmt.Errorf("route to %s: via no address", r.Dest)
		}
		vias[r.Via] = append(vias[r.Via], len(routes))
		routes = append(routes, route{Route: r, gw: ix.byAddr[r.Via]})
		anyNet = append(anyNet, r.Dest)
	}
	ix.routes, ix.vias, ix.anyNet = routes, vias, merge(anyNet)
	return nil
}

// Member returns the member with node ID id.
func (ix *Index) Member(id string) (Member, bool) {
	m, ok := ix.byID[id]
	if !ok {
		return Member{}, false
	}
	return m.Member, true
}

// tagged is the members that have tag t, in no order.
func (ix *Index) tagged(t string) []*member {
	if l := ix.byTag[t]; l != nil {
		return *l
	}
	return nil
}

// memberAt is the member that holds address a, or nil.
func (ix *Index) memberAt(a netip.Addr) *member { return ix.byAddr[a] }

// addrsIn yields the members' addresses inside p, in order, with their
// members.
func (ix *Index) addrsIn(p netip.Prefix) iter.Seq2[netip.Addr, *member] {
	return func(yield func(netip.Addr, *member) bool) {
		if p.IsSingleIP() {
			if m := ix.byAddr[p.Addr()]; m != nil {
				yield(p.Addr(), m)
			}
			return
		}
		for e := range ix.addrs.from(addrEntry{addr: p.Masked().Addr()}) {
			if !p.Contains(e.addr) || !yield(e.addr, e.m) {
				return
			}
		}
	}
}
