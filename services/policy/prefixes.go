package policy

import (
	"fmt"
	"net/netip"
	"slices"
)

// merge sorts ps in place and returns the fewest prefixes that cover the
// same addresses, in order, none overlapping: prefixes inside another are
// dropped and two halves of one prefix become that prefix. The result
// shares ps's storage.
func merge(ps []netip.Prefix) []netip.Prefix {
	slices.SortFunc(ps, netip.Prefix.Compare)
	out := ps[:0]
	for _, p := range ps {
		if n := len(out); n > 0 && within(p, out[n-1]) {
			continue
		}
		out = append(out, p)
		for n := len(out); n >= 2; n = len(out) {
			a, b := out[n-2], out[n-1]
			if a.Bits() != b.Bits() || a.Bits() == 0 || a.Addr().BitLen() != b.Addr().BitLen() {
				break
			}
			pa, _ := a.Addr().Prefix(a.Bits() - 1)
			pb, _ := b.Addr().Prefix(b.Bits() - 1)
			if pa != pb {
				break
			}
			out = append(out[:n-2], pa)
		}
	}
	return out
}

// within says whether p lies inside q.
func within(p, q netip.Prefix) bool {
	return q.Bits() <= p.Bits() && q.Contains(p.Addr())
}

// intersect is the addresses that a and b share, as a prefix: the longer
// of the two when they overlap.
func intersect(a, b netip.Prefix) (netip.Prefix, bool) {
	if !a.Overlaps(b) {
		return netip.Prefix{}, false
	}
	if a.Bits() >= b.Bits() {
		return a, true
	}
	return b, true
}

// hostPrefix is the prefix of address a alone.
func hostPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

// checkMerged says whether ps is as merge leaves a list: valid canonical
// prefixes, in order, none overlapping the next. It does not insist that
// halves be joined: that changes no address.
func checkMerged(ps []netip.Prefix) error {
	for i, p := range ps {
		if err := checkPrefix(p); err != nil {
			return err
		}
		if i > 0 && (ps[i-1].Compare(p) >= 0 || ps[i-1].Overlaps(p)) {
			return fmt.Errorf("%s after %s: want prefixes in order, none overlapping", p, ps[i-1])
		}
	}
	return nil
}
