package policy

import (
	"fmt"
	"net/netip"
	"slices"
)

// Decision is what a policy does with one packet, and why.
type Decision struct {
	Allow bool
	// Rule is the number of the rule that decided, from 1; 0 when no
	// rule matched and the packet is denied by default.
	Rule int
	// Reason says it in a sentence, quoting the rule.
	Reason string
}

// Decide evaluates p, in the network ix describes, for a packet from src
// to dst of protocol proto (an IP protocol number) to port (ignored but
// for TCP and UDP): the first rule that matches decides, and a packet no
// rule matches is denied. It answers for a packet that opens a
// connection: replies to an allowed one always pass. It is what
// `gate policy test` asks.
//
// Decide does not Check p: a member: selector naming a node that is no
// longer a member matches nothing, as it does where the rules are
// enforced.
func Decide(p Policy, ix *Index, src, dst netip.Addr, proto Proto, port uint16) Decision {
	src, dst = src.Unmap(), dst.Unmap()
	for i, r := range p {
		if !ix.matchesAddr(r.From, src) || !ix.matchesAddr(r.To, dst) || !matchesService(r.Services, proto, port) {
			continue
		}
		verb := "denies"
		if r.Action == Allow {
			verb = "allows"
		}
		return Decision{
			Allow:  r.Action == Allow,
			Rule:   i + 1,
			Reason: fmt.Sprintf("rule %d %q %s it", i+1, r.String(), verb),
		}
	}
	return Decision{Reason: "no rule matches: denied by default"}
}

// matchesAddr says whether one of sels selects address a.
func (ix *Index) matchesAddr(sels []Selector, a netip.Addr) bool {
	for _, s := range sels {
		switch s.Kind {
		case KindAny:
			if slices.ContainsFunc(ix.anyNet, func(p netip.Prefix) bool { return p.Contains(a) }) {
				return true
			}
		case KindMembers:
			if ix.cidr.Contains(a) {
				return true
			}
		case KindTag:
			if m := ix.memberAt(a); m != nil && slices.Contains(m.Tags, s.Name) {
				return true
			}
		case KindMember:
			if m := ix.memberAt(a); m != nil && m.NodeID == s.Name {
				return true
			}
		case KindCIDR:
			if s.Prefix.Contains(a) {
				return true
			}
		}
	}
	return false
}

// matchesService says whether a packet of protocol proto to port is one
// of services; no services means any.
func matchesService(services []Service, proto Proto, port uint16) bool {
	if len(services) == 0 {
		return true
	}
	for _, s := range services {
		if s.matches(proto, port) {
			return true
		}
	}
	return false
}
