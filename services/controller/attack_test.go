package controller

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatenet/gate/services/control"
)

// The attack suite (go test -run Attack ./...): each test acts as a hostile
// member or stranger against a real controller on loopback, one per
// finding of the hardening review, and fails on the code before its fix.

// TestAttackEndpointInjection: an endpoint is a plain IP:port. An IPv6
// zone is free text that used to travel into every other member's
// WireGuard configuration (UAPI lines), the controller's log and `gate
// member list`.
func TestAttackEndpointInjection(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("n", "10.7.0.0/24", true)
	victim, attacker := e.newNode(), e.newNode()
	e.mustJoin(victim, nw.ID, "")
	e.mustJoin(attacker, nw.ID, "")
	zone := "x\nallowed_ip=10.7.0.1/32\nendpoint=203.0.113.66:1\n\x1b[2J"
	evil := netip.AddrPortFrom(netip.MustParseAddr("fe80::1").WithZone(zone), 5)
	bigZone := netip.AddrPortFrom(netip.MustParseAddr("2001:db8::1").WithZone(strings.Repeat("z", 2000)), 5)
	for _, eps := range [][]netip.AddrPort{{evil}, {netip.MustParseAddrPort("192.0.2.1:5"), bigZone}} {
		_, err := attacker.c.Sync(e.ctx, nw.ID, control.SyncRequest{Endpoints: eps, Wait: control.Duration(time.Millisecond)})
		wantAPIError(t, "sync with a zoned endpoint", err, 400, "IPv6 zone")
		req := attacker.joinReq("")
		req.Endpoints = eps
		_, err = attacker.c.Join(e.ctx, nw.ID, req)
		wantAPIError(t, "join with a zoned endpoint", err, 400, "IPv6 zone")
		if err != nil && strings.ContainsAny(err.Error(), "\n\x1b") {
			t.Errorf("the error echoes the zone: %q", err)
		}
	}
	mc, err := victim.c.Sync(e.ctx, nw.ID, control.SyncRequest{Wait: control.Duration(time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range mc.Peers {
		for _, ep := range p.Endpoints {
			if ep.Addr().Zone() != "" {
				t.Errorf("peer %s carries a zoned endpoint", p.NodeID)
			}
		}
	}
	if logs := e.allLogs(); strings.Contains(logs, "allowed_ip=") || strings.Contains(logs, "\x1b") {
		t.Errorf("the zone reached the log")
	}

	// A database written before the check may hold such an endpoint: it is
	// dropped as it is read, never sent.
	err = e.s.store.Write(e.ctx, func(tx *Tx) error {
		b, _ := json.Marshal([]netip.AddrPort{evil, netip.MustParseAddrPort("192.0.2.9:7")})
		_, err := tx.tx.ExecContext(tx.ctx, `UPDATE members SET endpoints = $1 WHERE node_id = $2`, string(b), attacker.id.NodeID())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := e.dir
	e.stop()
	e = startEnv(t, dir)
	victim.c, attacker.c = e.client(&victim.id, ""), e.client(&attacker.id, "")
	mc, err = victim.c.Sync(e.ctx, nw.ID, control.SyncRequest{Wait: control.Duration(time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	if len(mc.Peers) != 1 || !strings.Contains(joinAddrPorts(mc.Peers[0].Endpoints), "192.0.2.9:7") || strings.Contains(joinAddrPorts(mc.Peers[0].Endpoints), "%") {
		t.Errorf("stored zoned endpoint: peers %+v", mc.Peers)
	}
}

func joinAddrPorts(eps []netip.AddrPort) string {
	s := make([]string, len(eps))
	for i, ep := range eps {
		s[i] = ep.String()
	}
	return strings.Join(s, ",")
}

// TestAttackDuplicateKey: a member that takes another member's WireGuard
// key, at join or at any later sync, is refused: every member would
// otherwise be handed two peers with one key.
func TestAttackDuplicateKey(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("n", "10.8.0.0/24", true)
	a, b, c := e.newNode(), e.newNode(), e.newNode()
	e.mustJoin(a, nw.ID, "")
	e.mustJoin(c, nw.ID, "")
	before := e.snapshot()
	req := b.joinReq("")
	req.PublicKey = a.key
	_, err := b.c.Join(e.ctx, nw.ID, req)
	wantAPIError(t, "join with another's key", err, 409, "public_key is already used by another member")
	if after := e.snapshot(); after != before {
		t.Errorf("a refused join changed state")
	}
	e.mustJoin(b, nw.ID, "")
	_, err = b.c.Sync(e.ctx, nw.ID, control.SyncRequest{PublicKey: a.key, Wait: control.Duration(time.Millisecond)})
	wantAPIError(t, "sync taking another's key", err, 409, "public_key is already used by another member")
	mc, err := c.c.Sync(e.ctx, nw.ID, control.SyncRequest{Wait: control.Duration(time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]int{}
	for _, p := range mc.Peers {
		keys[p.PublicKey]++
	}
	if keys[a.key] != 1 || keys[b.key] != 1 || len(mc.Peers) != 2 {
		t.Errorf("peers' keys: %v", keys)
	}
	// A member may still change to a key of its own, or rejoin with its own.
	fresh := control.SyncRequest{PublicKey: "BwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", Wait: control.Duration(time.Millisecond)}
	if _, err := b.c.Sync(e.ctx, nw.ID, fresh); err != nil {
		t.Errorf("key rotation: %v", err)
	}
	e.mustJoin(a, nw.ID, "")
}

// TestAttackRouteNextHop: a route's next hop is kept free for the gateway
// an admin gives it to, whichever comes first: the route or the gateway.
// A member that asks for it, or would be handed it from the pool, gets
// another address, so it cannot receive the route's traffic.
func TestAttackRouteNextHop(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("n", "10.9.0.0/29", true) // .1 to .6
	via := netip.MustParseAddr("10.9.0.1")
	if _, err := e.admin.AddRoute(e.ctx, nw.ID, control.Route{Dest: netip.MustParsePrefix("172.16.0.0/16"), Via: via}); err != nil {
		t.Fatal(err)
	}
	thief := e.newNode()
	req := thief.joinReq("")
	req.RequestedAddress = via
	mc, err := thief.c.Join(e.ctx, nw.ID, req)
	if err != nil || len(mc.Addresses) != 1 || mc.Addresses[0].Addr() == via {
		t.Fatalf("a member asking for the next hop: %+v, %v", mc, err)
	}
	// The pool passes over it too, down to the last address.
	for range 4 {
		mc := e.mustJoin(e.newNode(), nw.ID, "")
		if len(mc.Addresses) != 1 || mc.Addresses[0].Addr() == via {
			t.Fatalf("pool gave %+v", mc.Addresses)
		}
	}
	late := e.newNode()
	if mc := e.mustJoin(late, nw.ID, ""); len(mc.Addresses) != 0 {
		t.Errorf("the pool handed out the next hop: %v", mc.Addresses)
	}
	// The admin gives it to the gateway: then the route goes through it.
	gw := e.newNode()
	e.mustJoin(gw, nw.ID, "")
	if _, err := e.admin.SetMemberAddress(e.ctx, nw.ID, gw.id.NodeID(), via); err != nil {
		t.Fatalf("set-ip of the next hop: %v", err)
	}
	mc, err = thief.c.Sync(e.ctx, nw.ID, control.SyncRequest{Wait: control.Duration(time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range mc.Peers {
		has := false
		for _, a := range p.AllowedIPs {
			has = has || a.String() == "172.16.0.0/16"
		}
		if has != (p.NodeID == gw.id.NodeID()) {
			t.Errorf("peer %s: allowed IPs %v", p.NodeID, p.AllowedIPs)
		}
	}

	// The other order: the gateway first, then the route via its address.
	nw2 := e.mustNetwork("m", "10.10.0.0/24", true)
	gw2 := e.newNode()
	if _, err := e.admin.AddRoute(e.ctx, nw2.ID, control.Route{Dest: netip.MustParsePrefix("172.17.0.0/16"), Via: netip.MustParseAddr("10.10.0.11")}); err != nil {
		t.Fatal(err)
	}
	e.mustJoin(gw2, nw2.ID, "")
	if _, err := e.admin.SetMemberAddress(e.ctx, nw2.ID, gw2.id.NodeID(), netip.MustParseAddr("10.10.0.11")); err != nil {
		t.Fatalf("set-ip after the route: %v", err)
	}
}

// TestAttackPendingFlood: members waiting for an admin wake no one, are
// capped per network and per source address, and a network can refuse
// joins without a token altogether.
func TestAttackPendingFlood(t *testing.T) {
	e := newEnv(t)
	e.s.pending = pendingLimits{perNetwork: 5, perSource: 3, stale: time.Hour}
	nw := e.mustNetwork("n", "10.11.0.0/24", false)
	pend := e.newNode()
	e.mustJoin(pend, nw.ID, "")
	rev := func() uint64 { return e.revision(nw.ID) }
	r0 := rev()
	for i := range 50 {
		_, err := pend.c.Sync(e.ctx, nw.ID, control.SyncRequest{Hostname: "h" + strings.Repeat("x", i%40), Since: r0, Wait: control.Duration(time.Millisecond)})
		if err != nil {
			t.Fatal(err)
		}
	}
	if r := rev(); r != r0 {
		t.Errorf("a pending member's 50 reports moved the revision from %d to %d", r0, r)
	}

	// Per source: all of these come from 127.0.0.1.
	for range 2 {
		e.mustJoin(e.newNode(), nw.ID, "")
	}
	extra := e.newNode()
	_, err := extra.c.Join(e.ctx, nw.ID, extra.joinReq(""))
	wantAPIError(t, "4th pending member from one address", err, 429, "members from 127.0.0.1 waiting for approval")
	ms, err := e.admin.Members(e.ctx, nw.ID)
	if err != nil || len(ms) != 3 {
		t.Errorf("members: %d, %v", len(ms), err)
	}
	// Per network.
	e.s.pending.perSource = 100
	for range 2 {
		e.mustJoin(e.newNode(), nw.ID, "")
	}
	_, err = extra.c.Join(e.ctx, nw.ID, extra.joinReq(""))
	wantAPIError(t, "6th pending member", err, 429, "5 members waiting for approval")
	// An allowing token still gets in; so does a member that is already there.
	e.mustJoin(e.newNode(), nw.ID, e.mustToken(nw.ID, control.CreateTokenRequest{Allow: true}))
	e.mustJoin(pend, nw.ID, "")
	// The pending member unheard of for longest gives way once it is stale.
	e.clock.Advance(2 * time.Hour)
	for _, n := range []*node{pend} {
		if _, err := n.c.Sync(e.ctx, nw.ID, control.SyncRequest{Wait: control.Duration(time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
	}
	e.mustJoin(e.newNode(), nw.ID, "")
	if ms, _ := e.admin.Members(e.ctx, nw.ID); len(ms) != 6 {
		t.Errorf("after a stale member gave way: %d members, want 6", len(ms))
	} else if _, ok := memberByNode(ms, pend.id.NodeID()); !ok {
		t.Errorf("the member heard from lately was the one forgotten")
	}

	// A network that wants a token refuses joins without one, before
	// storing anything.
	strict, err := e.admin.CreateNetwork(e.ctx, control.CreateNetworkRequest{Name: "s", CIDR: netip.MustParsePrefix("10.12.0.0/24"), RequireToken: true})
	if err != nil || !strict.RequireToken {
		t.Fatalf("create with require_token: %+v, %v", strict, err)
	}
	stranger := e.newNode()
	_, err = stranger.c.Join(e.ctx, strict.ID, stranger.joinReq(""))
	wantAPIError(t, "tokenless join", err, 403, "only with a join token")
	if ms, _ := e.admin.Members(e.ctx, strict.ID); len(ms) != 0 {
		t.Errorf("a refused join left a member")
	}
	member := e.newNode()
	e.mustJoin(member, strict.ID, e.mustToken(strict.ID, control.CreateTokenRequest{}))
	e.mustJoin(member, strict.ID, "") // coming back needs no token
}

// TestAttackFingerprint: node IDs are 40 bits, so an admin can name a
// member by its full fingerprint, which member list shows; a fingerprint
// that is not the member's changes nothing.
func TestAttackFingerprint(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("n", "10.13.0.0/24", false)
	a := e.newNode()
	e.mustJoin(a, nw.ID, "")
	ms, err := e.admin.Members(e.ctx, nw.ID)
	if err != nil || len(ms) != 1 || ms[0].Fingerprint != a.id.Pin() {
		t.Fatalf("member list: %+v, %v", ms, err)
	}
	// Same node ID, another key: what a stranger who searched for a
	// colliding node ID would have.
	fake := "sha256:" + a.id.NodeID() + strings.Repeat("0", 54)
	before := e.snapshot()
	_, err = e.admin.AllowMember(e.ctx, nw.ID, fake)
	wantAPIError(t, "allow by the wrong fingerprint", err, 409, "not the node you named")
	_, err = e.admin.SetMemberAddress(e.ctx, nw.ID, fake, netip.MustParseAddr("10.13.0.9"))
	wantAPIError(t, "set-ip by the wrong fingerprint", err, 409, "not the node you named")
	err = e.admin.RemoveMember(e.ctx, nw.ID, fake)
	wantAPIError(t, "remove by the wrong fingerprint", err, 409, "not the node you named")
	_, err = e.admin.AllowMember(e.ctx, nw.ID, "sha256:xyz")
	wantAPIError(t, "a malformed fingerprint", err, 400, "member fingerprint")
	if after := e.snapshot(); after != before {
		t.Errorf("refused changes changed state")
	}
	m, err := e.admin.AllowMember(e.ctx, nw.ID, a.id.Pin())
	if err != nil || m.State != control.StateAllowed || m.Fingerprint != a.id.Pin() {
		t.Errorf("allow by fingerprint: %+v, %v", m, err)
	}
}

// TestStateFilesPrivate: the database, which holds every member's identity
// and the token hashes, is 0600 with its WAL and shared-memory files under
// a permissive umask, a database left readable by an older version is made
// private, and a state directory others could read is tightened to 0700.
func TestStateFilesPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "ctl")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		for _, f := range []string{keyFile, tokenFile, dbFile, dbFile + "-wal", dbFile + "-shm"} {
			fi, err := os.Stat(filepath.Join(dir, f))
			if err != nil {
				t.Errorf("%s: %v", when, err)
				continue
			}
			if fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s: %s is %v, want no access for others", when, f, fi.Mode().Perm())
			}
		}
	}
	e := startEnv(t, dir)
	e.mustNetwork("n", "10.14.0.0/24", false)
	check("first start")
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the state directory, made 0755 before the first start: %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	e.stop()
	for _, f := range []string{dbFile, dbFile + "-wal", dbFile + "-shm"} {
		os.Chmod(filepath.Join(dir, f), 0o644)
	}
	e = startEnv(t, dir)
	e.mustNetwork("m", "10.15.0.0/24", false)
	check("a database left 0644")
}

// TestAttackDeniedMemberStaysDenied: a denied member that leaves keeps its
// denial: it cannot come back as new, with its single-use token or into
// an auto-allow network. A used single-use token is not presented again by
// anyone once its member is gone.
func TestAttackDeniedMemberStaysDenied(t *testing.T) {
	e := newEnv(t)
	for _, auto := range []bool{false, true} {
		nw := e.mustNetwork(fmt.Sprint("n", auto), fmt.Sprintf("10.16.%d.0/24", map[bool]int{false: 0, true: 1}[auto]), auto)
		tok := e.mustToken(nw.ID, control.CreateTokenRequest{Allow: true})
		a := e.newNode()
		e.mustJoin(a, nw.ID, tok)
		if _, err := e.admin.DenyMember(e.ctx, nw.ID, a.id.NodeID()); err != nil {
			t.Fatal(err)
		}
		if err := a.c.Leave(e.ctx, nw.ID); err != nil {
			t.Fatalf("leave: %v", err)
		}
		for _, token := range []string{tok, ""} {
			mc, err := a.c.Join(e.ctx, nw.ID, a.joinReq(token))
			if err != nil || mc.Status != control.StatusDenied {
				t.Errorf("auto-allow %v: a denied member that left rejoined (token %v): %+v, %v", auto, token != "", mc.Status, err)
			}
		}
		// Once an admin removes it, the used token does not let it in
		// again: only a retry while its membership exists may reuse it.
		if err := e.admin.RemoveMember(e.ctx, nw.ID, a.id.NodeID()); err != nil {
			t.Fatal(err)
		}
		_, err := a.c.Join(e.ctx, nw.ID, a.joinReq(tok))
		wantAPIError(t, "a used single-use token after removal", err, 403, "join token already used")
	}
}

// TestAttackKeySquatting: a stranger who joins, pending, with a member's
// WireGuard key (every peer sees it) does not keep that member out; the
// key is checked among allowed members, again when an admin allows one.
func TestAttackKeySquatting(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("n", "10.17.0.0/24", false)
	victim, squatter := e.newNode(), e.newNode()
	req := squatter.joinReq("")
	req.PublicKey = victim.key
	if mc, err := squatter.c.Join(e.ctx, nw.ID, req); err != nil || mc.Status != control.StatusRequesting {
		t.Fatalf("squatter: %+v, %v", mc, err)
	}
	if mc := e.mustJoin(victim, nw.ID, e.mustToken(nw.ID, control.CreateTokenRequest{Allow: true})); mc.Status != control.StatusOK {
		t.Errorf("the victim with an allowing token: %s", mc.Status)
	}
	_, err := e.admin.AllowMember(e.ctx, nw.ID, squatter.id.NodeID())
	wantAPIError(t, "allowing the squatter", err, 409, "public_key is already used")
}

// TestAttackPendingFromOneIPv6Net: a source address is an IPv4 address or
// an IPv6 /64, for the cap on members waiting for approval.
func TestAttackPendingFromOneIPv6Net(t *testing.T) {
	e := newEnv(t)
	e.s.pending = pendingLimits{perNetwork: 100, perSource: 2, stale: time.Hour}
	v := &netView{n: networkRec{ID: "0123456789abcdef"}, members: map[string]*viewMember{}}
	for i, a := range []string{"2001:db8:1:2::1", "2001:db8:1:2::ffff"} {
		v.members[fmt.Sprint(i)] = newViewMember(memberRec{NodeID: fmt.Sprint(i), State: control.StatePending, LastSeen: e.clock.Now(),
			Observed: netip.AddrPortFrom(netip.MustParseAddr(a), 51820)}, defaultLayout())
	}
	err := e.s.makePendingRoom(nil, v, netip.MustParseAddr("2001:db8:1:2:dead::1"), e.clock.Now())
	if statusOf(err) != 429 {
		t.Errorf("a third address of one /64: %v, want 429", err)
	}
	wantErr(t, "a third address of one /64", err, "an IPv6 /64 counts as one")
	if err := e.s.makePendingRoom(nil, v, netip.MustParseAddr("2001:db8:1:3::1"), e.clock.Now()); err != nil {
		t.Errorf("another /64: %v", err)
	}
}

// TestAttackFutureSincePaced: a member that asks from a revision past the
// network's gets a full answer at once, but asking so again and again is
// paced like a member far behind, not answered back to back.
func TestAttackFutureSincePaced(t *testing.T) {
	e := newEnv(t)
	const pace = time.Second
	e.s.paceEach, e.s.paceMax = pace, pace
	nw := e.mustNetwork("n", "10.18.0.0/24", true)
	a := e.newNode()
	e.mustJoin(a, nw.ID, "")
	start := time.Now()
	for range 3 {
		if _, err := a.c.Sync(e.ctx, nw.ID, control.SyncRequest{Since: 1 << 60, Wait: control.Duration(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 2*pace {
		t.Errorf("three answers from the future took %v; want them paced, %v apart", d, pace)
	}
}

// TestAttackReportFlood: a member whose endpoints flap wakes every member
// of the network at each change; changes others see are taken at most
// once per reportEvery, the rest refused (429) to be sent again later.
func TestAttackReportFlood(t *testing.T) {
	e := newEnv(t)
	e.s.reportEvery = time.Hour
	nw := e.mustNetwork("n", "10.19.0.0/24", true)
	a, b := e.newNode(), e.newNode()
	e.mustJoin(a, nw.ID, "")
	e.mustJoin(b, nw.ID, "")
	rev := func() uint64 { return e.revision(nw.ID) }
	r0 := rev()
	refused := 0
	for i := range 50 {
		ep := netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)}), 51820)
		_, err := b.c.Sync(e.ctx, nw.ID, control.SyncRequest{Endpoints: []netip.AddrPort{ep}, Wait: control.Duration(time.Millisecond)})
		switch {
		case err == nil:
		case control.IsStatus(err, 429):
			refused++
		default:
			t.Fatal(err)
		}
	}
	if r := rev(); r != r0+1 || refused != 49 {
		t.Errorf("50 flapping reports: revision %d -> %d, %d refused; want one change taken, 49 refused", r0, r, refused)
	}
	// What others do not see (a pending member's name, the version) is
	// not limited, nor is a sync that changes nothing.
	if _, err := b.c.Sync(e.ctx, nw.ID, control.SyncRequest{Version: "v2", Wait: control.Duration(time.Millisecond)}); err != nil {
		t.Errorf("a version report: %v", err)
	}
}
