package policy

import (
	"net/netip"
	"slices"
)

// Peers lists, by node ID in order, the members that member self needs as
// WireGuard peers under p: those that some allow rule lets self reach or
// lets reach self, counting a gateway as holding the subnets it serves
// (so self gets the gateway of every served subnet it may reach, and a
// gateway gets every member that may reach its subnets). Deny rules are
// not read, so a member that an earlier deny shuts out entirely is still
// listed: a peer too many costs a handshake, one too few breaks a
// connection the rules allow.
//
// The relation is symmetric: b is among Peers(a) exactly when a is among
// Peers(b). Members without addresses are never peers, and self is not
// among its own. It costs about the size of the policy and of its
// answer, not of the network, so that a controller can ask it for every
// member.
func Peers(p Policy, ix *Index, self string) []string {
	si, ok := ix.byID[self]
	if !ok || len(ix.members[si].Addresses) == 0 {
		return nil
	}
	own, served := ix.holdings(si)
	mine := append(own, served...)
	c := collector{ix: ix, done: map[Selector]bool{}}
	for _, r := range p {
		if r.Action != Allow {
			continue
		}
		if ix.touches(r.From, si, mine) {
			c.add(r.To)
		}
		if ix.touches(r.To, si, mine) {
			c.add(r.From)
		}
	}
	return c.result(si)
}

// touches says whether one of sels selects an address that member m,
// which holds the prefixes mine, receives traffic for.
func (ix *Index) touches(sels []Selector, m int, mine []netip.Prefix) bool {
	for _, s := range sels {
		switch s.Kind {
		case KindTag, KindMember:
			if ix.selects(s, m) {
				return true
			}
		default:
			for _, p := range ix.prefixes(s) {
				if slices.ContainsFunc(mine, p.Overlaps) {
					return true
				}
			}
		}
	}
	return false
}

// collector gathers the members that selectors stand for, each selector
// once: a few in a slice, many in a bitmap.
type collector struct {
	ix   *Index
	done map[Selector]bool
	few  []int
	many []bool // once few grows past bitmapAt
}

func (c *collector) add(sels []Selector) {
	ix := c.ix
	for _, s := range sels {
		if c.done[s] {
			continue
		}
		c.done[s] = true
		switch s.Kind {
		case KindTag:
			for _, m := range ix.byTag[s.Name] {
				c.put(m)
			}
		case KindMember:
			if m, ok := ix.byID[s.Name]; ok {
				c.put(m)
			}
		default:
			// A member whose address is inside, and the gateway of a
			// served subnet that overlaps.
			for _, p := range ix.prefixes(s) {
				for _, e := range ix.addrsIn(p) {
					c.put(e.m)
				}
				for _, r := range ix.routes {
					if r.gw >= 0 && r.Dest.Overlaps(p) {
						c.put(r.gw)
					}
				}
			}
		}
	}
}

func (c *collector) put(m int) {
	if c.many != nil {
		c.many[m] = true
		return
	}
	c.few = append(c.few, m)
	if bitmapAt := 64 + len(c.ix.members)/16; len(c.few) > bitmapAt {
		c.many = make([]bool, len(c.ix.members))
		for _, m := range c.few {
			c.many[m] = true
		}
		c.few = nil
	}
}

// result is the node IDs gathered, in order (members are indexed in node
// ID order), without self and without members that have no address.
func (c *collector) result(self int) []string {
	var out []string
	keep := func(m int) {
		if m != self && len(c.ix.members[m].Addresses) > 0 {
			out = append(out, c.ix.members[m].NodeID)
		}
	}
	if c.many != nil {
		for m, in := range c.many {
			if in {
				keep(m)
			}
		}
		return out
	}
	slices.Sort(c.few)
	for i, m := range c.few {
		if i == 0 || m != c.few[i-1] {
			keep(m)
		}
	}
	return out
}
