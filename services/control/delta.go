package control

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
)

// ApplyDelta returns the full configuration that delta d gives when
// applied to base, the full configuration at revision d.Since: d's own
// fields, and base's peers without those d removes or replaces, with d's
// added or changed peers, in the controller's order (by address, then node
// ID). A full d is returned as it is. It fails, changing nothing, when base
// is not the configuration d applies to; the member then asks for a full
// configuration.
func ApplyDelta(base, d MemberConfig) (MemberConfig, error) {
	if !d.Delta {
		return d, nil
	}
	switch {
	case base.Delta:
		return MemberConfig{}, fmt.Errorf("delta for network %s: the base is itself a delta", d.NetworkID)
	case base.NetworkID != d.NetworkID || base.NodeID != d.NodeID:
		return MemberConfig{}, fmt.Errorf("delta for network %s node %s does not apply to network %s node %s",
			d.NetworkID, d.NodeID, base.NetworkID, base.NodeID)
	case base.Revision != d.Since:
		return MemberConfig{}, fmt.Errorf("delta for network %s is against revision %d; this node holds revision %d",
			d.NetworkID, d.Since, base.Revision)
	}
	out := d
	out.Delta, out.Since, out.RemovedPeers = false, 0, nil
	if d.Policy == nil {
		out.Policy = base.Policy // unchanged since d.Since
	}
	gone := make(map[string]bool, len(d.RemovedPeers)+len(d.Peers))
	for _, id := range d.RemovedPeers {
		gone[id] = true
	}
	for _, p := range d.Peers {
		gone[p.NodeID] = true
	}
	out.Peers = make([]Peer, 0, len(base.Peers)+len(d.Peers))
	for _, p := range base.Peers {
		if !gone[p.NodeID] {
			out.Peers = append(out.Peers, p)
		}
	}
	out.Peers = append(out.Peers, d.Peers...)
	SortPeers(out.Peers)
	return out, nil
}

// SortPeers puts peers in the order the controller lists them: by their
// first address (those without one last), then by node ID.
func SortPeers(ps []Peer) {
	first := func(p Peer) netip.Addr {
		if len(p.Addresses) == 0 {
			return netip.Addr{}
		}
		return p.Addresses[0]
	}
	slices.SortStableFunc(ps, func(a, b Peer) int {
		x, y := first(a), first(b)
		switch {
		case x.IsValid() && !y.IsValid():
			return -1
		case !x.IsValid() && y.IsValid():
			return 1
		}
		return cmp.Or(x.Compare(y), cmp.Compare(a.NodeID, b.NodeID))
	})
}
