package controller

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/policy"
)

func TestBuildMemberConfig(t *testing.T) {
	ap := netip.MustParseAddrPort
	a := netip.MustParseAddr
	p := netip.MustParsePrefix
	n := networkRec{ID: "0123456789abcdef", Name: "seed", CIDR: p("192.168.254.0/24"), MTU: 1420, Revision: 7,
		Rules: policy.Policy{policy.MustParseRule("deny from tag:web to 172.16.0.0/16 on tcp/22"), policy.MustParseRule("allow from any to any")}}
	routes := []control.Route{
		{Dest: p("172.16.0.0/16"), Via: a("192.168.254.11")},
		{Dest: p("10.9.0.0/16"), Via: a("192.168.254.99")}, // via nobody (yet)
	}
	gate := memberRec{NodeID: "1111111111", Hostname: "aws-gate", PublicKey: "gatekey", State: control.StateAllowed,
		Address: a("192.168.254.11"), Endpoints: []netip.AddrPort{ap("172.16.1.10:51820"), ap("54.1.2.3:51820")},
		Observed: ap("54.1.2.3:51820")}
	droplet := memberRec{NodeID: "2222222222", Hostname: "droplet", PublicKey: "dropkey", State: control.StateAllowed,
		Address: a("192.168.254.170"), Endpoints: []netip.AddrPort{ap("10.0.0.5:51820")},
		Observed: ap("198.51.100.7:51820"), BehindNAT: true, Tags: []string{"web"}}
	pending := memberRec{NodeID: "3333333333", State: control.StatePending, PublicKey: "pk"}
	denied := memberRec{NodeID: "4444444444", State: control.StateDenied, Address: a("192.168.254.3"), PublicKey: "dk"}
	noAddr := memberRec{NodeID: "5555555555", State: control.StateAllowed, PublicKey: "nk"}
	all := []memberRec{denied, droplet, pending, gate, noAddr}

	gatePeer := control.Peer{NodeID: "1111111111", Hostname: "aws-gate", PublicKey: "gatekey",
		Addresses:  []netip.Addr{a("192.168.254.11")},
		AllowedIPs: []netip.Prefix{p("192.168.254.11/32"), p("172.16.0.0/16")},
		Endpoints:  []netip.AddrPort{ap("54.1.2.3:51820"), ap("172.16.1.10:51820")}}
	dropletPeer := control.Peer{NodeID: "2222222222", Hostname: "droplet", PublicKey: "dropkey",
		Addresses:  []netip.Addr{a("192.168.254.170")},
		AllowedIPs: []netip.Prefix{p("192.168.254.170/32")},
		Endpoints:  []netip.AddrPort{ap("198.51.100.7:51820"), ap("10.0.0.5:51820")},
		Tags:       []string{"web"}}
	anyNet := []netip.Prefix{p("10.9.0.0/16"), p("172.16.0.0/16"), p("192.168.254.0/24")}
	ssh := []policy.Service{{Proto: policy.TCP, Lo: 22, Hi: 22}}
	sorted := []control.Route{routes[1], routes[0]}
	base := func(node, status string) control.MemberConfig {
		return control.MemberConfig{NetworkID: n.ID, Name: "seed", Status: status, NodeID: node, CIDR: n.CIDR,
			MTU: 1420, Revision: 7, Addresses: []netip.Prefix{}, Routes: []control.Route{}, Peers: []control.Peer{}}
	}
	for _, tc := range []struct {
		name string
		self memberRec
		want control.MemberConfig
	}{
		{"gate sees the droplet", gate, func() control.MemberConfig {
			mc := base("1111111111", control.StatusOK)
			mc.Addresses = []netip.Prefix{p("192.168.254.11/24")}
			mc.Routes = sorted
			mc.Peers = []control.Peer{dropletPeer}
			// It enforces both rules on what it forwards into the VPC,
			// the second on what reaches it; the set of tag web it fills
			// in from its peers.
			mc.Policy = &policy.Ruleset{
				Input: []policy.CompiledRule{{Rule: 2, Allow: true, FromSets: []string{"any"}, To: []netip.Prefix{p("192.168.254.11/32")}}},
				Forward: []policy.CompiledRule{
					{Rule: 1, FromSets: []string{"tag:web"}, To: []netip.Prefix{p("172.16.0.0/16")}, Services: ssh},
					{Rule: 2, Allow: true, FromSets: []string{"any"}, To: []netip.Prefix{p("172.16.0.0/16")}},
				},
				Sets: map[string][]netip.Prefix{"any": anyNet},
			}
			return mc
		}()},
		{"droplet sees the gate with the route, keepalive behind NAT", droplet, func() control.MemberConfig {
			mc := base("2222222222", control.StatusOK)
			mc.Addresses = []netip.Prefix{p("192.168.254.170/24")}
			mc.Routes = sorted
			mc.Peers = []control.Peer{gatePeer}
			mc.Keepalive = 25
			mc.Policy = &policy.Ruleset{
				Input: []policy.CompiledRule{{Rule: 2, Allow: true, FromSets: []string{"any"}, To: []netip.Prefix{p("192.168.254.170/32")}}},
				Sets:  map[string][]netip.Prefix{"any": anyNet},
			}
			return mc
		}()},
		{"pending gets nothing", pending, base("3333333333", control.StatusRequesting)},
		{"denied gets nothing, though it has an address", denied, base("4444444444", control.StatusDenied)},
		{"allowed without address waits", noAddr, base("5555555555", control.StatusRequesting)},
	} {
		got, err := buildMemberConfig(n, routes, all, tc.self)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

func TestPeerEndpointsAndNAT(t *testing.T) {
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		name     string
		observed netip.AddrPort
		reported []netip.AddrPort
		wantEps  []netip.AddrPort
		wantNAT  bool
	}{
		{"no observed", netip.AddrPort{}, []netip.AddrPort{ap("1.2.3.4:5")}, []netip.AddrPort{ap("1.2.3.4:5")}, false},
		{"observed is reported", ap("1.2.3.4:5"), []netip.AddrPort{ap("10.0.0.1:5"), ap("1.2.3.4:5")},
			[]netip.AddrPort{ap("1.2.3.4:5"), ap("10.0.0.1:5")}, false},
		{"same IP other port is not NAT", ap("1.2.3.4:5"), []netip.AddrPort{ap("1.2.3.4:6")},
			[]netip.AddrPort{ap("1.2.3.4:5"), ap("1.2.3.4:6")}, false},
		{"behind NAT", ap("198.51.100.7:5"), []netip.AddrPort{ap("10.0.0.1:5")},
			[]netip.AddrPort{ap("198.51.100.7:5"), ap("10.0.0.1:5")}, true},
		{"nothing reported", ap("198.51.100.7:5"), nil, []netip.AddrPort{ap("198.51.100.7:5")}, true},
	} {
		m := memberRec{Observed: tc.observed, Endpoints: tc.reported}
		if got := peerEndpoints(m); !reflect.DeepEqual(got, tc.wantEps) {
			t.Errorf("%s: endpoints %v, want %v", tc.name, got, tc.wantEps)
		}
		if got := behindNAT(tc.observed, tc.reported); got != tc.wantNAT {
			t.Errorf("%s: behindNAT %t, want %t", tc.name, got, tc.wantNAT)
		}
	}
}

func TestSortedMembers(t *testing.T) {
	a := netip.MustParseAddr
	ms := []memberRec{
		{NodeID: "c"}, {NodeID: "b", Address: a("10.0.0.10")}, {NodeID: "a"}, {NodeID: "d", Address: a("10.0.0.9")},
	}
	var got []string
	for _, m := range sortedMembers(ms) {
		got = append(got, m.NodeID)
	}
	if want := []string{"d", "b", "a", "c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}
