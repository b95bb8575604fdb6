package firewall

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/gatenet/gate/services/policy"
)

// Policies in tests are written as an operator writes them and compiled
// by package policy, as the controller does for each member.

// member is a member of a test network: node ID, overlay addresses, tags.
func member(id string, as []string, tags ...string) policy.Member {
	return policy.Member{NodeID: id, Addresses: addrs(as...), Tags: tags}
}

// route is a subnet a member serves: dest via that member's address.
func route(dest, via string) policy.Route {
	return policy.Route{Dest: netip.MustParsePrefix(dest), Via: netip.MustParseAddr(via)}
}

// compileRules compiles rules, one rule a string, for member self of n,
// and fills in their sets from the other members, as self would from its
// peers.
func compileRules(t testing.TB, n policy.Network, self string, rules ...string) *policy.Ruleset {
	t.Helper()
	ix, err := policy.NewIndex(n)
	if err != nil {
		t.Fatalf("policy.NewIndex: %v", err)
	}
	p, err := policy.ParsePolicy(strings.Join(rules, "\n"))
	if err != nil {
		t.Fatalf("policy.ParsePolicy: %v", err)
	}
	rs, err := policy.Compile(p, ix, self)
	if err != nil {
		t.Fatalf("policy.Compile: %v", err)
	}
	var peers []policy.Member
	for _, m := range n.Members {
		if m.NodeID != self {
			peers = append(peers, m)
		}
	}
	rs = rs.Fill(peers)
	return &rs
}

// The network of the policy tests: a database member (the node under
// test, 192.168.254.11), a web member and an untagged one, and a gateway
// serving two IPv4 subnets and an IPv6 one.
const (
	idDB    = "00000000db"
	idWeb   = "0000000021"
	idOther = "0000000030"
	idGW    = "000000000a"
)

func testNetwork() policy.Network {
	return policy.Network{
		CIDR: netip.MustParsePrefix("192.168.254.0/24"),
		Routes: []policy.Route{
			route("172.16.0.0/16", "192.168.254.10"),
			route("10.20.0.0/16", "192.168.254.10"),
			route("fd00:16::/64", "192.168.254.10"),
		},
		Members: []policy.Member{
			member(idDB, []string{"192.168.254.11"}, "db"),
			member(idWeb, []string{"192.168.254.21", "fd8a::21"}, "web"),
			member(idOther, []string{"192.168.254.30"}),
			member(idGW, []string{"192.168.254.10"}, "gw"),
		},
	}
}
