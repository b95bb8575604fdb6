package controller

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/policy"
)

// reference builds every member's configuration from the database with
// buildMemberConfig, the definition the views must agree with.
func (e *env) reference(id string) map[string]control.MemberConfig {
	e.t.Helper()
	out := map[string]control.MemberConfig{}
	err := e.s.store.Read(e.ctx, func(tx *Tx) error {
		n, err := tx.network(id)
		if err != nil {
			return err
		}
		rs, err := tx.routes(id)
		if err != nil {
			return err
		}
		ms, err := tx.members(id)
		if err != nil {
			return err
		}
		for _, m := range ms {
			mc, err := buildMemberConfig(n, rs, ms, m)
			if err != nil {
				return err
			}
			out[m.NodeID] = roundTrip(e.t, mc)
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func roundTrip(t *testing.T, mc control.MemberConfig) control.MemberConfig {
	t.Helper()
	b, err := json.Marshal(mc)
	if err != nil {
		t.Fatal(err)
	}
	var out control.MemberConfig
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// viewAnswer is what a sync answers, decoded from the bytes it sends.
func (e *env) viewAnswer(id, node string, since uint64) control.MemberConfig {
	e.t.Helper()
	a, err := e.s.answerOf(e.ctx, id, node, since, true)
	if err != nil {
		e.t.Fatal(err)
	}
	b, err := a.encode()
	if err != nil {
		e.t.Fatal(err)
	}
	var mc control.MemberConfig
	if err := json.Unmarshal(b, &mc); err != nil {
		e.t.Fatalf("answer is not JSON: %v\n%s", err, b)
	}
	return mc
}

// TestDeltasAgreeWithFullConfigs drives a network through random changes
// and checks, after each, that every member's full answer is what
// buildMemberConfig gives, and that the delta from every revision it held
// before, applied to what it held, gives the same. A restart in the middle
// checks that revisions and tombstones survive it. With blocks of about two
// entries, the network's peer list spans many blocks, which changes
// rebuild or keep; with small arena chunks, entries move to new arenas
// (compact) many times.
func TestDeltasAgreeWithFullConfigs(t *testing.T) {
	for _, c := range []struct{ block, chunk int }{{64, 64 << 10}, {2, 1 << 10}} {
		t.Run(fmt.Sprintf("blocks of %d, chunks of %d", c.block, c.chunk), func(t *testing.T) {
			testDeltasAgree(t, layout{block: uint32(c.block), chunk: c.chunk})
		})
	}
}

func testDeltasAgree(t *testing.T, lay layout) {
	dir := t.TempDir()
	withLayout := func(c *Config) { c.layout = lay }
	e := startEnvIn(t, dir, withLayout, nil)
	nw := e.mustNetwork("d", "10.30.0.0/24", false)
	rng := rand.New(rand.NewPCG(1, 2))
	var nodes []*node
	held := map[string][]control.MemberConfig{} // every configuration each member held
	deltas, quiets := 0, 0
	check := func(step string) {
		ref := e.reference(nw.ID)
		for node, want := range ref {
			if got := e.viewAnswer(nw.ID, node, 0); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: full answer of %s:\n got %+v\nwant %+v", step, node, got, want)
			}
			for _, old := range held[node] {
				d := e.viewAnswer(nw.ID, node, old.Revision)
				if d.Delta {
					deltas++
				}
				got, err := control.ApplyDelta(old, d)
				if err != nil {
					t.Fatalf("%s: %s from %d: %v", step, node, old.Revision, err)
				}
				if got = roundTrip(t, got); !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: %s from revision %d (delta %t, removed %v, %d peers):\n got %+v\nwant %+v",
						step, node, old.Revision, d.Delta, d.RemovedPeers, len(d.Peers), got, want)
				}
				// A long-poll is not answered for a change that is quiet
				// for the member: then nothing it holds changed.
				at, quiet, err := e.s.quiet(e.ctx, nw.ID, node, old.Revision)
				if err != nil {
					t.Fatalf("%s: quiet(%s, %d): %v", step, node, old.Revision, err)
				}
				if quiet {
					if at > old.Revision {
						quiets++
					}
					same := old
					same.Revision = at
					if !reflect.DeepEqual(same, want) {
						t.Fatalf("%s: %s from revision %d is quiet up to %d, but its configuration changed:\n got %+v\nwant %+v", step, node, old.Revision, at, same, want)
					}
				}
			}
			held[node] = append(held[node], want)
		}
	}
	member := func() *node { return nodes[rng.IntN(len(nodes))] }
	addrOf := func(n *node) (netip.Addr, bool) {
		ms, err := e.admin.Members(e.ctx, nw.ID)
		if err != nil {
			t.Fatal(err)
		}
		if m, ok := memberByNode(ms, n.id.NodeID()); ok && len(m.Addresses) > 0 {
			return m.Addresses[0], true
		}
		return netip.Addr{}, false
	}
	routes := 0
	for step := range 120 {
		if step == 50 {
			e.stop()
			e = startEnvIn(t, dir, withLayout, nil)
			for _, n := range nodes {
				n.c = e.client(&n.id, "")
			}
		}
		op := rng.IntN(12)
		if len(nodes) < 3 {
			op = 0
		}
		var what string
		switch op {
		case 0, 1:
			n := e.newNode()
			nodes = append(nodes, n)
			e.mustJoin(n, nw.ID, "")
			what = "join " + n.id.NodeID()
		case 2, 3:
			n := member()
			_, err := e.admin.AllowMember(e.ctx, nw.ID, n.id.NodeID())
			what = fmt.Sprintf("allow %s: %v", n.id.NodeID(), err)
		case 4:
			n := member()
			_, err := e.admin.DenyMember(e.ctx, nw.ID, n.id.NodeID())
			what = fmt.Sprintf("deny %s: %v", n.id.NodeID(), err)
		case 5:
			n := member()
			err := e.admin.RemoveMember(e.ctx, nw.ID, n.id.NodeID())
			what = fmt.Sprintf("remove %s: %v", n.id.NodeID(), err)
			if rng.IntN(2) == 0 { // and it comes back
				e.mustJoin(n, nw.ID, "")
				what += ", rejoined"
			}
		case 6:
			n := member()
			a := netip.AddrFrom4([4]byte{10, 30, 0, byte(100 + rng.IntN(100))})
			_, err := e.admin.SetMemberAddress(e.ctx, nw.ID, n.id.NodeID(), a)
			what = fmt.Sprintf("set-ip %s %s: %v", n.id.NodeID(), a, err)
		case 7:
			n := member()
			if a, ok := addrOf(n); ok {
				routes++
				dest := netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(16 + routes), 0, 0}), 16)
				_, err := e.admin.AddRoute(e.ctx, nw.ID, control.Route{Dest: dest, Via: a})
				what = fmt.Sprintf("route %s via %s: %v", dest, a, err)
			}
		case 8:
			nv, _ := e.admin.Network(e.ctx, nw.ID)
			if len(nv.Routes) > 0 {
				r := nv.Routes[rng.IntN(len(nv.Routes))]
				_, err := e.admin.DeleteRoute(e.ctx, nw.ID, r.Dest)
				what = fmt.Sprintf("route %s deleted: %v", r.Dest, err)
			} else {
				name := fmt.Sprintf("d%d", step)
				_, err := e.admin.UpdateNetwork(e.ctx, nw.ID, control.UpdateNetworkRequest{Name: &name})
				what = fmt.Sprintf("rename: %v", err)
			}
		case 9:
			n := member()
			ep := netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(rng.IntN(250))}), 51820)
			_, err := n.c.SyncDelta(e.ctx, nw.ID, control.SyncRequest{Endpoints: []netip.AddrPort{ep}, Wait: control.Duration(time.Millisecond)})
			what = fmt.Sprintf("endpoint %s %s: %v", n.id.NodeID(), ep, err)
		case 10:
			n := member()
			tags := [][]string{nil, {"web"}, {"db"}, {"web", "db"}}[rng.IntN(4)]
			_, err := e.admin.SetMemberTags(e.ctx, nw.ID, n.id.NodeID(), tags)
			what = fmt.Sprintf("tags %s %q: %v", n.id.NodeID(), tags, err)
		case 11:
			// Rules that name tags (their compiled form follows who has
			// them) or only the network (it does not).
			sets := []string{
				"allow from tag:web to tag:db on tcp/5432\ndeny from tag:db to any\nallow from members to members on icmp",
				"allow from any to any",
				"deny from tag:web to members on tcp/22\nallow from any to any",
				"allow from tag:web to tag:db on tcp/5432\nallow from tag:db to 10.30.0.0/25 on icmp", // not open: peers follow the rules
				"",
			}
			p, err := policy.ParsePolicy(sets[rng.IntN(len(sets))])
			if err == nil && p == nil {
				p = policy.Policy{}
			}
			if err == nil {
				_, err = e.admin.SetRules(e.ctx, nw.ID, control.SetRulesRequest{Rules: p})
			}
			what = fmt.Sprintf("rules %q: %v", p, err)
		}
		check(fmt.Sprintf("step %d (%s)", step, what))
	}
	if quiets == 0 {
		t.Errorf("no change was quiet for any member: the check of quiet did not run")
	}
	if deltas == 0 {
		t.Fatal("no answer was a delta")
	}
	t.Logf("%d deltas checked, %d quiet", deltas, quiets)

	// Tombstones are forgotten after a while; deltas from before then
	// become full configurations, which still agree.
	e.clock.Advance(tombstoneTTL + time.Hour)
	if err := e.s.maintain(e.ctx); err != nil {
		t.Fatal(err)
	}
	v := e.s.views.get(nw.ID)
	if v.n.Horizon == 0 || len(v.tombs) != 0 {
		t.Errorf("after pruning: horizon %d, %d tombstones", v.n.Horizon, len(v.tombs))
	}
	check("after pruning tombstones")
	for node := range e.reference(nw.ID) {
		hs := held[node]
		if mc := e.viewAnswer(nw.ID, node, hs[0].Revision); mc.Delta && hs[0].Revision < v.n.Horizon {
			t.Errorf("%s got a delta from %d, behind the horizon %d", node, hs[0].Revision, v.n.Horizon)
		}
	}
}

// TestDeltaIsSmall: one change sends one peer to each member, not all.
func TestDeltaIsSmall(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("d", "10.31.0.0/24", true)
	var nodes []*node
	for range 20 {
		n := e.newNode()
		e.mustJoin(n, nw.ID, "")
		nodes = append(nodes, n)
	}
	a := nodes[0]
	mc, err := a.c.SyncDelta(e.ctx, nw.ID, control.SyncRequest{})
	if err != nil || mc.Delta || len(mc.Peers) != 19 {
		t.Fatalf("first sync: delta %t, %d peers, %v", mc.Delta, len(mc.Peers), err)
	}
	ch := make(chan control.MemberConfig, 1)
	go func() {
		d, err := a.c.SyncDelta(e.ctx, nw.ID, control.SyncRequest{Since: mc.Revision, Wait: control.Duration(10 * time.Second)})
		if err != nil {
			t.Error(err)
		}
		ch <- d
	}()
	time.Sleep(100 * time.Millisecond)
	ep := netip.MustParseAddrPort("203.0.113.5:51820")
	if _, err := nodes[7].c.SyncDelta(e.ctx, nw.ID, control.SyncRequest{Endpoints: []netip.AddrPort{ep}}); err != nil {
		t.Fatal(err)
	}
	d := <-ch
	if !d.Delta || d.Since != mc.Revision || len(d.Peers) != 1 || d.Peers[0].NodeID != nodes[7].id.NodeID() || len(d.RemovedPeers) != 0 {
		t.Fatalf("delta after an endpoint change: %+v", d)
	}
	full, err := control.ApplyDelta(mc, d)
	if err != nil || len(full.Peers) != 19 {
		t.Fatalf("applied: %d peers, %v", len(full.Peers), err)
	}
	// An old client (Sync, no ?delta=1) still gets everything.
	old, err := a.c.Sync(e.ctx, nw.ID, control.SyncRequest{Since: mc.Revision})
	if err != nil || old.Delta || len(old.Peers) != 19 {
		t.Fatalf("full sync: delta %t, %d peers, %v", old.Delta, len(old.Peers), err)
	}
}

// TestPeerListBlocks: the peer list without any one entry is every other
// entry in order, and after a change only the block that holds it is
// built again.
func TestPeerListBlocks(t *testing.T) {
	lay := layout{block: 4, chunk: 64 << 10}
	rng := rand.New(rand.NewPCG(3, 4))
	v := &netView{lay: lay}
	entry := func(i int) []byte { return fmt.Appendf(nil, `,{"n":%d}`, i) }
	for i := range 100 {
		vm := newViewMember(memberRec{NodeID: fmt.Sprintf("%010x", rng.Uint64()>>24)}, lay)
		vm.peer = entry(i)
		v.ranked = append(v.ranked, vm)
	}
	check := func(step string) *peerList {
		t.Helper()
		pl := v.peerList()
		for i := -1; i <= len(v.ranked); i++ {
			var want, got []byte
			for j, vm := range v.ranked {
				if j != i {
					want = append(want, vm.peer...)
				}
			}
			for _, p := range pl.except(i) {
				if len(p) == 0 {
					t.Fatalf("%s: except(%d) has an empty piece", step, i)
				}
				got = append(got, p...)
			}
			if string(got) != string(want) {
				t.Fatalf("%s: except(%d):\n got %s\nwant %s", step, i, got, want)
			}
		}
		for k, b := range pl.blocks {
			if n := len(b.members); n > 4*int(lay.block) || (!b.members[n-1].cut && n < 4*int(lay.block) && k < len(pl.blocks)-1) {
				t.Fatalf("%s: block %d of %d entries, last cuts: %t", step, k, n, b.members[n-1].cut)
			}
		}
		return pl
	}
	before := check("start")
	if len(before.blocks) < 10 {
		t.Fatalf("%d entries in %d blocks; want blocks of about %d", len(v.ranked), len(before.blocks), lay.block)
	}
	stale := func() { v.full.fresh = false }

	// One entry changes: its block is new, every other is the same.
	v.ranked[50].peer = entry(1000)
	stale()
	after := check("change")
	kept := 0
	for _, b := range after.blocks {
		if slices.Contains(before.blocks, b) {
			kept++
		}
	}
	if kept != len(before.blocks)-1 || len(after.blocks) != len(before.blocks) {
		t.Errorf("after one change: %d of %d blocks kept, %d blocks now", kept, len(before.blocks), len(after.blocks))
	}

	// Entries come and go; the list stays right.
	for step := range 200 {
		switch i := rng.IntN(len(v.ranked)); rng.IntN(3) {
		case 0:
			v.ranked = slices.Delete(v.ranked, i, i+1)
		case 1:
			vm := newViewMember(memberRec{NodeID: fmt.Sprintf("%010x", rng.Uint64()>>24)}, lay)
			vm.peer = entry(2000 + step)
			v.ranked = slices.Insert(v.ranked, i, vm)
		default:
			v.ranked[i].peer = entry(3000 + step)
		}
		stale()
		check(fmt.Sprintf("step %d", step))
	}
	if !slices.Equal(v.peerList().blocks, v.peerList().blocks) {
		t.Error("a fresh list was built again")
	}
}

// TestArena: entries added one after another are adjacent, so a delta
// sends them as one piece, until a chunk is full; nothing else is. compact
// moves a view's entries to a fresh arena in the order of its log.
func TestArena(t *testing.T) {
	lay := layout{block: 64, chunk: 64}
	ar := entryArena{size: lay.chunk}
	var es [][]byte
	for i := range 7 { // the seventh is past 64 bytes: a new chunk
		es = append(es, ar.add(fmt.Appendf(nil, ",entry-%03d", i)))
	}
	big := ar.add(make([]byte, 40)) // more than a quarter chunk: alone
	for _, tc := range []struct {
		name string
		x, y []byte
		want bool
	}{
		{"0 then 1", es[0], es[1], true},
		{"5 then 6 (next chunk)", es[5], es[6], false},
		{"1 then 0", es[1], es[0], false},
		{"0 then 2", es[0], es[2], false},
		{"6 then big", es[6], big, false},
		{"a copy of 0 then 1", slices.Clone(es[0]), es[1], false},
		{"0 then nothing", es[0], nil, false},
	} {
		if got := adjacent(tc.x, tc.y); got != tc.want {
			t.Errorf("%s: adjacent = %t, want %t", tc.name, got, tc.want)
		}
	}
	if two := es[0][:len(es[0])+len(es[1])]; string(two) != ",entry-000,entry-001" {
		t.Errorf("0 and 1 together: %q", two)
	}
	if ar.appended != 7*10 {
		t.Errorf("appended %d bytes; want 70 (the big entry is not in a chunk)", ar.appended)
	}

	v := &netView{lay: lay, members: map[string]*viewMember{}}
	for i := range 5 {
		vm := newViewMember(memberRec{NodeID: fmt.Sprint(i), Rev: uint64(10 - i)}, lay)
		vm.peer = fmt.Appendf(nil, ",m%d", i) // not in an arena
		v.members[vm.rec.NodeID] = vm
		v.log = append(v.log, logEntry{vm.rec.Rev, vm.rec.NodeID})
	}
	slices.Reverse(v.log) // by revision: member 4 first
	v.compact()
	for i := 4; i > 0; i-- {
		a, b := v.members[fmt.Sprint(i)].peer, v.members[fmt.Sprint(i-1)].peer
		if !adjacent(a, b) || string(a) != fmt.Sprintf(",m%d", i) {
			t.Errorf("after compact, member %d (%q) and %d (%q) are not one after the other", i, a, i-1, b)
		}
	}
	if v.entryBytes != 15 {
		t.Errorf("entryBytes %d after compact; want 15", v.entryBytes)
	}
}
