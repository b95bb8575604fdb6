package firewall

// Matches and actions: the pieces compile assembles rules from. Each
// mirrors the expressions nft itself generates for the same words (see
// `nft --debug=netlink`), so `nft list` reads Gate's rules back as written.

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// compiler hands out set IDs and collects the named sets rules look up.
// Anonymous sets are referred to by ID within the batch that creates them,
// so IDs only need to be unique per batch.
type compiler struct {
	lastSet uint32
	named   []namedSet
	byName  map[string]int // index in named
}

// part is a piece of a rule: its nft words, its expressions, at most one
// anonymous set its lookup refers to, and the rule's comment (its
// expressions none).
type part struct {
	desc    string
	exprs   []expr.Any
	set     *set
	comment string
}

func (c *compiler) rule(parts ...part) rule {
	var r rule
	var words []string
	for _, p := range parts {
		words = append(words, p.desc)
		r.exprs = append(r.exprs, p.exprs...)
		if p.set != nil {
			r.sets = append(r.sets, *p.set)
		}
		if p.comment != "" {
			r.comment = p.comment
		}
	}
	r.desc = strings.Join(words, " ")
	return r
}

func (c *compiler) newSet(keyType nftables.SetDatatype, interval bool, elems []nftables.SetElement) (*set, *expr.Lookup) {
	c.lastSet++
	s := &set{id: c.lastSet, keyType: keyType, interval: interval, elems: elems}
	return s, &expr.Lookup{SourceRegister: 1, SetName: anonSetName, SetID: s.id}
}

// anonSetName asks the kernel to name an anonymous set itself (__set0,
// ...). A lookup in the same batch cannot know that name, so the kernel
// falls back to the set ID among the batch's new sets (nft_set_lookup_global
// in net/netfilter/nf_tables_api.c), as nft does.
const anonSetName = "__set%d"

// family is what differs between IPv4 and IPv6 matches in an inet table.
type family struct {
	proto    byte   // NFPROTO_*
	name     string // nft's word for the header: "ip", "ip6"
	nfName   string // nft's word for the protocol: "ipv4", "ipv6"
	is4      bool
	keyType  nftables.SetDatatype
	addrLen  uint32
	srcOff   uint32 // offset of the source address in the network header
	dstOff   uint32 // offset of the destination address
	zeroAddr netip.Addr
}

var (
	ipv4 = family{proto: unix.NFPROTO_IPV4, name: "ip", nfName: "ipv4", is4: true, keyType: nftables.TypeIPAddr,
		addrLen: 4, srcOff: 12, dstOff: 16, zeroAddr: netip.IPv4Unspecified()}
	ipv6 = family{proto: unix.NFPROTO_IPV6, name: "ip6", nfName: "ipv6", keyType: nftables.TypeIP6Addr,
		addrLen: 16, srcOff: 8, dstOff: 24, zeroAddr: netip.IPv6Unspecified()}
	families = []family{ipv4, ipv6}
)

func (f family) addrs(as []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range as {
		if a.Is4() == f.is4 {
			out = append(out, a)
		}
	}
	return out
}

func (f family) prefixes(ps []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.Addr().Is4() == f.is4 {
			out = append(out, p)
		}
	}
	return out
}

func prefixesOf(as []netip.Addr) []netip.Prefix {
	out := make([]netip.Prefix, len(as))
	for i, a := range as {
		out[i] = netip.PrefixFrom(a, a.BitLen())
	}
	return out
}

func concat(a, b []netip.Prefix) []netip.Prefix {
	return append(slices.Clip(a), b...)
}

type direction bool

const (
	saddr direction = false
	daddr direction = true
)

// addrSet matches the source or destination address against prefixes (of
// family f; never empty: callers skip the rule instead, as the kernel has
// no use for an empty anonymous set).
func (c *compiler) addrSet(f family, dir direction, ps []netip.Prefix, invert bool) part {
	s, lookup := c.newSet(f.keyType, true, intervalElems(f, ps))
	lookup.Invert = invert
	off, word := f.srcOff, "saddr"
	if dir == daddr {
		off, word = f.dstOff, "daddr"
	}
	op := ""
	if invert {
		op = "!= "
	}
	var strs []string
	for _, p := range mergePrefixes(ps) {
		strs = append(strs, p.String())
	}
	return part{
		desc: f.name + " " + word + " " + op + "{ " + strings.Join(strs, ", ") + " }",
		exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{f.proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: f.addrLen},
			lookup,
		},
		set: s,
	}
}

// addrRange is an inclusive range of addresses.
type addrRange struct{ from, to netip.Addr }

func (r addrRange) String() string {
	if r.from == r.to {
		return r.from.String()
	}
	if p, ok := r.prefix(); ok {
		return p.String()
	}
	return r.from.String() + "-" + r.to.String()
}

func (r addrRange) prefix() (netip.Prefix, bool) {
	for bits := 0; bits <= r.from.BitLen(); bits++ {
		p := netip.PrefixFrom(r.from, bits)
		if p.Masked().Addr() == r.from && lastAddr(p) == r.to {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// mergePrefixes sorts ranges and merges those that overlap or touch: the
// kernel refuses overlapping intervals in a set.
func mergePrefixes(ps []netip.Prefix) []addrRange {
	rs := make([]addrRange, 0, len(ps))
	for _, p := range ps {
		p = p.Masked()
		rs = append(rs, addrRange{p.Addr(), lastAddr(p)})
	}
	slices.SortFunc(rs, func(a, b addrRange) int { return cmp.Or(a.from.Compare(b.from), a.to.Compare(b.to)) })
	var out []addrRange
	for _, r := range rs {
		if n := len(out); n > 0 {
			last := &out[n-1]
			if next := last.to.Next(); !next.IsValid() || r.from.Compare(next) <= 0 {
				if r.to.Compare(last.to) > 0 {
					last.to = r.to
				}
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// intervalElems encodes ranges the way nft does (src/segtree.c in
// https://git.netfilter.org/nftables): an interval-end element at
// the zero address when the first range does not start there, then for
// each range its first address and, flagged as interval end, the address
// after its last (none when it runs to the end of the address space).
func intervalElems(f family, ps []netip.Prefix) []nftables.SetElement {
	ranges := mergePrefixes(ps)
	var elems []nftables.SetElement
	if len(ranges) > 0 && ranges[0].from != f.zeroAddr {
		elems = append(elems, nftables.SetElement{Key: f.zeroAddr.AsSlice(), IntervalEnd: true})
	}
	for _, r := range ranges {
		elems = append(elems, nftables.SetElement{Key: r.from.AsSlice()})
		if next := r.to.Next(); next.IsValid() {
			elems = append(elems, nftables.SetElement{Key: next.AsSlice(), IntervalEnd: true})
		}
	}
	return elems
}

// portSet matches TCP or UDP destination ports (never empty).
func (c *compiler) portSet(proto byte, ports []uint16) part {
	ports = slices.Clone(ports)
	slices.Sort(ports)
	ports = slices.Compact(ports)
	elems := make([]nftables.SetElement, len(ports))
	strs := make([]string, len(ports))
	for i, p := range ports {
		elems[i] = nftables.SetElement{Key: binaryutil.BigEndian.PutUint16(p)}
		strs[i] = strconv.Itoa(int(p))
	}
	s, lookup := c.newSet(nftables.TypeInetService, false, elems)
	return part{
		desc: protoName[proto] + " dport { " + strings.Join(strs, ", ") + " }",
		exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			lookup,
		},
		set: s,
	}
}

var protoName = map[byte]string{unix.IPPROTO_TCP: "tcp", unix.IPPROTO_UDP: "udp"}

// udpPorts matches one UDP source and destination port.
func udpPorts(sport, dport uint16) part {
	return part{desc: "udp sport " + strconv.Itoa(int(sport)) + " udp dport " + strconv.Itoa(int(dport)), exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_UDP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(sport)},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(dport)},
	}}
}

// icmpSet matches ICMP (f is ipv4) or ICMPv6 types.
func (c *compiler) icmpSet(f family, types []icmpType) part {
	elems := make([]nftables.SetElement, len(types))
	names := make([]string, len(types))
	for i, t := range types {
		elems[i] = nftables.SetElement{Key: []byte{t.typ}}
		names[i] = t.name
	}
	keyType, word, proto := nftables.TypeICMPType, "icmp", byte(unix.IPPROTO_ICMP)
	if !f.is4 {
		keyType, word, proto = nftables.TypeICMP6Type, "icmpv6", unix.IPPROTO_ICMPV6
	}
	s, lookup := c.newSet(keyType, false, elems)
	return part{
		desc: word + " type { " + strings.Join(names, ", ") + " }",
		exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{f.proto}},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			lookup,
		},
		set: s,
	}
}

// iifLoopback matches the loopback interface by index: it is 1 in every
// network namespace (LOOPBACK_IFINDEX), so the rule never goes stale.
func iifLoopback() part {
	return part{desc: `iif "lo"`, exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIF, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(1)},
	}}
}

// ifname matches an interface by name, so rules may name interfaces that
// do not exist yet (a WireGuard device created after the firewall).
func ifname(k expr.MetaKey, name string, op expr.CmpOp) part {
	word := "iifname"
	if k == expr.MetaKeyOIFNAME {
		word = "oifname"
	}
	if op == expr.CmpOpNeq {
		word += " !="
	}
	// The kernel compares the whole IFNAMSIZ buffer: NUL-padded is exact.
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return part{desc: word + ` "` + name + `"`, exprs: []expr.Any{
		&expr.Meta{Key: k, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: b},
	}}
}

func nfproto(f family) part {
	return part{desc: "meta nfproto " + f.nfName, exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{f.proto}},
	}}
}

func ctState(mask uint32, words string) part {
	return part{desc: "ct state " + words, exprs: []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(mask), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}}
}

func limit() part {
	return part{desc: "limit rate 20/second burst 50 packets", exprs: []expr.Any{
		&expr.Limit{Type: expr.LimitTypePkts, Rate: 20, Unit: expr.LimitTimeSecond, Burst: 50},
	}}
}

// synOnly matches TCP segments with SYN set and RST clear.
func synOnly() part {
	return part{desc: "tcp flags syn / syn,rst", exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x02 | 0x04}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x02}},
	}}
}

// clampMSS is "tcp option maxseg size set rt mtu": the route's MTU minus
// the headers (NFT_RT_TCPMSS), written into the MSS option (kind 2, value
// at offset 2, 2 bytes), the way nft encodes it.
func clampMSS() part {
	return part{desc: "tcp option maxseg size set rt mtu", exprs: []expr.Any{
		&expr.Rt{Register: 1, Key: expr.RtTCPMSS},
		&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 2, Size: 2},
		&expr.Exthdr{SourceRegister: 1, Type: 2, Offset: 2, Len: 2, Op: expr.ExthdrOpTcpopt},
	}}
}

func masquerade() part {
	return part{desc: "masquerade", exprs: []expr.Any{&expr.Masq{}}}
}

// jump continues in regular chain name; a verdict there ends the packet's
// way through the table, as a verdict here would.
func jump(name string) part {
	return part{desc: "jump " + name, exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: name}}}
}

// counter counts the packets and bytes that reach it.
func counter() part {
	return part{desc: "counter", exprs: []expr.Any{&expr.Counter{}}}
}

// comment is a rule's comment, in its user data as nft keeps one
// (NFTNL_UDATA_RULE_COMMENT): nft prints it, Counters reads it.
func comment(text string) part {
	return part{desc: "comment " + strconv.Quote(text), comment: text}
}

func verdict(k expr.VerdictKind) part {
	word := map[expr.VerdictKind]string{expr.VerdictAccept: "accept", expr.VerdictDrop: "drop"}[k]
	return part{desc: word, exprs: []expr.Any{&expr.Verdict{Kind: k}}}
}
