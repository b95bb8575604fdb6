package firewall

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/gatenet/gate/services/nodeconfig"
)

// TestDomainAndFirewallAgreeOnGatewayRoles: a gateway role that the
// domain's one validator (nodeconfig.Gateway.Check, which the document,
// the CLI, the console, the local API and the agent call) accepts is one
// the firewall's Validate accepts too, once the reconciler has put it in
// a Ruleset (LAN "" resolved to the default-route NIC); and every role the
// firewall refuses, the domain has refused first, so no request is taken
// that the firewall would refuse later. The firewall may be laxer (it is
// the last line of defence for its own Ruleset, not the place for policy):
// the rows that say so are the domain's decisions.
func TestDomainAndFirewallAgreeOnGatewayRoles(t *testing.T) {
	const id = "d363b4e9bd3d6aa8"
	overlay := nodeconfig.OverlayInterface(id)
	for _, tc := range []struct {
		name     string
		role     nodeconfig.Gateway
		domainOK bool
		fwLaxer  bool // the firewall takes what the domain refuses (why: name)
	}{
		{name: "seed NAT instance", role: nodeconfig.Gateway{Serve: pfx("172.16.0.0/16"), MasqueradeInternet: true}, domainOK: true},
		{name: "LAN named, masquerade to LAN", role: nodeconfig.Gateway{Serve: pfx("10.0.0.0/8"), LAN: "eth1", MasqueradeLAN: true}, domainOK: true},
		{name: "two CIDRs, both switches", role: nodeconfig.Gateway{Serve: pfx("172.16.0.0/16", "10.1.0.0/24"), LAN: "ens5", MasqueradeLAN: true, MasqueradeInternet: true}, domainOK: true},
		{name: "the domain's decision: a NAT instance serving nothing", role: nodeconfig.Gateway{MasqueradeInternet: true}, fwLaxer: true},
		{name: "the domain's decision: serving nothing", role: nodeconfig.Gateway{LAN: "eth1"}, fwLaxer: true},
		{name: "the domain's decision: overlapping CIDRs", role: nodeconfig.Gateway{Serve: pfx("172.16.0.0/16", "172.16.5.0/24")}, fwLaxer: true},
		{name: "host bits", role: nodeconfig.Gateway{Serve: pfx("172.16.1.1/16")}},
		{name: "IPv6 CIDR on an IPv4 overlay", role: nodeconfig.Gateway{Serve: pfx("fd00::/64")}},
		{name: "IPv4-mapped CIDR", role: nodeconfig.Gateway{Serve: pfx("::ffff:10.0.0.0/104")}},
		{name: "invalid CIDR", role: nodeconfig.Gateway{Serve: []netip.Prefix{{}}}},
		{name: "slash in LAN", role: nodeconfig.Gateway{Serve: pfx("10.0.0.0/8"), LAN: "eth0/1"}},
		{name: "space in LAN", role: nodeconfig.Gateway{Serve: pfx("10.0.0.0/8"), LAN: "eth 0"}},
		{name: "colon in LAN", role: nodeconfig.Gateway{Serve: pfx("10.0.0.0/8"), LAN: "eth0:1"}},
		{name: "dot-dot LAN", role: nodeconfig.Gateway{Serve: pfx("10.0.0.0/8"), LAN: ".."}},
		{name: "long LAN", role: nodeconfig.Gateway{Serve: pfx("10.0.0.0/8"), LAN: strings.Repeat("a", 16)}},
		{name: "control character in LAN", role: nodeconfig.Gateway{Serve: pfx("10.0.0.0/8"), LAN: "\x1b[2J"}},
		{name: "non-ASCII LAN", role: nodeconfig.Gateway{Serve: pfx("10.0.0.0/8"), LAN: "eth\u00e9"}},
		{name: "the overlay interface as LAN", role: nodeconfig.Gateway{Serve: pfx("10.0.0.0/8"), LAN: overlay}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			domain := tc.role.Check()
			// As the reconciler builds it (services/reconciler): the
			// network's prefixes, LAN "" is the default-route NIC.
			lan := tc.role.LAN
			if lan == "" {
				lan = "eth0"
			}
			rs := Ruleset{Strict: true, Overlays: []Overlay{{
				Iface:    overlay,
				Addrs:    addrs("192.168.254.11"),
				Prefixes: pfx("192.168.254.0/24"),
				Gateway: &Gateway{Serve: tc.role.Serve, LAN: lan, WAN: "eth0",
					MasqueradeLAN: tc.role.MasqueradeLAN, MasqueradeInternet: tc.role.MasqueradeInternet},
			}}}
			fw := rs.Validate()
			if (domain == nil) != tc.domainOK {
				t.Errorf("domain: %v, want ok %v", domain, tc.domainOK)
			}
			switch {
			case domain == nil && fw != nil:
				t.Errorf("the domain takes a role the firewall refuses: %v", fw)
			case domain != nil && fw == nil && !tc.fwLaxer:
				t.Errorf("the domain refuses (%v) what the firewall takes", domain)
			case domain != nil && fw != nil && tc.fwLaxer:
				t.Errorf("the firewall refuses it too (%v): not laxer", fw)
			}
		})
	}
}
