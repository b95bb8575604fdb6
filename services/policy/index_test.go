package policy

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestPutRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    Member
		want string
	}{
		{"bad node ID", Member{NodeID: "A000000001"}, `member "A000000001": want a node ID, 10 lower-case hex digits`},
		{"address another holds", Member{NodeID: "f000000001", Addresses: addrs("10.99.0.7", "10.99.0.5")},
			"address 10.99.0.5 is held by both b000000001 and f000000001"},
		{"a member taking another's address", Member{NodeID: web1, Addresses: addrs("10.99.0.2")},
			"address 10.99.0.2 is held by both a000000002 and a000000001"},
		{"zoned address", Member{NodeID: web1, Addresses: addrs("fe80::1%eth0")},
			"member a000000001: address fe80::1%eth0 is not a plain IPv4 or IPv6 address"},
		{"address twice", Member{NodeID: web1, Addresses: addrs("10.99.0.7", "10.99.0.7")},
			"member a000000001: address 10.99.0.7 is listed twice"},
		{"tag not lowered", Member{NodeID: web1, Addresses: addrs("10.99.0.1"), Tags: []string{"web", "Web"}},
			`member a000000001: tag "Web": want a tag as names.Tag gives it`},
	} {
		ix := testIndex(t)
		err := ix.Put(tc.m)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: Put error = %v, want %s", tc.name, err, tc.want)
		}
		if diff := indexDiff(ix, testIndex(t)); diff != "" {
			t.Errorf("%s: a refused Put changed the index: %s", tc.name, diff)
		}
	}
	ix := testIndex(t)
	if err := ix.SetRoutes([]Route{
		{netip.MustParsePrefix("172.16.0.0/16"), netip.MustParseAddr("10.99.0.1")},
		{netip.MustParsePrefix("172.17.0.1/16"), netip.MustParseAddr("10.99.0.1")},
	}); err == nil || err.Error() != "route to 172.17.0.1/16: 172.17.0.1/16 is not a canonical prefix: write 172.17.0.0/16" {
		t.Errorf("SetRoutes error = %v", err)
	}
	if err := ix.SetRoutes([]Route{{Dest: netip.MustParsePrefix("172.17.0.0/16")}}); err == nil || err.Error() != "route to 172.17.0.0/16: via no address" {
		t.Errorf("SetRoutes error = %v", err)
	}
	if diff := indexDiff(ix, testIndex(t)); diff != "" {
		t.Errorf("a refused SetRoutes changed the index: %s", diff)
	}
}

// TestPutCopies: the Index keeps its own copies of what Put is given,
// and what it gave before a change stays as it was.
func TestPutCopies(t *testing.T) {
	ix := testIndex(t)
	m := Member{NodeID: "f000000001", Addresses: addrs("10.99.0.7"), Tags: []string{"web"}}
	if err := ix.Put(m); err != nil {
		t.Fatal(err)
	}
	m.Addresses[0], m.Tags[0] = netip.MustParseAddr("10.99.0.8"), "db"
	got, _ := ix.Member("f000000001")
	if got.Addresses[0] != netip.MustParseAddr("10.99.0.7") || got.Tags[0] != "web" {
		t.Fatalf("the Index shares the slices given to Put: %+v", got)
	}
	rs, err := Compile(policy(t, "allow from tag:web to any"), ix, db)
	if err != nil {
		t.Fatal(err)
	}
	before := fmt.Sprint(rs, got)
	if err := ix.Put(Member{NodeID: "f000000001", Addresses: addrs("10.99.0.9"), Tags: []string{"db"}}); err != nil {
		t.Fatal(err)
	}
	ix.Remove(web1)
	if after := fmt.Sprint(rs, got); after != before {
		t.Fatalf("a change wrote into what the Index had given: %s, then %s", before, after)
	}
}

// TestIndexChanges applies random sequences of Put, Remove and SetRoutes
// to one Index and checks, after each, that it answers Check, Decide,
// Compile, Peers and Member exactly as NewIndex does of the same network.
func TestIndexChanges(t *testing.T) {
	steps := 400
	if testing.Short() {
		steps = 100
	}
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			testIndexChanges(t, seed, steps)
		})
	}
}

func testIndexChanges(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 15))
	ids := []string{web1, web2, db, gw, gw2, lone, pend, "f000000001", "f000000002", "f000000003", "f000000004", "f000000005"}
	pool := addrs("10.99.0.1", "10.99.0.2", "10.99.0.3", "10.99.0.5", "10.99.0.10", "10.99.0.11", "10.99.0.20", "10.99.0.130",
		"10.99.0.200", "172.16.5.1", "fd00:16::1", "fd00:16::2", "10.99.1.1")
	tags := []string{"web", "db", "gw", "api", "qa", "ops"}
	routes := []Route{
		{netip.MustParsePrefix("172.16.0.0/16"), netip.MustParseAddr("10.99.0.10")},
		{netip.MustParsePrefix("fd00:16::/48"), netip.MustParseAddr("10.99.0.10")},
		{netip.MustParsePrefix("192.168.1.0/24"), netip.MustParseAddr("10.99.0.11")},
		{netip.MustParsePrefix("172.16.5.0/24"), netip.MustParseAddr("10.99.0.20")},
		{netip.MustParsePrefix("10.99.0.128/25"), netip.MustParseAddr("10.99.0.5")},
		{netip.MustParsePrefix("192.168.1.0/24"), netip.MustParseAddr("10.99.0.99")},
		{netip.MustParsePrefix("192.168.2.0/24"), netip.MustParseAddr("fd00:16::2")},
	}
	hosts := append(slices.Clone(pool), addrs("10.99.0.4", "172.16.3.4", "192.168.1.9", "192.168.2.1", "fd00:16:0:9::1", "8.8.8.8")...)
	services := []probe{{proto: TCP, port: 22}, {proto: UDP, port: 53}, {proto: ICMP}}

	model := Network{CIDR: netip.MustParsePrefix("10.99.0.0/24")}
	held := map[string][]netip.Addr{} // what the model's members hold, for picking free addresses
	ix, err := NewIndex(model)
	if err != nil {
		t.Fatal(err)
	}
	for step := range steps {
		var what string
		switch op := rng.IntN(10); {
		case op < 6:
			m := Member{NodeID: ids[rng.IntN(len(ids))]}
			for range rng.IntN(3) {
				a := pool[rng.IntN(len(pool))]
				for try := 0; try < 5 && rng.IntN(8) != 0 && heldByOther(held, m.NodeID, a); try++ {
					a = pool[rng.IntN(len(pool))]
				}
				m.Addresses = append(m.Addresses, a)
			}
			for range rng.IntN(4) {
				m.Tags = append(m.Tags, tags[rng.IntN(len(tags))])
			}
			switch rng.IntN(40) {
			case 0:
				m.Tags = append(m.Tags, "Web")
			case 1:
				m.NodeID = "F000000001"
			}
			what = fmt.Sprintf("Put(%+v)", m)
			next := withMember(model, m)
			_, wantErr := NewIndex(next)
			if err := ix.Put(m); (err != nil) != (wantErr != nil) {
				t.Fatalf("step %d: %s: error %v, but NewIndex of the network with it: %v", step, what, err, wantErr)
			} else if err == nil {
				model, held[m.NodeID] = next, m.Addresses
			}
		case op < 9:
			id := ids[rng.IntN(len(ids))]
			what = "Remove(" + id + ")"
			ix.Remove(id)
			model = withMember(model, Member{NodeID: id}, true)
			delete(held, id)
		default:
			var rs []Route
			for range rng.IntN(5) {
				rs = append(rs, routes[rng.IntN(len(routes))])
			}
			what = fmt.Sprintf("SetRoutes(%v)", rs)
			if err := ix.SetRoutes(rs); err != nil {
				t.Fatalf("step %d: %s: %v", step, what, err)
			}
			model.Routes = rs
		}
		fresh, err := NewIndex(model)
		if err != nil {
			t.Fatalf("step %d: %s: NewIndex of the network after it: %v", step, what, err)
		}
		if err := ix.checkInvariants(); err != nil {
			t.Fatalf("step %d: %s: %v", step, what, err)
		}
		if diff := indexDiff(ix, fresh); diff != "" {
			t.Fatalf("step %d: %s: %s", step, what, diff)
		}
		for range 3 {
			p := randomPolicy(rng)
			if diff := answersDiff(p, ix, fresh, ids, hosts, services); diff != "" {
				t.Fatalf("step %d: %s: policy:\n%s%s", step, what, p, diff)
			}
		}
	}
}

// TestIndexChangesLarge is TestIndexChanges on a network large enough
// to split and join the Index's chunks and to take large tags' members in
// address order (resolve), with many changes between two comparisons.
func TestIndexChangesLarge(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	id := func(i int) string { return fmt.Sprintf("%010x", 0x100000+i*7) }
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}) }
	tags := []string{"a", "b", "c"}
	randomMember := func() Member {
		m := Member{NodeID: id(rng.IntN(2000))}
		for range rng.IntN(3) {
			m.Addresses = append(m.Addresses, addr(1+rng.IntN(16000)))
		}
		for range rng.IntN(3) {
			m.Tags = append(m.Tags, tags[rng.IntN(len(tags))])
		}
		return m
	}
	p := policy(t, fmt.Sprintf(`
allow from tag:a to tag:b on tcp/22
allow from tag:b to any
deny from tag:c to 10.0.1.0/24
allow from members to tag:c on icmp
allow from 10.0.2.0/23,10.0.32.0/19 to tag:a,member:%s
allow from tag:c to 172.16.0.0/16`, id(5)))
	routeSets := [][]Route{nil,
		{{netip.MustParsePrefix("172.16.0.0/16"), addr(7)}, {netip.MustParsePrefix("10.0.4.0/22"), addr(9)}},
		{{netip.MustParsePrefix("172.16.0.0/16"), addr(11)}}}

	model := Network{CIDR: netip.MustParsePrefix("10.0.0.0/16")}
	ix, err := NewIndex(model)
	if err != nil {
		t.Fatal(err)
	}
	steps := 40
	if testing.Short() {
		steps = 10
	}
	for step := range steps {
		ops := 60
		if step == 0 {
			ops = 2000
		}
		for range ops {
			switch op := rng.IntN(10); {
			case op < 7 || step == 0:
				m := randomMember()
				next := withMember(model, m)
				_, wantErr := NewIndex(next)
				if err := ix.Put(m); (err != nil) != (wantErr != nil) {
					t.Fatalf("step %d: Put(%+v): error %v, but NewIndex of the network with it: %v", step, m, err, wantErr)
				} else if err == nil {
					model = next
				}
			case op < 9:
				m := Member{NodeID: id(rng.IntN(2000))}
				ix.Remove(m.NodeID)
				model = withMember(model, m, true)
			default:
				rs := routeSets[rng.IntN(len(routeSets))]
				if err := ix.SetRoutes(rs); err != nil {
					t.Fatal(err)
				}
				model.Routes = rs
			}
		}
		fresh, err := NewIndex(model)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if err := ix.checkInvariants(); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if diff := indexDiff(ix, fresh); diff != "" {
			t.Fatalf("step %d: %s", step, diff)
		}
		for _, tag := range tags {
			var want []netip.Prefix
			for _, m := range model.Members {
				if slices.Contains(m.Tags, tag) {
					for _, a := range m.Addresses {
						want = append(want, hostPrefix(a))
					}
				}
			}
			if got, want := ix.resolve(Selector{Kind: KindTag, Name: tag}), merge(want); !slices.Equal(got, want) {
				t.Fatalf("step %d: tag:%s is %d prefixes, want %d", step, tag, len(got), len(want))
			}
		}
		var ids []string
		var hosts []netip.Addr
		for range 20 {
			ids = append(ids, model.Members[rng.IntN(len(model.Members))].NodeID)
			hosts = append(hosts, addr(1+rng.IntN(16000)))
		}
		if diff := answersDiff(p, ix, fresh, ids, hosts, []probe{{proto: TCP, port: 22}, {proto: ICMP}}); diff != "" {
			t.Fatalf("step %d (%d members): %s", step, len(model.Members), diff)
		}
		for _, id := range ids[:5] {
			if got, want := Peers(p, ix, id), peersOneByOne(p, ix, id); !slices.Equal(got, want) {
				t.Fatalf("step %d: Peers(%s), against asking of each member: %s", step, id, listDiff(got, want))
			}
		}
	}
	t.Logf("%d members, %d chunks of addresses, %d of node IDs", len(model.Members), len(ix.addrs.cs), len(ix.ids.cs))
	if len(model.Members) < 1000 || len(ix.addrs.cs) < 3 {
		t.Fatalf("the network grew to %d members, %d chunks of addresses: too few to test", len(model.Members), len(ix.addrs.cs))
	}
}

// peersOneByOne is Peers as its doc says it, asked of every member in
// turn: those that an allow rule lets self reach or lets reach self.
func peersOneByOne(p Policy, ix *Index, self string) []string {
	si := ix.byID[self]
	if si == nil || len(si.Addresses) == 0 {
		return nil
	}
	own, served := ix.holdings(si)
	mine := append(own, served...)
	var out []string
	for m := range ix.ids.all() {
		if m == si || len(m.Addresses) == 0 {
			continue
		}
		own, served := ix.holdings(m)
		theirs := append(own, served...)
		for _, r := range p {
			if r.Action == Allow && (ix.touches(r.From, si, mine) && ix.touches(r.To, m, theirs) ||
				ix.touches(r.To, si, mine) && ix.touches(r.From, m, theirs)) {
				out = append(out, m.NodeID)
				break
			}
		}
	}
	return out
}

// withMember is n with m in the place of the member of its node ID, or
// added; without it, when remove.
func withMember(n Network, m Member, remove ...bool) Network {
	n.Members = slices.DeleteFunc(slices.Clone(n.Members), func(o Member) bool { return o.NodeID == m.NodeID })
	if len(remove) == 0 {
		n.Members = append(n.Members, m)
	}
	return n
}

func heldByOther(held map[string][]netip.Addr, id string, a netip.Addr) bool {
	for o, as := range held {
		if o != id && slices.Contains(as, a) {
			return true
		}
	}
	return false
}

// indexDiff says how what ix and want give of their members differ.
func indexDiff(ix, want *Index) string {
	if got, w := slices.Sorted(maps.Keys(ix.byID)), slices.Sorted(maps.Keys(want.byID)); !slices.Equal(got, w) {
		return fmt.Sprintf("members %v, want %v", got, w)
	}
	for id := range want.byID {
		got, _ := ix.Member(id)
		w, _ := want.Member(id)
		if !reflect.DeepEqual(got, w) {
			return fmt.Sprintf("Member(%s) = %+v, want %+v", id, got, w)
		}
	}
	if got, w := ix.routeList(), want.routeList(); !reflect.DeepEqual(ix.anyNet, want.anyNet) || got != w {
		return fmt.Sprintf("routes %s (any: %v), want %s (any: %v)", got, ix.anyNet, w, want.anyNet)
	}
	return ""
}

// routeList renders the routes with their gateways.
func (ix *Index) routeList() string {
	var b strings.Builder
	for _, r := range ix.routes {
		gw := "none"
		if r.gw != nil {
			gw = r.gw.NodeID
		}
		fmt.Fprintf(&b, "%s via %s (%s); ", r.Dest, r.Via, gw)
	}
	return b.String()
}

// answersDiff says how the answers of ix and want to p differ: Check,
// Compile and Peers for each of ids, Decide for every packet between
// hosts of each of services.
func answersDiff(p Policy, ix, want *Index, ids []string, hosts []netip.Addr, services []probe) string {
	gw, gerr := p.Check(ix)
	ww, werr := p.Check(want)
	if !reflect.DeepEqual(gw, ww) || fmt.Sprint(gerr) != fmt.Sprint(werr) {
		return fmt.Sprintf("Check = %q, %v; want %q, %v", gw, gerr, ww, werr)
	}
	for _, id := range ids {
		got, gerr := Compile(p, ix, id)
		w, werr := Compile(p, want, id)
		if !reflect.DeepEqual(got, w) || fmt.Sprint(gerr) != fmt.Sprint(werr) {
			return fmt.Sprintf("Compile(%s) = %+v, %v\nwant %+v, %v", id, got, gerr, w, werr)
		}
		if got, w := Peers(p, ix, id), Peers(p, want, id); !reflect.DeepEqual(got, w) {
			return fmt.Sprintf("Peers(%s): %s", id, listDiff(got, w))
		}
	}
	for _, src := range hosts {
		for _, dst := range hosts {
			for _, s := range services {
				got, w := Decide(p, ix, src, dst, s.proto, s.port), Decide(p, want, src, dst, s.proto, s.port)
				if got != w {
					return fmt.Sprintf("Decide(%v -> %v %v/%d) = %+v, want %+v", src, dst, s.proto, s.port, got, w)
				}
			}
		}
	}
	return ""
}

// listDiff says how node IDs got differ from want, in a line.
func listDiff(got, want []string) string {
	if got == nil || want == nil {
		return fmt.Sprintf("%d node IDs (nil: %v), want %d (nil: %v)", len(got), got == nil, len(want), want == nil)
	}
	if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
		return fmt.Sprintf("%d node IDs, not in order or with repeats", len(got))
	}
	var extra, missing []string
	for _, id := range got {
		if _, ok := slices.BinarySearch(want, id); !ok {
			extra = append(extra, id)
		}
	}
	for _, id := range want {
		if _, ok := slices.BinarySearch(got, id); !ok {
			missing = append(missing, id)
		}
	}
	return fmt.Sprintf("%d node IDs, want %d; extra %q, missing %q (the first five)", len(got), len(want), extra[:min(5, len(extra))], missing[:min(5, len(missing))])
}

// checkInvariants says what is wrong in how ix holds its members.
func (ix *Index) checkInvariants() error {
	if err := ix.ids.check(); err != nil {
		return fmt.Errorf("by node ID: %w", err)
	}
	if err := ix.addrs.check(); err != nil {
		return fmt.Errorf("by address: %w", err)
	}
	if n := ix.ids.len(); n != len(ix.byID) {
		return fmt.Errorf("%d members in node ID order, %d by ID", n, len(ix.byID))
	}
	nAddrs := 0
	for id, m := range ix.byID {
		if m.NodeID != id || ix.slots[m.slot] != m {
			return fmt.Errorf("member %s is out of place", id)
		}
		nAddrs += len(m.Addresses)
		for _, a := range m.Addresses {
			if ix.byAddr[a] != m {
				return fmt.Errorf("address %s of %s is not indexed", a, id)
			}
		}
		for _, tp := range m.tags {
			if l := ix.tagged(tp.tag); tp.at >= len(l) || l[tp.at] != m {
				return fmt.Errorf("member %s is not where it says in tag %s", id, tp.tag)
			}
		}
	}
	if n := ix.addrs.len(); n != nAddrs || len(ix.byAddr) != nAddrs {
		return fmt.Errorf("%d addresses in order, %d by address, %d held", n, len(ix.byAddr), nAddrs)
	}
	for e := range ix.addrs.all() {
		if ix.byAddr[e.addr] != e.m {
			return fmt.Errorf("address %s is in order under the wrong member", e.addr)
		}
	}
	for tag, l := range ix.byTag {
		if len(*l) == 0 {
			return fmt.Errorf("tag %s is listed without members", tag)
		}
		for _, m := range *l {
			if ix.byID[m.NodeID] != m || !slices.Contains(m.Tags, tag) {
				return fmt.Errorf("tag %s lists %s, which does not have it", tag, m.NodeID)
			}
		}
	}
	for n, m := range ix.slots {
		if m == nil != slices.Contains(ix.free, n) {
			return fmt.Errorf("slot %d is both free and taken, or neither", n)
		}
	}
	for _, r := range ix.routes {
		if r.gw != ix.byAddr[r.Via] {
			return fmt.Errorf("route %v has the wrong gateway", r.Route)
		}
	}
	return nil
}

// len is how many values l holds.
func (l *chunks[T]) len() int {
	n := 0
	for _, c := range l.cs {
		n += len(c)
	}
	return n
}

// check says what is wrong with l: an empty or overfull chunk, values
// out of order.
func (l *chunks[T]) check() error {
	var prev *T
	for i, c := range l.cs {
		if len(c) == 0 || len(c) > chunkMax {
			return fmt.Errorf("chunk %d holds %d", i, len(c))
		}
		for j := range c {
			if prev != nil && l.cmp(*prev, c[j]) >= 0 {
				return fmt.Errorf("chunk %d: value %d is out of order", i, j)
			}
			prev = &c[j]
		}
	}
	return nil
}

// TestChunks checks chunks against a sorted slice through random inserts
// and deletes, enough of them to split and join chunks.
func TestChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var want []int
	l := buildChunks([]int{}, cmp.Compare[int])
	for step := range 60000 {
		v := rng.IntN(4000)
		if step > 30000 {
			v = rng.IntN(8000) // mostly deletes of what is not there, then refills
		}
		i, found := slices.BinarySearch(want, v)
		switch {
		case found && rng.IntN(3) != 0 || step > 45000 && found:
			l.delete(v)
			want = slices.Delete(want, i, i+1)
		case !found:
			l.insert(v)
			want = slices.Insert(want, i, v)
		}
		if step%997 != 0 {
			continue
		}
		if err := l.check(); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if got := slices.Collect(l.all()); !slices.Equal(got, want) {
			t.Fatalf("step %d: %d values, want %d", step, len(got), len(want))
		}
		from := rng.IntN(8000)
		i, _ = slices.BinarySearch(want, from)
		if got := slices.Collect(l.from(from)); !slices.Equal(got, want[i:]) {
			t.Fatalf("step %d: from %d: %d values, want %d", step, from, len(got), len(want[i:]))
		}
	}
	if len(l.cs) > 2*len(want)/(chunkMax/4)+1 {
		t.Errorf("%d values in %d chunks", len(want), len(l.cs))
	}
}
