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
	if !ok || len(si.Addresses) == 0 {
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
func (ix *Index) touches(sels []Selector, m *member, mine []netip.Prefix) bool {
	for _, s := range sels {
		switch s.Kind {
		case KindTag, KindMember:
			if selects(s, m) {
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
// once: a few in a slice, many in a bitmap (by slot).
type collector struct {
	ix   *Index
	done map[Selector]bool
	few  []*member
	many []bool // once few grows past bitmapAt
	n    int    // how many are in many
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
			for _, m := range ix.tagged(s.Name) {
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
				for _, m := range ix.addrsIn(p) {
					c.put(m)
				}
				for _, r := range ix.routes {
					if r.gw != nil && r.Dest.Overlaps(p) {
						c.put(r.gw)
					}
				}
			}
		}
	}
}

func (c *collector) put(m *member) {
	if c.many != nil {
		if !c.many[m.slot] {
			c.many[m.slot] = true
			c.n++
		}
		return
	}
	c.few = append(c.few, m)
	if bitmapAt := 64 + len(c.ix.byID)/16; len(c.few) > bitmapAt {
		c.many = make([]bool, len(c.ix.slots))
		for _, m := range c.few {
			c.put(m)
		}
		c.few = nil
	}
}

// result is the node IDs gathered, in order, without self and without
// members that have no address.
func (c *collector) result(self *member) []string {
	var out []string
	keep := func(m *member) {
		if m != self && len(m.Addresses) > 0 {
			out = append(out, m.NodeID)
		}
	}
	if c.many != nil {
		out = make([]string, 0, c.n)
		for m := range c.ix.ids.all() {
			if c.many[m.slot] {
				keep(m)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	slices.SortFunc(c.few, byNodeID)
	for i, m := range c.few {
		if i == 0 || m != c.few[i-1] {
			keep(m)
		}
	}
	return out
}
