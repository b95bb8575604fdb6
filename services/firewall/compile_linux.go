package firewall

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// plan is a compiled Ruleset: everything that goes into the table, in
// order, without a connection or a table pointer. compile builds it; apply
// sends it.
type plan struct {
	sets   []namedSet
	chains []chain // the base chains, then the regular chains they jump to
}

// chain is a base chain (hook set) or a regular chain (hook nil: no type,
// priority or policy), reached only by jump.
type chain struct {
	name   string
	typ    nftables.ChainType
	hook   *nftables.ChainHook
	prio   *nftables.ChainPriority
	policy nftables.ChainPolicy
	rules  []rule
}

// rule is one nftables rule. desc is its meaning in nft syntax, for tests
// and error messages; exprs is what the kernel gets. sets are the anonymous
// sets the rule's lookups name by ID; they are added just before the rule.
// comment goes into the rule's user data, where nft shows it and Counters
// reads it.
type rule struct {
	desc    string
	exprs   []expr.Any
	sets    []set
	comment string
}

type set struct {
	id       uint32
	keyType  nftables.SetDatatype
	interval bool
	elems    []nftables.SetElement
}

// namedSet is a set of addresses that rules look up by name: the sources a
// network's rules name by selector. It may be empty.
type namedSet struct {
	id      uint32
	name    string
	comment string // the selector, as the rules write it
	keyType nftables.SetDatatype
	elems   []nftables.SetElement
}

// Chain names; nft prints them, so they are the words an operator reads.
const (
	chainInput       = "input"
	chainForward     = "forward"
	chainMSS         = "mss"
	chainPostrouting = "postrouting"
)

// icmpType is an ICMP or ICMPv6 type and the name nft prints for it.
type icmpType struct {
	typ  byte
	name string
}

// ICMP types accepted (rate-limited) on input in strict mode. Errors that
// belong to a connection are "related" and accepted before; these cover
// the rest, e.g. frag-needed for a path MTU probe and traceroute.
var (
	icmp4Limited = []icmpType{
		{8, "echo-request"},
		{3, "destination-unreachable"}, // incl. fragmentation-needed
		{11, "time-exceeded"},
		{12, "parameter-problem"},
	}
	icmp6Limited = []icmpType{
		{128, "echo-request"},
		{1, "destination-unreachable"},
		{2, "packet-too-big"},
		{3, "time-exceeded"},
		{4, "parameter-problem"},
	}
	// Neighbour discovery is never limited: without it IPv6 stops
	// working. Conntrack marks these untracked, not invalid (noct_valid_new
	// in net/netfilter/nf_conntrack_proto_icmpv6.c), so the "ct state
	// invalid drop" before does not catch them.
	icmp6ND = []icmpType{
		{133, "nd-router-solicit"},
		{134, "nd-router-advert"},
		{135, "nd-neighbor-solicit"},
		{136, "nd-neighbor-advert"},
	}
)

// metadataPrefixes are where clouds serve the instance metadata service
// (user-data, credentials): IPv4 link-local, where AWS, DigitalOcean,
// GCP, Azure and OpenStack answer on 169.254.169.254, AWS's IPv6 IMDS
// address, and IPv6 link-local. Nothing from an overlay reaches them,
// through this node or on it (metadataGuard).
var metadataPrefixes = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fd00:ec2::254/128"),
	netip.MustParsePrefix("fe80::/10"),
}

// compile turns a valid Ruleset into a plan. It is a pure function: the
// same Ruleset gives the same plan, set IDs included.
func compile(rs Ruleset) plan {
	c := &compiler{}
	policy := nftables.ChainPolicyAccept
	if rs.Strict {
		policy = nftables.ChainPolicyDrop
	}
	chains := []chain{
		{name: chainInput, typ: nftables.ChainTypeFilter, hook: nftables.ChainHookInput,
			prio: nftables.ChainPriorityFilter, policy: policy, rules: c.input(rs)},
		{name: chainForward, typ: nftables.ChainTypeFilter, hook: nftables.ChainHookForward,
			prio: nftables.ChainPriorityFilter, policy: policy, rules: c.forward(rs)},
		{name: chainMSS, typ: nftables.ChainTypeFilter, hook: nftables.ChainHookForward,
			prio: nftables.ChainPriorityMangle, policy: nftables.ChainPolicyAccept, rules: c.mss(rs)},
		{name: chainPostrouting, typ: nftables.ChainTypeNAT, hook: nftables.ChainHookPostrouting,
			prio: nftables.ChainPriorityNATSource, policy: nftables.ChainPolicyAccept, rules: c.postrouting(rs)},
	}
	for _, ov := range rs.Overlays {
		chains = append(chains, c.policyChains(ov)...)
	}
	// By name, for nft's listing: each overlay's together.
	slices.SortFunc(c.named, func(a, b namedSet) int { return strings.Compare(a.name, b.name) })
	return plan{sets: c.named, chains: chains}
}

func (c *compiler) input(rs Ruleset) []rule {
	rules := []rule{
		c.rule(iifLoopback(), verdict(expr.VerdictAccept)),
	}
	rules = append(rules, c.metadataGuard(rs)...)
	// An overlay address answers only through its overlay: a neighbour
	// on a shared cloud network must not reach it by routing to us.
	for _, ov := range rs.Overlays {
		for _, fam := range families {
			addrs := fam.addrs(ov.Addrs)
			if len(addrs) == 0 {
				continue
			}
			rules = append(rules, c.rule(ifname(expr.MetaKeyIIFNAME, ov.Iface, expr.CmpOpNeq),
				c.addrSet(fam, daddr, prefixesOf(addrs), false), verdict(expr.VerdictDrop)))
		}
	}
	rules = append(rules, c.conntrack(rs.Strict)...)
	// A gateway's health answers: Gate's own traffic, from the overlay to
	// this node's address on it, whatever the rules.
	for _, ov := range rs.Overlays {
		if ov.HealthPort == 0 {
			continue
		}
		for _, fam := range families {
			if addrs := fam.addrs(ov.Addrs); len(addrs) > 0 {
				rules = append(rules, c.rule(ifname(expr.MetaKeyIIFNAME, ov.Iface, expr.CmpOpEq), c.addrSet(fam, daddr, prefixesOf(addrs), false),
					c.portSet(unix.IPPROTO_UDP, []uint16{ov.HealthPort}), verdict(expr.VerdictAccept)))
			}
		}
	}
	// What is new from an overlay with rules passes only what they allow:
	// before the open ports and ICMP below, in both modes.
	for _, ov := range rs.Overlays {
		if ov.Policy != nil {
			rules = append(rules, c.rule(ifname(expr.MetaKeyIIFNAME, ov.Iface, expr.CmpOpEq), jump(policyChain(chainInput, ov.Iface))))
		}
	}
	if !rs.Strict {
		return rules
	}
	if len(rs.AllowUDP) > 0 {
		rules = append(rules, c.rule(c.portSet(unix.IPPROTO_UDP, rs.AllowUDP), verdict(expr.VerdictAccept)))
	}
	if len(rs.AllowTCP) > 0 {
		rules = append(rules, c.rule(c.portSet(unix.IPPROTO_TCP, rs.AllowTCP), verdict(expr.VerdictAccept)))
	}
	rules = append(rules,
		// DHCP replies are not part of a connection conntrack knows about
		// (the request went to the broadcast address).
		c.rule(nfproto(ipv4), udpPorts(67, 68), verdict(expr.VerdictAccept)),
		c.rule(nfproto(ipv6), udpPorts(547, 546), verdict(expr.VerdictAccept)),
		c.rule(c.icmpSet(ipv4, icmp4Limited), limit(), verdict(expr.VerdictAccept)),
		c.rule(c.icmpSet(ipv6, icmp6ND), verdict(expr.VerdictAccept)),
		c.rule(c.icmpSet(ipv6, icmp6Limited), limit(), verdict(expr.VerdictAccept)),
	)
	return rules
}

// conntrack is the head of the input and forward chains. Only strict mode
// drops packets conntrack calls invalid: on an ordinary host Gate may be the
// first to use conntrack in the namespace, and connections that were open
// before (an SSH session) are then picked up mid-stream, where conntrack
// cannot know their window scaling and marks valid packets invalid. Guard
// mode must leave such traffic alone; strict mode owns the machine.
func (c *compiler) conntrack(strict bool) []rule {
	var rules []rule
	if strict {
		rules = append(rules, c.rule(ctState(expr.CtStateBitINVALID, "invalid"), verdict(expr.VerdictDrop)))
	}
	return append(rules, c.rule(ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED, "established,related"), verdict(expr.VerdictAccept)))
}

// metadataGuard drops whatever comes in on an overlay addressed to a
// cloud's metadata service (metadataPrefixes), first, before any accept,
// conntrack's included: a gateway may serve 0.0.0.0/0 and masquerade,
// and a member must not read the gateway's user-data (its join tokens, a
// database password) through it, nor reach a link-local service on the
// node itself.
func (c *compiler) metadataGuard(rs Ruleset) []rule {
	var rules []rule
	for _, ov := range rs.Overlays {
		for _, fam := range families {
			rules = append(rules, c.rule(ifname(expr.MetaKeyIIFNAME, ov.Iface, expr.CmpOpEq),
				c.addrSet(fam, daddr, fam.prefixes(metadataPrefixes), false), verdict(expr.VerdictDrop)))
		}
	}
	return rules
}

func (c *compiler) forward(rs Ruleset) []rule {
	rules := c.metadataGuard(rs)
	rules = append(rules, c.conntrack(rs.Strict)...)
	for _, ov := range rs.Overlays {
		gw := ov.Gateway
		if gw == nil || gw.LAN == "" {
			continue
		}
		for _, fam := range families {
			serve, behind := fam.prefixes(gw.Serve), fam.prefixes(ov.Prefixes)
			if len(serve) == 0 {
				continue
			}
			if len(behind) > 0 {
				rules = append(rules, c.rule(
					ifname(expr.MetaKeyIIFNAME, gw.LAN, expr.CmpOpEq), ifname(expr.MetaKeyOIFNAME, ov.Iface, expr.CmpOpEq),
					c.addrSet(fam, saddr, serve, false), c.addrSet(fam, daddr, behind, false), verdict(expr.VerdictAccept)))
			}
			// Into the served subnets, the network's rules decide when
			// there are any; without, everything the overlay sends there.
			into := verdict(expr.VerdictAccept)
			if ov.Policy != nil {
				into = jump(policyChain(chainForward, ov.Iface))
			}
			rules = append(rules, c.rule(
				ifname(expr.MetaKeyIIFNAME, ov.Iface, expr.CmpOpEq), ifname(expr.MetaKeyOIFNAME, gw.LAN, expr.CmpOpEq),
				c.addrSet(fam, daddr, serve, false), into))
			if gw.MasqueradeInternet && gw.WAN != "" {
				// On a one-NIC gateway LAN == WAN: the destination test is
				// what tells internet traffic from overlay or LAN traffic.
				rules = append(rules, c.rule(
					ifname(expr.MetaKeyIIFNAME, gw.LAN, expr.CmpOpEq), ifname(expr.MetaKeyOIFNAME, gw.WAN, expr.CmpOpEq),
					c.addrSet(fam, saddr, serve, false), c.addrSet(fam, daddr, concat(behind, serve), true), verdict(expr.VerdictAccept)))
			}
		}
	}
	// Nothing enters an overlay from outside it, and nothing that comes
	// out of an overlay is forwarded anywhere, except what a gateway rule
	// accepted above, whatever the policy: a member chooses its own
	// AllowedIPs, and a host that forwards for reasons of its own
	// (containers, VMs) must not route the overlay into them.
	for _, ov := range rs.Overlays {
		rules = append(rules,
			c.rule(ifname(expr.MetaKeyOIFNAME, ov.Iface, expr.CmpOpEq), ifname(expr.MetaKeyIIFNAME, ov.Iface, expr.CmpOpNeq),
				verdict(expr.VerdictDrop)),
			c.rule(ifname(expr.MetaKeyIIFNAME, ov.Iface, expr.CmpOpEq), verdict(expr.VerdictDrop)))
	}
	return rules
}

// mss clamps the MSS of TCP SYNs crossing an overlay to the path MTU, both
// ways: the tunnel's MTU is smaller than the LAN's, and ICMP
// frag-needed is too often dropped on the way.
func (c *compiler) mss(rs Ruleset) []rule {
	var rules []rule
	for _, ov := range rs.Overlays {
		for _, k := range []expr.MetaKey{expr.MetaKeyOIFNAME, expr.MetaKeyIIFNAME} {
			rules = append(rules, c.rule(ifname(k, ov.Iface, expr.CmpOpEq), synOnly(), clampMSS()))
		}
	}
	return rules
}

func (c *compiler) postrouting(rs Ruleset) []rule {
	var rules []rule
	for _, ov := range rs.Overlays {
		gw := ov.Gateway
		if gw == nil || gw.LAN == "" {
			continue
		}
		for _, fam := range families {
			serve, behind := fam.prefixes(gw.Serve), fam.prefixes(ov.Prefixes)
			if len(serve) == 0 {
				continue
			}
			// iifname is known in postrouting for forwarded packets; it
			// keeps the gateway's own traffic and the LAN's out of this.
			if gw.MasqueradeLAN {
				rules = append(rules, c.rule(
					ifname(expr.MetaKeyOIFNAME, gw.LAN, expr.CmpOpEq), ifname(expr.MetaKeyIIFNAME, ov.Iface, expr.CmpOpEq),
					c.addrSet(fam, daddr, serve, false), masquerade()))
			}
			if gw.MasqueradeInternet && gw.WAN != "" {
				rules = append(rules, c.rule(
					ifname(expr.MetaKeyOIFNAME, gw.WAN, expr.CmpOpEq),
					c.addrSet(fam, saddr, serve, false), c.addrSet(fam, daddr, concat(behind, serve), true), masquerade()))
			}
		}
	}
	return rules
}
