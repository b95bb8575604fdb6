package desired

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatenet/gate/services/agent"
	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/failover"
	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/netcfg"
	"github.com/gatenet/gate/services/policy"
	"github.com/gatenet/gate/services/reconciler"
	"github.com/gatenet/gate/services/tunnel"
)

func mustKey(t *testing.T) tunnel.Key {
	t.Helper()
	k, err := tunnel.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestDesired(t *testing.T) {
	key := mustKey(t)
	gwKey, dropletKey := mustKey(t).Public(), mustKey(t).Public()
	pfx := netip.MustParsePrefix
	ap := netip.MustParseAddrPort
	route := control.Route{Dest: pfx("172.16.0.0/16"), Via: netip.MustParseAddr("192.168.254.11")}
	first := func(p control.Peer) netip.AddrPort {
		if len(p.Endpoints) == 0 {
			return netip.AddrPort{}
		}
		return p.Endpoints[0]
	}
	// The droplet's view: the gate is a peer serving 172.16.0.0/16.
	droplet := agent.Membership{
		ID: "d363b4e9bd3d6aa8", Iface: "gated363b4e9bd", ListenPort: 51820,
		Config: &control.MemberConfig{
			Status: control.StatusOK, CIDR: pfx("192.168.254.0/24"), MTU: 1420,
			Addresses: []netip.Prefix{pfx("192.168.254.170/24")},
			Routes:    []control.Route{route},
			Keepalive: 25,
			Peers: []control.Peer{{
				NodeID: "9788637428", PublicKey: gwKey.String(),
				AllowedIPs: []netip.Prefix{pfx("192.168.254.11/32"), pfx("172.16.0.0/16")},
				Endpoints:  []netip.AddrPort{ap("198.51.100.11:51820"), ap("172.16.1.10:51820")},
			}, {
				NodeID: "badbadbad0", PublicKey: "not a key",
			}},
		},
	}
	// The gate's view: the route is via itself; it is a gateway. It
	// enforces the network's rules on what it forwards, the set of a tag
	// filled in from its peers.
	gatePolicy := &policy.Ruleset{Forward: []policy.CompiledRule{
		{Rule: 1, FromSets: []string{"tag:web"}, To: []netip.Prefix{pfx("172.16.0.0/16")}, Services: []policy.Service{{Proto: policy.TCP, Lo: 22, Hi: 22}}},
		{Rule: 2, Allow: true, FromSets: []string{"any"}, To: []netip.Prefix{pfx("172.16.0.0/16")}}},
		Sets: map[string][]netip.Prefix{"any": {pfx("172.16.0.0/16"), pfx("192.168.254.0/24")}}}
	gateFilled := *gatePolicy
	gateFilled.Sets = map[string][]netip.Prefix{"any": gatePolicy.Sets["any"], "tag:web": {pfx("192.168.254.170/32")}}
	gate := agent.Membership{
		ID: "d363b4e9bd3d6aa8", Iface: "gated363b4e9bd", ListenPort: 51820,
		Gateway: &localapi.Gateway{Serve: []netip.Prefix{pfx("172.16.0.0/16")}, MasqueradeInternet: true},
		Config: &control.MemberConfig{
			Status: control.StatusOK, CIDR: pfx("192.168.254.0/24"), MTU: 1420,
			Addresses: []netip.Prefix{pfx("192.168.254.11/24")},
			Routes:    []control.Route{route},
			Policy:    gatePolicy,
			Peers: []control.Peer{{
				NodeID: "a4f8166c39", PublicKey: dropletKey.String(), Tags: []string{"web"},
				Addresses:  []netip.Addr{netip.MustParseAddr("192.168.254.170")},
				AllowedIPs: []netip.Prefix{pfx("192.168.254.170/32")},
			}},
		},
	}
	pending := agent.Membership{ID: "0000000000000001", Iface: "gate0000000000", Config: &control.MemberConfig{Status: control.StatusRequesting}}
	denied := agent.Membership{ID: "0000000000000002", Iface: "gate0000000000", Config: &control.MemberConfig{Status: control.StatusDenied}}
	neverAnswered := agent.Membership{ID: "0000000000000003"}

	tests := []struct {
		name string
		ms   []agent.Membership
		mode string
		want reconciler.Desired
	}{{
		name: "nothing joined",
		mode: FirewallAuto,
		want: reconciler.Desired{AllowTCP: []uint16{22}},
	}, {
		name: "only networks that are OK reach the kernel",
		ms:   []agent.Membership{pending, denied, neverAnswered},
		mode: FirewallAuto,
		want: reconciler.Desired{AllowTCP: []uint16{22}},
	}, {
		name: "strict mode is strict without a gateway",
		mode: FirewallStrict,
		want: reconciler.Desired{Strict: true, AllowTCP: []uint16{22}},
	}, {
		name: "droplet: route via the gate, peer allowed IPs, keepalive behind NAT, bad peer key skipped",
		ms:   []agent.Membership{droplet, pending},
		mode: FirewallAuto,
		want: reconciler.Desired{AllowTCP: []uint16{22}, Networks: []reconciler.Network{{
			ID: droplet.ID, Iface: droplet.Iface, MTU: 1420, PrivateKey: key, ListenPort: 51820,
			Addrs:    []netip.Prefix{pfx("192.168.254.170/24")},
			Routes:   []netcfg.Route{{Dst: pfx("172.16.0.0/16"), Via: netip.MustParseAddr("192.168.254.11"), Metric: RouteMetric}},
			Prefixes: []netip.Prefix{pfx("192.168.254.0/24"), pfx("172.16.0.0/16")},
			Peers: []tunnel.Peer{{PublicKey: gwKey, Endpoint: ap("198.51.100.11:51820"),
				AllowedIPs: []netip.Prefix{pfx("192.168.254.11/32"), pfx("172.16.0.0/16")}, Keepalive: 25}},
		}}},
	}, {
		name: "gate: no route via itself, gateway makes auto strict",
		ms:   []agent.Membership{gate},
		mode: FirewallAuto,
		want: reconciler.Desired{Strict: true, AllowTCP: []uint16{22}, Networks: []reconciler.Network{{
			ID: gate.ID, Iface: gate.Iface, MTU: 1420, PrivateKey: key, ListenPort: 51820,
			Addrs:    []netip.Prefix{pfx("192.168.254.11/24")},
			Prefixes: []netip.Prefix{pfx("192.168.254.0/24")},
			Peers:    []tunnel.Peer{{PublicKey: dropletKey, AllowedIPs: []netip.Prefix{pfx("192.168.254.170/32")}}},
			Gateway:  &reconciler.Gateway{Serve: []netip.Prefix{pfx("172.16.0.0/16")}, MasqueradeInternet: true},
			Policy:   &gateFilled,
		}}},
	}, {
		name: "guard mode stays guard even for a gateway",
		ms:   []agent.Membership{gate},
		mode: FirewallGuard,
		want: reconciler.Desired{AllowTCP: []uint16{22}, Networks: []reconciler.Network{{
			ID: gate.ID, Iface: gate.Iface, MTU: 1420, PrivateKey: key, ListenPort: 51820,
			Addrs:    []netip.Prefix{pfx("192.168.254.11/24")},
			Prefixes: []netip.Prefix{pfx("192.168.254.0/24")},
			Peers:    []tunnel.Peer{{PublicKey: dropletKey, AllowedIPs: []netip.Prefix{pfx("192.168.254.170/32")}}},
			Gateway:  &reconciler.Gateway{Serve: []netip.Prefix{pfx("172.16.0.0/16")}, MasqueradeInternet: true},
			Policy:   &gateFilled,
		}}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := Compute(tt.ms, key, tt.mode, []uint16{22}, first, nil)
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
				cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
				cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
				t.Errorf("Compute() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPickerTriesNextEndpointWhileSilent(t *testing.T) {
	now := time.Unix(1000, 0)
	p := NewPicker()
	p.now = func() time.Time { return now }
	ap := netip.MustParseAddrPort
	peer := control.Peer{PublicKey: "k", Endpoints: []netip.AddrPort{ap("198.51.100.11:51820"), ap("172.16.1.10:51820")}}
	never := func(string) time.Time { return time.Time{} }

	if got := p.Endpoint(peer); got != peer.Endpoints[0] {
		t.Fatalf("first pick = %v, want the controller's best", got)
	}
	now = now.Add(endpointTrial / 2)
	if p.Advance([]control.Peer{peer}, never) {
		t.Fatal("advanced before the trial time ran out")
	}
	now = now.Add(endpointTrial)
	if !p.Advance([]control.Peer{peer}, never) || p.Endpoint(peer) != peer.Endpoints[1] {
		t.Fatalf("after a silent trial the pick is %v, want the second endpoint", p.Endpoint(peer))
	}
	now = now.Add(2 * endpointTrial)
	if !p.Advance([]control.Peer{peer}, never) || p.Endpoint(peer) != peer.Endpoints[0] {
		t.Fatalf("picks do not wrap around: %v", p.Endpoint(peer))
	}
	recent := func(string) time.Time { return now.Add(-time.Second) }
	now = now.Add(2 * endpointTrial)
	if p.Advance([]control.Peer{peer}, recent) {
		t.Fatal("advanced away from an endpoint with a recent handshake")
	}
	single := control.Peer{PublicKey: "s", Endpoints: []netip.AddrPort{ap("198.51.100.20:51820")}}
	p.Endpoint(single)
	now = now.Add(10 * endpointTrial)
	if p.Advance([]control.Peer{single}, never) {
		t.Fatal("advanced with a single endpoint")
	}
	if got := p.Endpoint(control.Peer{PublicKey: "none"}); got.IsValid() {
		t.Fatalf("peer without endpoints got %v", got)
	}
}

// TestAttackNetworksStayApart: a node in networks of two controllers does
// not let one take the other's traffic, nor the node's loopback or the
// cloud metadata service: overlapping routes go on both sides, a route
// into the special ranges goes, and a network whose CIDR overlaps one
// already there is left out whole; each is said.
func TestAttackNetworksStayApart(t *testing.T) {
	pfx := netip.MustParsePrefix
	via := netip.MustParseAddr
	net := func(id, cidr string, routes ...netcfg.Route) reconciler.Network {
		n := reconciler.Network{ID: id, Prefixes: []netip.Prefix{pfx(cidr)}, Routes: routes}
		for _, r := range routes {
			n.Prefixes = append(n.Prefixes, r.Dst)
		}
		return n
	}
	a := net("aaaaaaaaaaaaaaaa", "10.20.0.0/24",
		netcfg.Route{Dst: pfx("172.16.0.0/16"), Via: via("10.20.0.11")},
		netcfg.Route{Dst: pfx("169.254.169.254/32"), Via: via("10.20.0.11")})
	b := net("bbbbbbbbbbbbbbbb", "10.30.0.0/24",
		netcfg.Route{Dst: pfx("10.20.0.0/25"), Via: via("10.30.0.5")},  // half of a's members
		netcfg.Route{Dst: pfx("172.16.5.0/24"), Via: via("10.30.0.5")}, // inside a's route
		netcfg.Route{Dst: pfx("192.168.9.0/24"), Via: via("10.30.0.5")})
	c := net("cccccccccccccccc", "10.20.0.0/16") // overlaps a
	got, notes := separate([]reconciler.Network{c, b, a})
	var ids []string
	routes := map[string][]string{}
	for _, n := range got {
		ids = append(ids, n.ID)
		for _, r := range n.Routes {
			routes[n.ID] = append(routes[n.ID], r.Dst.String())
		}
		if len(n.Prefixes) != len(n.Routes)+1 {
			t.Errorf("network %s: prefixes %v do not follow routes %v", n.ID, n.Prefixes, n.Routes)
		}
	}
	want := map[string][]string{"bbbbbbbbbbbbbbbb": {"192.168.9.0/24"}}
	if diff := cmp.Diff([]string{"aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"}, ids); diff != "" {
		t.Errorf("networks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, routes); diff != "" {
		t.Errorf("routes (-want +got):\n%s\nnotes: %q", diff, notes)
	}
	if len(notes) != 5 {
		t.Errorf("notes: %q, want 5 (one network, four routes)", notes)
	}
}

// TestAttackLeaseInsideOverlay: a DHCP server next to the appliance that
// leases an address inside a joined network's CIDR would route some
// members' traffic out of the NIC, unencrypted: the address is left out
// and said; addresses elsewhere, and a NIC subnet inside a managed
// route's range, stay.
func TestAttackLeaseInsideOverlay(t *testing.T) {
	pfx := netip.MustParsePrefix
	ns := []reconciler.Network{{ID: "aaaaaaaaaaaaaaaa", Prefixes: []netip.Prefix{pfx("10.9.0.0/24"), pfx("10.0.0.0/8")}}}
	ifs := []reconciler.Interface{
		{Name: "eth0", Addrs: []netip.Prefix{pfx("10.9.0.130/25")}, Gateway: netip.MustParseAddr("10.9.0.129")},
		{Name: "eth1", Addrs: []netip.Prefix{pfx("10.0.77.90/24"), pfx("192.168.1.5/24")}},
	}
	got, notes := NICsApart(ifs, ns)
	if len(got[0].Addrs) != 0 || len(got[1].Addrs) != 2 || len(notes) != 1 || !strings.Contains(notes[0], "eth0: address 10.9.0.130/25 left out") {
		t.Errorf("got %+v, notes %q", got, notes)
	}
	if len(ifs[0].Addrs) != 1 {
		t.Errorf("the caller's interfaces changed")
	}
}

// TestRouteGateways: a node that is any gateway of a route, the primary
// or a backup, serves it, routes it nowhere and answers health questions
// when the route has backups; a member routes it via the gateway chosen
// for it, whose peer alone carries the subnet.
func TestRouteGateways(t *testing.T) {
	key := mustKey(t)
	pfx := netip.MustParsePrefix
	addr := netip.MustParseAddr
	k1, k2 := mustKey(t).Public(), mustKey(t).Public()
	route := control.Route{Dest: pfx("172.16.0.0/16"), Via: addr("192.168.254.11"), Backups: []netip.Addr{addr("192.168.254.12")}}
	member := func(own string) agent.Membership {
		return agent.Membership{ID: "d363b4e9bd3d6aa8", Iface: "gated363b4e9bd", Config: &control.MemberConfig{
			Status: control.StatusOK, CIDR: pfx("192.168.254.0/24"), MTU: 1420,
			Addresses: []netip.Prefix{pfx(own + "/24")}, Routes: []control.Route{route},
			Peers: []control.Peer{
				// As the controller sends them: the subnet on the primary.
				{NodeID: "1111111111", PublicKey: k1.String(), Addresses: []netip.Addr{addr("192.168.254.11")}, AllowedIPs: []netip.Prefix{pfx("192.168.254.11/32"), route.Dest}},
				{NodeID: "2222222222", PublicKey: k2.String(), Addresses: []netip.Addr{addr("192.168.254.12")}, AllowedIPs: []netip.Prefix{pfx("192.168.254.12/32")}},
			},
		}}
	}
	none := func(control.Peer) netip.AddrPort { return netip.AddrPort{} }
	backup := func(string, control.Route) netip.Addr { return addr("192.168.254.12") }
	stranger := func(string, control.Route) netip.Addr { return addr("192.168.254.99") }
	cmpNet := []cmp.Option{cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })}
	for _, tt := range []struct {
		name    string
		own     string
		gateway func(string, control.Route) netip.Addr
		via     string // "": no route here
		health  uint16
	}{
		{"the primary serves it", "192.168.254.11", nil, "", failover.Port},
		{"the backup serves it", "192.168.254.12", backup, "", failover.Port},
		{"a member, nothing chosen: the primary", "192.168.254.170", nil, "192.168.254.11", 0},
		{"a member, the backup chosen", "192.168.254.170", backup, "192.168.254.12", 0},
		{"a member, an address that is no gateway of the route: the primary", "192.168.254.170", stranger, "192.168.254.11", 0},
	} {
		d, _ := Compute([]agent.Membership{member(tt.own)}, key, FirewallAuto, nil, none, tt.gateway)
		n := d.Networks[0]
		var want []netcfg.Route
		prefixes := []netip.Prefix{pfx("192.168.254.0/24")}
		allowed := [][]netip.Prefix{{pfx("192.168.254.11/32"), route.Dest}, {pfx("192.168.254.12/32")}} // as sent
		if tt.via != "" {
			want = []netcfg.Route{{Dst: route.Dest, Via: addr(tt.via), Metric: RouteMetric}}
			prefixes = append(prefixes, route.Dest)
			allowed = [][]netip.Prefix{{pfx("192.168.254.11/32")}, {pfx("192.168.254.12/32")}}
			if tt.via == "192.168.254.11" {
				allowed[0] = append(allowed[0], route.Dest)
			} else {
				allowed[1] = append(allowed[1], route.Dest)
			}
		}
		if diff := cmp.Diff(want, n.Routes, cmpNet...); diff != "" {
			t.Errorf("%s: routes (-want +got):\n%s", tt.name, diff)
		}
		if diff := cmp.Diff(prefixes, n.Prefixes, cmpNet...); diff != "" {
			t.Errorf("%s: prefixes (-want +got):\n%s", tt.name, diff)
		}
		for i, p := range n.Peers {
			if diff := cmp.Diff(allowed[i], p.AllowedIPs, cmpNet...); diff != "" {
				t.Errorf("%s: peer %d allowed IPs (-want +got):\n%s", tt.name, i, diff)
			}
		}
		if n.HealthPort != tt.health {
			t.Errorf("%s: health port %d, want %d", tt.name, n.HealthPort, tt.health)
		}
	}
	// What the controller sent is not changed in place.
	m := member("192.168.254.170")
	Compute([]agent.Membership{m}, key, FirewallAuto, nil, none, backup)
	if got := m.Config.Peers[0].AllowedIPs; len(got) != 2 {
		t.Errorf("the configuration's peer was changed: %v", got)
	}
}

// TestHealthPortIsNoWireGuardPort: the port gateways answer health
// questions on is none the agent gives a network's WireGuard device
// (from agent.FirstListenPort up, one a network).
func TestHealthPortIsNoWireGuardPort(t *testing.T) {
	if failover.Port >= agent.FirstListenPort {
		t.Errorf("failover.Port %d collides with the WireGuard ports from %d up", failover.Port, agent.FirstListenPort)
	}
}
