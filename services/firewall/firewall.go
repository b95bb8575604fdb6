// Package firewall owns Gate's nftables table and nothing else.
//
// Gate's whole packet policy (input deny-by-default, forwarding between an
// overlay and the networks a gateway serves, each network's rules, MSS
// clamping and NAT) lives in one table, "inet gate". A Ruleset is compiled
// by a pure function into chains, sets and rules; Apply then replaces the
// table in one atomic netlink batch: add table, delete table, add table,
// sets, chains and rules, one Flush. The kernel commits a batch entirely or
// not at all, so there is never a moment without rules, and a batch that
// fails leaves the previous rules in place.
//
// # Network rules
//
// A network's rules (package policy) are enforced by the member that
// receives a packet, never by the one that sends it: a sender's filter
// protects the others only while the sender stays honest and well
// configured, the receiver's protects it whatever the sender does (a member
// chooses its own AllowedIPs). An Overlay with a Policy gets two regular
// chains, reached by jump: "pol-in-IFACE" for what arrives on the overlay
// interface addressed to this node (the Input rules, then the Forward
// rules, which name their destinations, so that a gateway's own address
// inside a subnet it serves is covered), and, on a gateway, "pol-fwd-IFACE"
// for what arrives on it to be forwarded into the served subnets (the
// Forward rules). Each chain reads the rules in policy order, first match
// decides, and ends in a drop. The jump comes right after the conntrack
// rules, so that replies to allowed connections pass and nothing new from
// the overlay passes anything else first (the strict mode's open ports,
// ICMP), in strict and guard mode alike; in guard mode nothing but the
// overlay's traffic is touched. Nothing from the overlay is exempt, IPv6
// neighbour discovery included: WireGuard carries IP alone and has none,
// and the ND that strict mode accepts on the other interfaces is not
// affected. The sources a rule names by selector (any, members, tag:NAME,
// member:ID) are named sets, "IFACE.tag-web.v4" and so on, one a family.
// Every policy rule counts what it matched; Counters reads the counts back,
// keyed by the rule numbers stored in each rule's comment. An Overlay
// without a Policy has no rules of its own: what arrives on it is filtered
// as before.
//
// Nothing that comes in on an overlay reaches a cloud's metadata service
// (169.254.0.0/16, AWS's fd00:ec2::254, fe80::/10), forwarded or on this
// node: the first rules of the input and forward chains drop it, before
// conntrack's accept, whatever a gateway serves (0.0.0.0/0 included) and
// whatever the policy. A member must not read a gateway's user-data.
//
// Other tables are never touched, listed or flushed: Gate shares the kernel
// with whatever else the host runs (Docker, firewalld, an admin's own
// rules). The package does not enable forwarding (sysctl), create
// interfaces or routes; that belongs to netcfg and tunnel.
//
// Validate and the Ruleset types are portable so a configuration can be
// checked anywhere; Apply, Remove and Counters talk to the Linux kernel.
package firewall

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/gatenet/gate/services/policy"
)

// TableName is the name of Gate's table, in the inet family (IPv4 and IPv6).
const TableName = "gate"

// Ruleset is the whole desired packet policy of a node.
type Ruleset struct {
	// Strict: policy drop on input and forward (the appliance, and any node
	// acting as a gateway). Without Strict, input and forward policies
	// accept and only the guard rules apply.
	Strict   bool
	AllowTCP []uint16 // input ports accepted in strict mode (e.g. 22, a controller's 8443)
	AllowUDP []uint16 // input ports accepted in strict mode (WireGuard listen ports go here)
	Overlays []Overlay
}

// Overlay is one WireGuard network this node is a member of.
type Overlay struct {
	Iface    string         // WireGuard interface, e.g. "gt8056c2e2"
	Addrs    []netip.Addr   // this node's overlay addresses on it
	Prefixes []netip.Prefix // destinations behind the overlay: network CIDR and routes served by other members
	Gateway  *Gateway       // nil: not a gateway for this network
	// Policy is the part of the network's rules this node enforces, as
	// the controller compiled it for this member. nil: the controller sent
	// no rules, and what arrives on the overlay is filtered as it would be
	// without. Non-nil, even empty: what arrives on the overlay and is not
	// a reply passes only if a rule allows it; an empty Ruleset lets
	// nothing new in.
	Policy *policy.Ruleset
	// HealthPort, when set, is the UDP port this node answers the health
	// questions of members on (services/failover): let in from the
	// overlay, to its own addresses, before the rules, in both modes.
	HealthPort uint16
}

// RuleCount is what one rule of a network's policy has matched since the
// table was last replaced: the packets and bytes of all the nftables rules
// it became. Rule 0 is the drop at the end of the chain, of what no rule
// matched.
type RuleCount struct {
	Chain   string // "input" (to this node) or "forward" (into a served subnet)
	Rule    int    // the rule's number in the network's policy; 0: no rule matched
	Allow   bool
	Packets uint64
	Bytes   uint64
}

// Gateway makes a node forward between an overlay and local networks.
type Gateway struct {
	Serve []netip.Prefix // local CIDRs this node serves to the overlay (e.g. AWS VPC 172.16.0.0/16)
	LAN   string         // interface facing Serve (on an AWS NAT instance the only NIC, same as WAN)
	WAN   string         // interface with the default route; "" if none
	// MasqueradeLAN: overlay -> LAN traffic leaves with the LAN address
	// (clouds that drop foreign sources, DigitalOcean).
	MasqueradeLAN bool
	// MasqueradeInternet: the NAT-instance job, Serve -> internet
	// masqueraded out of WAN; never traffic bound for the overlay or for
	// Serve.
	MasqueradeInternet bool
}

// Validate checks a Ruleset without touching the kernel. Every problem is
// reported, each naming its field (e.g. "Overlays[0].Gateway.LAN").
func (rs Ruleset) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("firewall: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	for i, p := range rs.AllowTCP {
		if p == 0 {
			bad(fmt.Sprintf("AllowTCP[%d]", i), "port 0 is not a port")
		}
	}
	for i, p := range rs.AllowUDP {
		if p == 0 {
			bad(fmt.Sprintf("AllowUDP[%d]", i), "port 0 is not a port")
		}
	}
	seen := map[string]int{}
	for i, ov := range rs.Overlays {
		f := fmt.Sprintf("Overlays[%d]", i)
		if err := checkIface(ov.Iface); err != nil {
			bad(f+".Iface", "%v", err)
		} else if j, dup := seen[ov.Iface]; dup {
			bad(f+".Iface", "%q is already Overlays[%d].Iface", ov.Iface, j)
		} else {
			seen[ov.Iface] = i
		}
		for j, a := range ov.Addrs {
			if err := checkAddr(a); err != nil {
				bad(fmt.Sprintf("%s.Addrs[%d]", f, j), "%v", err)
			}
		}
		for j, p := range ov.Prefixes {
			if err := checkPrefix(p); err != nil {
				bad(fmt.Sprintf("%s.Prefixes[%d]", f, j), "%v", err)
			}
		}
		if ov.Policy != nil {
			if err := ov.Policy.CheckFilled(); err != nil {
				bad(f+".Policy", "%v", err)
			}
		}
		gw := ov.Gateway
		if gw == nil {
			continue
		}
		g := f + ".Gateway"
		for j, p := range gw.Serve {
			if err := checkPrefix(p); err != nil {
				bad(fmt.Sprintf("%s.Serve[%d]", g, j), "%v", err)
				continue
			}
			// Traffic from a served network to the overlay is matched by
			// destination in Prefixes; a family Prefixes lacks could
			// never be forwarded there.
			if !hasFamily(ov.Prefixes, p.Addr().Is4()) {
				bad(fmt.Sprintf("%s.Serve[%d]", g, j), "%s is %s but %s.Prefixes has no %s prefix",
					p, familyName(p.Addr()), f, familyName(p.Addr()))
			}
		}
		switch {
		case gw.LAN == "" && len(gw.Serve) > 0:
			bad(g+".LAN", "required when Serve is not empty")
		case gw.LAN != "":
			if err := checkIface(gw.LAN); err != nil {
				bad(g+".LAN", "%v", err)
			} else if gw.LAN == ov.Iface {
				bad(g+".LAN", "%q is the overlay interface itself", gw.LAN)
			}
		}
		if gw.WAN != "" {
			if err := checkIface(gw.WAN); err != nil {
				bad(g+".WAN", "%v", err)
			} else if gw.WAN == ov.Iface {
				bad(g+".WAN", "%q is the overlay interface itself", gw.WAN)
			}
		}
	}
	// A gateway's LAN or WAN must not be another overlay's interface: the
	// guard in forward would drop what the gateway rules mean to accept.
	for i, ov := range rs.Overlays {
		if ov.Gateway == nil {
			continue
		}
		for _, side := range []struct{ name, iface string }{{"LAN", ov.Gateway.LAN}, {"WAN", ov.Gateway.WAN}} {
			if j, ok := seen[side.iface]; ok && side.iface != "" && j != i {
				bad(fmt.Sprintf("Overlays[%d].Gateway.%s", i, side.name), "%q is Overlays[%d].Iface", side.iface, j)
			}
		}
	}
	return errors.Join(errs...)
}

// checkIface applies the kernel's rules for interface names (dev_valid_name
// in net/core/dev.c): 1 to 15 bytes, not "." or "..", no '/', ':' or
// white space. Control characters are refused as well.
func checkIface(name string) error {
	switch {
	case name == "":
		return errors.New("interface name is empty")
	case len(name) > 15:
		return fmt.Errorf("interface name %q is longer than 15 bytes", name)
	case name == "." || name == "..":
		return fmt.Errorf("interface name %q is not allowed", name)
	}
	if i := strings.IndexFunc(name, func(r rune) bool {
		return r == '/' || r == ':' || r <= ' ' || r == 0x7f || r > 0x7e
	}); i >= 0 {
		return fmt.Errorf("interface name %q has a forbidden character %q", name, name[i:i+1])
	}
	return nil
}

func checkAddr(a netip.Addr) error {
	switch {
	case !a.IsValid():
		return errors.New("address is missing or invalid")
	case a.Zone() != "":
		return fmt.Errorf("address %s has a zone", a)
	case a.Is4In6():
		return fmt.Errorf("address %s is IPv4-mapped IPv6; write it as %s", a, a.Unmap())
	case a.IsUnspecified():
		return fmt.Errorf("address %s is unspecified", a)
	}
	return nil
}

func checkPrefix(p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return errors.New("prefix is missing or invalid")
	case p.Addr().Zone() != "":
		return fmt.Errorf("prefix %s has a zone", p)
	case p.Addr().Is4In6():
		return fmt.Errorf("prefix %s is IPv4-mapped IPv6", p)
	case p != p.Masked():
		return fmt.Errorf("prefix %s has host bits set; did you mean %s?", p, p.Masked())
	}
	return nil
}

func hasFamily(ps []netip.Prefix, v4 bool) bool {
	for _, p := range ps {
		if p.IsValid() && p.Addr().Is4() == v4 {
			return true
		}
	}
	return false
}

func familyName(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}
