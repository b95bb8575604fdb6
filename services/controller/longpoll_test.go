package controller

import (
	"net/netip"
	"testing"
	"time"

	"github.com/gatenet/gate/services/control"
)

type syncResult struct {
	mc  control.MemberConfig
	err error
}

func (e *env) syncAsync(n *node, netID string, req control.SyncRequest) <-chan syncResult {
	ch := make(chan syncResult, 1)
	go func() {
		mc, err := n.c.Sync(e.ctx, netID, req)
		ch <- syncResult{mc, err}
	}()
	return ch
}

func waitSync(t *testing.T, what string, ch <-chan syncResult) syncResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: sync did not return", what)
		return syncResult{}
	}
}

func TestLongPoll(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("seed", "192.168.254.0/24", true)
	a, b := e.newNode(), e.newNode()
	mc := e.mustJoin(a, nw.ID, "")
	// Nothing changes: a short wait runs out and answers the same revision.
	start := time.Now()
	r := waitSync(t, "idle", e.syncAsync(a, nw.ID, control.SyncRequest{Since: mc.Revision, Wait: control.Duration(300 * time.Millisecond)}))
	if r.err != nil || r.mc.Revision != mc.Revision || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("idle sync: %+v, %v after %v", r.mc, r.err, time.Since(start))
	}
	// A waiting sync returns when another member joins.
	ch := e.syncAsync(a, nw.ID, control.SyncRequest{Since: mc.Revision, Wait: control.Duration(time.Minute)})
	time.Sleep(100 * time.Millisecond) // let it wait (it works either way)
	start = time.Now()
	e.mustJoin(b, nw.ID, "")
	r = waitSync(t, "join", ch)
	if r.err != nil || r.mc.Revision <= mc.Revision || len(r.mc.Peers) != 1 || r.mc.Peers[0].NodeID != b.id.NodeID() {
		t.Fatalf("sync after join: %+v, %v", r.mc, r.err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("change took %v to arrive", d)
	}
	// And when an admin adds a route.
	rev := r.mc.Revision
	ch = e.syncAsync(a, nw.ID, control.SyncRequest{Since: rev, Wait: control.Duration(time.Minute)})
	time.Sleep(100 * time.Millisecond)
	route := control.Route{Dest: netip.MustParsePrefix("172.16.0.0/16"), Via: r.mc.Peers[0].Addresses[0]}
	if _, err := e.admin.AddRoute(e.ctx, nw.ID, route); err != nil {
		t.Fatal(err)
	}
	r = waitSync(t, "route", ch)
	if r.err != nil || r.mc.Revision <= rev || len(r.mc.Peers[0].AllowedIPs) != 2 || r.mc.Peers[0].AllowedIPs[1] != route.Dest {
		t.Fatalf("sync after route: %+v, %v", r.mc, r.err)
	}
	// A changed endpoint is news for the others.
	rev = r.mc.Revision
	ch = e.syncAsync(a, nw.ID, control.SyncRequest{Since: rev, Wait: control.Duration(time.Minute)})
	time.Sleep(100 * time.Millisecond)
	bmc, err := b.c.Sync(e.ctx, nw.ID, control.SyncRequest{Since: 0, Endpoints: []netip.AddrPort{netip.MustParseAddrPort("203.0.113.9:51820")}})
	if err != nil {
		t.Fatal(err)
	}
	if bmc.Keepalive != 25 {
		t.Errorf("b reports 203.0.113.9 but comes from loopback: keepalive %d, want 25", bmc.Keepalive)
	}
	r = waitSync(t, "endpoint", ch)
	if r.err != nil || r.mc.Revision <= rev || len(r.mc.Peers[0].Endpoints) != 2 || r.mc.Peers[0].Endpoints[1].String() != "203.0.113.9:51820" {
		t.Fatalf("sync after endpoint change: %+v, %v", r.mc, r.err)
	}
	// A member whose network is deleted learns it from its waiting sync.
	ch = e.syncAsync(a, nw.ID, control.SyncRequest{Since: r.mc.Revision, Wait: control.Duration(time.Minute)})
	time.Sleep(100 * time.Millisecond)
	if err := e.admin.DeleteNetwork(e.ctx, nw.ID); err != nil {
		t.Fatal(err)
	}
	r = waitSync(t, "delete", ch)
	wantAPIError(t, "sync after delete", r.err, 404, "network "+nw.ID+" not found")
	_, err = a.c.Sync(e.ctx, "00000000000000aa", control.SyncRequest{})
	wantAPIError(t, "sync unknown network", err, 404, "not found")
	if n := e.s.watch.waiting(); n != 0 {
		t.Errorf("%d networks still have waiters", n)
	}
}

func TestWatcher(t *testing.T) {
	w := newWatcher()
	c1, done1 := w.wait("n")
	c2, done2 := w.wait("n")
	if c1 != c2 {
		t.Fatal("waiters of one network got different channels")
	}
	done1()
	done1() // twice is harmless
	w.notify("n")
	select {
	case <-c2:
	default:
		t.Fatal("notify did not wake the waiter")
	}
	done2()
	c3, done3 := w.wait("n")
	select {
	case <-c3:
		t.Fatal("a new wait saw an old change")
	default:
	}
	done3()
	if w.waiting() != 0 {
		t.Fatalf("%d entries left", w.waiting())
	}
}

// TestShutdownEndsLongPolls checks that stopping the server does not wait
// for long-polls to run out.
func TestShutdownEndsLongPolls(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("seed", "192.168.254.0/24", true)
	a := e.newNode()
	mc := e.mustJoin(a, nw.ID, "")
	ch := e.syncAsync(a, nw.ID, control.SyncRequest{Since: mc.Revision, Wait: control.Duration(time.Minute)})
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	e.stop()
	waitSync(t, "shutdown", ch)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %v", d)
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	e := startEnv(t, dir)
	nw := e.mustNetwork("seed", "192.168.254.0/24", false)
	route := control.Route{Dest: netip.MustParsePrefix("172.16.0.0/16"), Via: netip.MustParseAddr("192.168.254.11")}
	if _, err := e.admin.AddRoute(e.ctx, nw.ID, route); err != nil {
		t.Fatal(err)
	}
	gate := e.newNode()
	e.mustJoin(gate, nw.ID, "")
	if _, err := e.admin.AllowMember(e.ctx, nw.ID, gate.id.NodeID()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.SetMemberAddress(e.ctx, nw.ID, gate.id.NodeID(), route.Via); err != nil {
		t.Fatal(err)
	}
	tok := e.mustToken(nw.ID, control.CreateTokenRequest{Allow: true})
	before := e.snapshot()
	pin, admin := e.s.Pin(), e.s.AdminToken()
	e.stop()

	e2 := startEnv(t, dir)
	if e2.s.Pin() != pin || e2.s.AdminToken() != admin {
		t.Fatalf("identity or admin token changed across restart")
	}
	if after := e2.snapshot(); after != before {
		t.Fatalf("state changed across restart:\n%s\n%s", before, after)
	}
	// The token still works, and the gate, at its address, is a peer with its route.
	d := e2.newNode()
	mc := e2.mustJoin(d, nw.ID, tok)
	if mc.Status != control.StatusOK || len(mc.Peers) != 1 || mc.Peers[0].NodeID != gate.id.NodeID() ||
		len(mc.Peers[0].AllowedIPs) != 2 || mc.Peers[0].AllowedIPs[1] != route.Dest {
		t.Fatalf("after restart: %+v", mc)
	}
	if mc.Revision <= nw.Revision {
		t.Errorf("revision went back: %d", mc.Revision)
	}
}

// TestPacing: a member more than one revision behind that was answered
// less than the pace ago waits out the pace and then gets everything; a
// single change is never held.
func TestPacing(t *testing.T) {
	e := newEnv(t)
	const pace = 5 * time.Second
	e.s.paceEach, e.s.paceMax = 2*time.Second, pace // 3 members: 6 s, at most 5
	nw := e.mustNetwork("burst", "10.40.0.0/24", true)
	a, b, c := e.newNode(), e.newNode(), e.newNode()
	start := time.Now()
	mc := e.mustJoin(a, nw.ID, "")
	e.mustJoin(b, nw.ID, "")
	e.mustJoin(c, nw.ID, "")

	// Two joins behind, answered (its join) just now: held.
	r := waitSync(t, "burst", e.syncAsync(a, nw.ID, control.SyncRequest{Since: mc.Revision, Wait: control.Duration(time.Minute)}))
	if r.err != nil || len(r.mc.Peers) != 2 {
		t.Fatalf("sync after two joins: %+v, %v", r.mc, r.err)
	}
	if d := time.Since(start); d < pace {
		t.Errorf("a member two revisions behind, answered %v ago, was answered at once; want it held for %v", d, pace)
	}

	// One change, right after that answer: not held.
	rev := r.mc.Revision
	ch := e.syncAsync(a, nw.ID, control.SyncRequest{Since: rev, Wait: control.Duration(time.Minute)})
	time.Sleep(100 * time.Millisecond)
	changed := time.Now()
	if _, err := c.c.Sync(e.ctx, nw.ID, control.SyncRequest{Endpoints: []netip.AddrPort{netip.MustParseAddrPort("203.0.113.7:51820")}}); err != nil {
		t.Fatal(err)
	}
	r = waitSync(t, "one change", ch)
	if r.err != nil || r.mc.Revision != rev+1 {
		t.Fatalf("sync after one change: revision %d (want %d), %v", r.mc.Revision, rev+1, r.err)
	}
	if d := time.Since(changed); d > pace/2 {
		t.Errorf("a single change took %v to arrive; it should not be paced (%v)", d, pace)
	}
}
