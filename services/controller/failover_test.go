package controller

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/policy"
)

// TestRouteWithBackups: a route served by several gateways in order of
// preference, with its failback and probes, is stored, survives a
// restart, reaches every member whole, keeps the backups' addresses out
// of the pool, and gives each backup the rules it enforces on what it
// forwards; the primary alone carries the subnet in its peer entry, so
// that a member that knows nothing of backups keeps working through it.
func TestRouteWithBackups(t *testing.T) {
	dir := t.TempDir()
	e := startEnv(t, dir)
	nw := e.mustNetwork("ha", "10.66.0.0/24", true)
	gw1, gw2, droplet := e.newNode(), e.newNode(), e.newNode()
	m1 := e.mustJoin(gw1, nw.ID, "")
	m2 := e.mustJoin(gw2, nw.ID, "")
	a1, a2 := m1.Addresses[0].Addr(), m2.Addresses[0].Addr()
	spare := netip.MustParseAddr("10.66.0.200") // a third gateway, not joined yet
	r := control.Route{Dest: netip.MustParsePrefix("172.16.0.0/16"), Via: a1, Backups: []netip.Addr{a2, spare},
		Failback: control.Failback(30 * time.Second), Probes: []control.Probe{{Proto: "tcp", Addr: netip.MustParseAddr("172.16.10.5"), Port: 22}}}
	n, err := e.admin.AddRoute(e.ctx, nw.ID, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Routes) != 1 || !n.Routes[0].Equal(r) {
		t.Fatalf("routes after add: %+v", n.Routes)
	}
	if got := n.Routes[0].String(); got != "172.16.0.0/16 via 10.66.0.1, then 10.66.0.2, then 10.66.0.200 (failback 30s, probe 172.16.10.5:22/tcp)" {
		t.Errorf("route as shown: %s", got)
	}
	// The spare's address is kept for it: the next member gets another.
	md := e.mustJoin(droplet, nw.ID, "")
	if a := md.Addresses[0].Addr(); a == spare || a == a1 || a == a2 {
		t.Errorf("the droplet was given %s, an address a gateway of the route holds or is promised", a)
	}
	if len(md.Routes) != 1 || !md.Routes[0].Equal(r) {
		t.Errorf("the droplet's routes: %+v", md.Routes)
	}
	for _, p := range md.Peers {
		wantDest := p.Addresses[0] == a1
		if got := slices.Contains(p.AllowedIPs, r.Dest); got != wantDest {
			t.Errorf("peer %s (%v) carries %s in its allowed IPs: %t, want %t (the primary only)", p.NodeID, p.Addresses, r.Dest, got, wantDest)
		}
	}
	// Under rules that name the subnet, the backup enforces them on what
	// it forwards, as the primary does.
	rules, err := policy.ParsePolicy("deny from members to 172.16.0.0/16 on tcp/22\nallow from any to any\n")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.SetRules(e.ctx, nw.ID, control.SetRulesRequest{Rules: rules}); err != nil {
		t.Fatal(err)
	}
	for _, gw := range []*node{gw1, gw2} {
		mc, err := gw.c.Sync(e.ctx, nw.ID, control.SyncRequest{PublicKey: gw.key})
		if err != nil {
			t.Fatal(err)
		}
		if mc.Policy == nil || len(mc.Policy.Forward) != 2 || mc.Policy.Forward[0].Allow || mc.Policy.Forward[0].To[0] != r.Dest {
			t.Errorf("gateway %s forwards under %+v, want rule 1 (deny) then 2 into %s", gw.id.NodeID(), mc.Policy, r.Dest)
		}
	}
	// What the admin sees and members get survives a restart.
	e.stop()
	e = startEnv(t, dir)
	n, err = e.admin.Network(e.ctx, nw.ID)
	if err != nil || len(n.Routes) != 1 || !n.Routes[0].Equal(r) {
		t.Fatalf("after a restart: %+v, %v", n.Routes, err)
	}
	// A failback of never is kept as never.
	r2 := control.Route{Dest: netip.MustParsePrefix("172.17.0.0/16"), Via: a2, Backups: []netip.Addr{a1}, Failback: control.FailbackNever}
	if n, err = e.admin.AddRoute(e.ctx, nw.ID, r2); err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(n.Routes, func(x control.Route) bool { return x.Dest == r2.Dest }); i < 0 || n.Routes[i].Failback != control.FailbackNever {
		t.Errorf("routes: %+v", n.Routes)
	}
}

// TestAttackRouteFailover: a route's backups, failback and probes as a
// hostile or careless admin client sends them are refused with an error
// naming what is wrong, and change nothing.
func TestAttackRouteFailover(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("ha", "10.66.0.0/24", true)
	before := e.snapshot()
	dest := netip.MustParsePrefix("172.16.0.0/16")
	via := netip.MustParseAddr("10.66.0.10")
	for _, tc := range []struct {
		name string
		body string
		want string
	}{
		{"backup outside the network", `{"dest":"172.16.0.0/16","via":"10.66.0.10","backups":["10.67.0.1"]}`, "route backup 10.67.0.1 is outside the network 10.66.0.0/24"},
		{"backup is the broadcast", `{"dest":"172.16.0.0/16","via":"10.66.0.10","backups":["10.66.0.255"]}`, "route backup 10.66.0.255 is the broadcast address"},
		{"backup twice", `{"dest":"172.16.0.0/16","via":"10.66.0.10","backups":["10.66.0.11","10.66.0.11"]}`, "backup 10.66.0.11 is named twice"},
		{"backup is via", `{"dest":"172.16.0.0/16","via":"10.66.0.10","backups":["10.66.0.10"]}`, "backup 10.66.0.10 is the route's via"},
		{"backup not an address", `{"dest":"172.16.0.0/16","via":"10.66.0.10","backups":["gw2\u001b[2J"]}`, "ParseAddr"},
		{"failback zero", `{"dest":"172.16.0.0/16","via":"10.66.0.10","failback":"0s"}`, `failback "0s"`},
		{"failback a number", `{"dest":"172.16.0.0/16","via":"10.66.0.10","failback":5}`, "failback: want a string"},
		{"probe outside the subnet", `{"dest":"172.16.0.0/16","via":"10.66.0.10","probes":["10.66.0.11/icmp"]}`, "is not inside the route's dest 172.16.0.0/16"},
		{"probe with a terminal escape", `{"dest":"172.16.0.0/16","via":"10.66.0.10","probes":["\u001b]0;x\u0007/icmp"]}`, `probe "\x1b]0;x\a/icmp": not an address`},
		{"probe of a protocol", `{"dest":"172.16.0.0/16","via":"10.66.0.10","probes":["172.16.0.1:53/udp"]}`, "unknown protocol"},
	} {
		code, msg := e.raw("POST", "/v1/networks/"+nw.ID+"/routes", tc.body, e.s.AdminToken())
		if code != 400 || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %d %q, want 400 with %q", tc.name, code, msg, tc.want)
		}
	}
	if after := e.snapshot(); after != before {
		t.Errorf("refused routes changed state:\n%s\n%s", before, after)
	}
	// Eight gateways at most.
	r := control.Route{Dest: dest, Via: via}
	for i := range control.MaxBackups + 1 {
		r.Backups = append(r.Backups, netip.AddrFrom4([4]byte{10, 66, 0, byte(20 + i)}))
	}
	_, err := e.admin.AddRoute(e.ctx, nw.ID, r)
	wantAPIError(t, "nine gateways", err, 400, "8 backups: a route has at most 7")
	// A gateway's health answer lists every route with backups of the
	// network: there are at most MaxFailoverRoutes.
	for i := range control.MaxFailoverRoutes {
		r := control.Route{Dest: netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16, byte(i), 0}), 24), Via: via, Backups: []netip.Addr{netip.MustParseAddr("10.66.0.11")}}
		if _, err := e.admin.AddRoute(e.ctx, nw.ID, r); err != nil {
			t.Fatalf("route %d: %v", i, err)
		}
	}
	_, err = e.admin.AddRoute(e.ctx, nw.ID, control.Route{Dest: netip.MustParsePrefix("172.17.0.0/24"), Via: via, Backups: []netip.Addr{netip.MustParseAddr("10.66.0.11")}})
	wantAPIError(t, "one route with backups too many", err, 400, "has 64 routes with backups already")
	if _, err := e.admin.AddRoute(e.ctx, nw.ID, control.Route{Dest: netip.MustParsePrefix("172.17.0.0/24"), Via: via}); err != nil {
		t.Errorf("a route without backups: %v", err)
	}
}

// TestRouteMigration: a route stored before routes had backups reads as
// it did, with none.
func TestRouteMigration(t *testing.T) {
	dir := t.TempDir()
	e := startEnv(t, dir)
	nw := e.mustNetwork("m", "10.55.0.0/24", true)
	r := control.Route{Dest: netip.MustParsePrefix("172.16.0.0/16"), Via: netip.MustParseAddr("10.55.0.11")}
	if _, err := e.admin.AddRoute(e.ctx, nw.ID, r); err != nil {
		t.Fatal(err)
	}
	e.stop()
	st := openTestStore(t, dir)
	downgrade(t, st, 6)
	st.Close()
	e = startEnv(t, dir)
	n, err := e.admin.Network(e.ctx, nw.ID)
	if err != nil || len(n.Routes) != 1 || !n.Routes[0].Equal(r) {
		t.Fatalf("after the upgrade: %+v, %v", n.Routes, err)
	}
}
