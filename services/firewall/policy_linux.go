package firewall

// A network's rules as nftables chains and sets; the package doc says
// where they sit in the table and why.

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/gatenet/gate/services/policy"
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The policy chains of an overlay are named for its interface. Interface
// names are unique among the overlays and at most 15 bytes, so the names
// are unique in the table and far below the kernel's limit of 255 bytes
// (NFT_NAME_MAXLEN, with its NUL).
const (
	policyInputPrefix   = "pol-in-"
	policyForwardPrefix = "pol-fwd-"
)

// policyChain is the name of overlay iface's policy chain for kind,
// chainInput or chainForward.
func policyChain(kind, iface string) string {
	if kind == chainForward {
		return policyForwardPrefix + iface
	}
	return policyInputPrefix + iface
}

// The comment of each policy rule names the rule of the policy it came
// from; Counters reads it back (parseRuleComment).
const defaultDenyComment = "default deny"

func ruleComment(n int) string { return "rule " + strconv.Itoa(n) }

// parseRuleComment is the policy rule number a rule's comment names: 0
// for the default deny.
func parseRuleComment(s string) (int, bool) {
	if s == defaultDenyComment {
		return 0, true
	}
	d, ok := strings.CutPrefix(s, "rule ")
	n, err := strconv.Atoi(d)
	if !ok || err != nil || n < 1 || strconv.Itoa(n) != d {
		return 0, false
	}
	return n, true
}

// setName is the name of the named set of selector key (as Ruleset.Sets
// keys it: any, members, tag:NAME, member:NODEID) on overlay iface, for
// one family: "gt8056c2e2.tag-web.v4". A key holds no dot, so the name
// tells its overlay, key and family apart and two never share one. The
// longest, a 15-byte interface and a 32-byte tag, is 55 bytes: far below
// the kernel's 255 (TestSetNamesFit).
func setName(iface, key string, f family) string {
	suffix := ".v6"
	if f.is4 {
		suffix = ".v4"
	}
	return iface + "." + strings.ReplaceAll(key, ":", "-") + suffix
}

// policyChains compiles ov's Policy: the chain its input jump leads to and,
// on a gateway that serves subnets, the chain its forward jump into them
// leads to (forward makes that jump on the same condition).
func (c *compiler) policyChains(ov Overlay) []chain {
	rs := ov.Policy
	if rs == nil {
		return nil
	}
	// The Input and Forward rules name disjoint destinations, so one list
	// after the other decides as the policy does.
	chains := []chain{{name: policyChain(chainInput, ov.Iface), rules: c.policyRules(ov.Iface, rs, slices.Concat(rs.Input, rs.Forward))}}
	if gw := ov.Gateway; gw != nil && gw.LAN != "" && len(gw.Serve) > 0 {
		chains = append(chains, chain{name: policyChain(chainForward, ov.Iface), rules: c.policyRules(ov.Iface, rs, rs.Forward)})
	}
	return chains
}

// policyRules is a policy chain: the rules in order, then the default
// deny. Every rule counts.
func (c *compiler) policyRules(iface string, rs *policy.Ruleset, list []policy.CompiledRule) []rule {
	var rules []rule
	for _, cr := range list {
		rules = append(rules, c.policyRule(iface, rs, cr)...)
	}
	return append(rules, c.rule(counter(), verdict(expr.VerdictDrop), comment(defaultDenyComment)))
}

// policyRule is one compiled rule as nftables rules, kept together: one
// for each family its destinations have, source (each named set, and the
// prefixes of that family together) and protocol it names. A named set
// with no address of the family is looked up all the same: it matches
// nothing, until a member with such an address joins it.
func (c *compiler) policyRule(iface string, rs *policy.Ruleset, cr policy.CompiledRule) []rule {
	action := verdict(expr.VerdictDrop)
	if cr.Allow {
		action = verdict(expr.VerdictAccept)
	}
	protos := l4Matches(cr.Services)
	var rules []rule
	for _, fam := range families {
		to := fam.prefixes(cr.To)
		if len(to) == 0 {
			continue
		}
		var sources []func() part
		for _, key := range cr.FromSets {
			sources = append(sources, func() part { return c.namedAddrSet(fam, iface, key, rs.Sets[key]) })
		}
		if from := fam.prefixes(cr.From); len(from) > 0 {
			sources = append(sources, func() part { return c.addrMatch(fam, saddr, from) })
		}
		for _, src := range sources {
			for _, m := range protos {
				parts := []part{src(), c.addrMatch(fam, daddr, to)}
				if m.proto != policy.AnyProto {
					parts = append(parts, c.l4Part(fam, m))
				}
				rules = append(rules, c.rule(append(parts, counter(), action, comment(ruleComment(cr.Rule)))...))
			}
		}
	}
	return rules
}

// namedAddrSet matches the source address against the named set of
// selector key, adding the set to the plan the first time.
func (c *compiler) namedAddrSet(f family, iface, key string, ps []netip.Prefix) part {
	name := setName(iface, key, f)
	i, ok := c.byName[name]
	if !ok {
		if c.byName == nil {
			c.byName = map[string]int{}
		}
		c.lastSet++
		i = len(c.named)
		c.byName[name] = i
		c.named = append(c.named, namedSet{id: c.lastSet, name: name, comment: key, keyType: f.keyType,
			elems: intervalElems(f, f.prefixes(ps))})
	}
	return part{
		desc: f.name + " saddr @" + name,
		exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{f.proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: f.srcOff, Len: f.addrLen},
			&expr.Lookup{SourceRegister: 1, SetName: name, SetID: c.named[i].id},
		},
	}
}

// addrMatch matches the source or destination address against prefixes
// of family f: a comparison when they are one prefix (a member's own
// address, most often), as nft itself writes it, else an anonymous set.
// Each anonymous set is two more messages in the batch, and the kernel
// finds a new set by ID by walking the batch: thousands of them make a
// large policy take seconds to apply.
func (c *compiler) addrMatch(f family, dir direction, ps []netip.Prefix) part {
	rs := mergePrefixes(ps)
	p, ok := rs[0].prefix()
	if len(rs) > 1 || !ok || p.Bits() == 0 {
		return c.addrSet(f, dir, ps, false)
	}
	off, word := f.srcOff, "saddr"
	if dir == daddr {
		off, word = f.dstOff, "daddr"
	}
	exprs := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{f.proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: f.addrLen},
	}
	if !p.IsSingleIP() {
		mask := netip.PrefixFrom(lastAddr(netip.PrefixFrom(f.zeroAddr, 0)), p.Bits()).Masked().Addr().AsSlice()
		exprs = append(exprs, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: f.addrLen,
			Mask: mask, Xor: make([]byte, f.addrLen)})
	}
	exprs = append(exprs, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Addr().AsSlice()})
	return part{desc: f.name + " " + word + " " + rs[0].String(), exprs: exprs}
}

// l4Match is what one nftables rule matches of a compiled rule's
// services: a protocol (AnyProto: every one) and, for TCP and UDP, port
// ranges (none: every port).
type l4Match struct {
	proto policy.Proto
	ports []portRange
}

type portRange struct{ lo, hi uint16 }

// l4Matches groups services by protocol, TCP, UDP, ICMP in that order,
// with each protocol's port ranges merged (the kernel refuses overlapping
// intervals). No services, or any among them, is one match of every
// protocol.
func l4Matches(svcs []policy.Service) []l4Match {
	if len(svcs) == 0 || slices.ContainsFunc(svcs, func(s policy.Service) bool { return s.Proto == policy.AnyProto }) {
		return []l4Match{{proto: policy.AnyProto}}
	}
	var out []l4Match
	for _, proto := range []policy.Proto{policy.TCP, policy.UDP, policy.ICMP} {
		var ranges []portRange
		every, named := false, false
		for _, s := range svcs {
			if s.Proto != proto {
				continue
			}
			named = true
			if s.Lo == 0 && s.Hi == 0 {
				every = true
			}
			ranges = append(ranges, portRange{s.Lo, s.Hi})
		}
		switch {
		case !named:
		case every || proto == policy.ICMP:
			out = append(out, l4Match{proto: proto})
		default:
			out = append(out, l4Match{proto: proto, ports: mergePorts(ranges)})
		}
	}
	return out
}

// mergePorts sorts ranges and merges those that overlap or touch.
func mergePorts(rs []portRange) []portRange {
	slices.SortFunc(rs, func(a, b portRange) int { return cmp.Compare(a.lo, b.lo) })
	var out []portRange
	for _, r := range rs {
		if n := len(out); n > 0 && int(r.lo) <= int(out[n-1].hi)+1 {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// l4Part matches m's protocol (ICMP: ICMPv6 for IPv6) and its ports.
func (c *compiler) l4Part(f family, m l4Match) part {
	switch m.proto {
	case policy.ICMP:
		if f.is4 {
			return l4proto(unix.IPPROTO_ICMP, "icmp")
		}
		return l4proto(unix.IPPROTO_ICMPV6, "ipv6-icmp")
	case policy.TCP:
		if m.ports == nil {
			return l4proto(unix.IPPROTO_TCP, "tcp")
		}
		return c.portRanges(unix.IPPROTO_TCP, m.ports)
	}
	if m.ports == nil {
		return l4proto(unix.IPPROTO_UDP, "udp")
	}
	return c.portRanges(unix.IPPROTO_UDP, m.ports)
}

// l4proto matches the transport protocol, by the name nft prints for it.
func l4proto(proto byte, name string) part {
	return part{desc: "meta l4proto " + name, exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
	}}
}

// portRanges matches TCP or UDP destination ports against merged ranges
// (never empty): one port or one range by comparison, as nft writes them,
// more by an interval set encoded as intervalElems does addresses (no
// port is 0, so the set always starts with an interval end there).
func (c *compiler) portRanges(proto byte, rs []portRange) part {
	load := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
	}
	if len(rs) == 1 {
		r := rs[0]
		word := protoName[proto] + " dport " + strconv.Itoa(int(r.lo))
		if r.lo == r.hi {
			return part{desc: word, exprs: append(load, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(r.lo)})}
		}
		return part{desc: word + "-" + strconv.Itoa(int(r.hi)), exprs: append(load, &expr.Range{Op: expr.CmpOpEq, Register: 1,
			FromData: binaryutil.BigEndian.PutUint16(r.lo), ToData: binaryutil.BigEndian.PutUint16(r.hi)})}
	}
	elems := []nftables.SetElement{{Key: binaryutil.BigEndian.PutUint16(0), IntervalEnd: true}}
	strs := make([]string, len(rs))
	for i, r := range rs {
		elems = append(elems, nftables.SetElement{Key: binaryutil.BigEndian.PutUint16(r.lo)})
		if r.hi < 65535 {
			elems = append(elems, nftables.SetElement{Key: binaryutil.BigEndian.PutUint16(r.hi + 1), IntervalEnd: true})
		}
		strs[i] = strconv.Itoa(int(r.lo))
		if r.hi != r.lo {
			strs[i] += "-" + strconv.Itoa(int(r.hi))
		}
	}
	s, lookup := c.newSet(nftables.TypeInetService, true, elems)
	return part{
		desc:  protoName[proto] + " dport { " + strings.Join(strs, ", ") + " }",
		exprs: append(load, lookup),
		set:   s,
	}
}
