// Package desired turns what a node is a member of into the kernel state
// it calls for: one reconciler.Desired (WireGuard devices and peers,
// addresses, routes, the firewall's rules, forwarding) from the agent's
// memberships, the node's key and firewall mode, and the NICs the node
// manages. It is pure: endpoint picks come in as a function, the kernel is
// the reconciler's (services/reconciler). It is also where one network is
// kept from another (Separate) and the overlays from the NICs
// (NICsApart): what it leaves out is said in notes, never silently.
package desired

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/gatenet/gate/services/agent"
	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/failover"
	"github.com/gatenet/gate/services/netcfg"
	"github.com/gatenet/gate/services/policy"
	"github.com/gatenet/gate/services/reconciler"
	"github.com/gatenet/gate/services/tunnel"
)

// RouteMetric is the metric of managed routes, high so that a host's own
// routes win where they overlap.
const RouteMetric = 5000

// Firewall modes of `gate up`.
const (
	FirewallAuto   = "auto"   // strict when this node is a gateway, guard otherwise
	FirewallStrict = "strict" // deny input and forwarding by default
	FirewallGuard  = "guard"  // only guard what Gate owns
)

// allowedIPs is peer p's allowed IPs with the subnets of the routes in
// moved given to the gateway chosen for each (Via) and taken from any
// other peer.
func allowedIPs(p control.Peer, moved []control.Route) []netip.Prefix {
	if len(moved) == 0 {
		return p.AllowedIPs
	}
	out := slices.DeleteFunc(slices.Clone(p.AllowedIPs), func(a netip.Prefix) bool {
		return slices.ContainsFunc(moved, func(r control.Route) bool { return r.Dest == a })
	})
	for _, r := range moved {
		if slices.Contains(p.Addresses, r.Via) {
			out = append(out, r.Dest)
		}
	}
	return out
}

// filledPolicy is c's rules with their tag: and member: sets filled in
// from c's peers (policy.Ruleset.Fill says why the peers suffice); nil
// when c has no rules.
func filledPolicy(c *control.MemberConfig) *policy.Ruleset {
	if c.Policy == nil {
		return nil
	}
	peers := make([]policy.Member, 0, len(c.Peers))
	for _, p := range c.Peers {
		peers = append(peers, policy.Member{NodeID: p.NodeID, Addresses: p.Addresses, Tags: p.Tags})
	}
	rs := c.Policy.Fill(peers)
	return &rs
}

// Compute turns memberships into the reconciler's desired state. It is pure:
// the endpoint picks come in as a function, and so does the gateway each
// route with backups goes through (gateway; nil, or an invalid address:
// its Via). What it leaves out (separate) is said in notes.
func Compute(ms []agent.Membership, key tunnel.Key, mode string, allowTCP []uint16, pick func(peer control.Peer) netip.AddrPort,
	gateway func(netID string, r control.Route) netip.Addr) (reconciler.Desired, []string) {
	d := reconciler.Desired{Strict: mode == FirewallStrict, AllowTCP: allowTCP}
	for _, m := range ms {
		if m.Config == nil || m.Config.Status != control.StatusOK {
			continue
		}
		c := m.Config
		n := reconciler.Network{
			ID:         m.ID,
			Iface:      m.Iface,
			MTU:        c.MTU,
			PrivateKey: key,
			ListenPort: m.ListenPort,
			Addrs:      c.Addresses,
			Prefixes:   []netip.Prefix{c.CIDR},
			Policy:     filledPolicy(c),
		}
		// A route with backups goes through the gateway chosen for it: the
		// kernel route points there, and its subnet is in that gateway's
		// allowed IPs alone (WireGuard takes a prefix from whichever peer
		// claimed it last, so no two may).
		var moved []control.Route // with Via set to the chosen gateway
		for _, r := range c.Routes {
			if r.ServedBy(c.Addresses) {
				// This node is a gateway of the route: it serves it, it
				// does not route to it, and it answers members asking
				// whether it works from here.
				if len(r.Backups) > 0 {
					n.HealthPort = failover.Port
				}
				continue
			}
			via := r.Via
			if len(r.Backups) > 0 {
				if gateway != nil {
					if a := gateway(m.ID, r); slices.Contains(r.Gateways(), a) {
						via = a
					}
				}
				moved = append(moved, control.Route{Dest: r.Dest, Via: via})
			}
			n.Routes = append(n.Routes, netcfg.Route{Dst: r.Dest, Via: via, Metric: RouteMetric})
			n.Prefixes = append(n.Prefixes, r.Dest)
		}
		for _, p := range c.Peers {
			pk, err := tunnel.ParseKey(p.PublicKey)
			if err != nil {
				continue
			}
			n.Peers = append(n.Peers, tunnel.Peer{
				PublicKey:  pk,
				Endpoint:   pick(p),
				AllowedIPs: allowedIPs(p, moved),
				Keepalive:  c.Keepalive,
			})
		}
		if g := m.Gateway; g != nil {
			n.Gateway = &reconciler.Gateway{Serve: g.Serve, LAN: g.LAN, MasqueradeLAN: g.MasqueradeLAN, MasqueradeInternet: g.MasqueradeInternet}
			if mode == FirewallAuto {
				d.Strict = true
			}
		}
		d.Networks = append(d.Networks, n)
	}
	var notes []string
	d.Networks, notes = separate(d.Networks)
	return d, notes
}

// separate keeps each network to its own part of the address space. Each
// network's controller, and its admin, decides its routes; a node that
// joins networks of several controllers must not let one of them take
// another's traffic: a route that overlaps another network's CIDR or
// routes is left out (on both sides, for routes), and so is a route into
// the special ranges; a network whose CIDR overlaps one that sorts before
// it (by ID) is left out whole. Notes say what and why.
func separate(ns []reconciler.Network) ([]reconciler.Network, []string) {
	var notes []string
	slices.SortFunc(ns, func(a, b reconciler.Network) int { return strings.Compare(a.ID, b.ID) })
	cidr := func(n reconciler.Network) netip.Prefix { return n.Prefixes[0] }
	var kept []reconciler.Network // nil when ns is
	for _, n := range ns {
		if i := slices.IndexFunc(kept, func(o reconciler.Network) bool { return cidr(o).Overlaps(cidr(n)) }); i >= 0 {
			notes = append(notes, fmt.Sprintf("network %s left out: its CIDR %s overlaps network %s's %s", n.ID, cidr(n), kept[i].ID, cidr(kept[i])))
			continue
		}
		kept = append(kept, n)
	}
	clash := func(n reconciler.Network, dst netip.Prefix) string {
		if sp, ok := control.SpecialRange(dst); ok {
			return fmt.Sprintf("it is inside %s", sp)
		}
		for _, o := range kept {
			if o.ID == n.ID {
				continue
			}
			if dst.Overlaps(cidr(o)) {
				return fmt.Sprintf("it overlaps network %s's CIDR %s", o.ID, cidr(o))
			}
			for _, r := range o.Routes {
				if dst.Overlaps(r.Dst) {
					return fmt.Sprintf("it overlaps network %s's route %s", o.ID, r.Dst)
				}
			}
		}
		return ""
	}
	var out []reconciler.Network
	if kept != nil {
		out = make([]reconciler.Network, len(kept))
	}
	for i, n := range kept {
		n.Routes = slices.Clone(n.Routes)
		n.Prefixes = slices.Clone(n.Prefixes)
		n.Routes = slices.DeleteFunc(n.Routes, func(r netcfg.Route) bool {
			why := clash(n, r.Dst)
			if why != "" {
				notes = append(notes, fmt.Sprintf("network %s: route %s via %s left out: %s", n.ID, r.Dst, r.Via, why))
				n.Prefixes = slices.DeleteFunc(n.Prefixes, func(p netip.Prefix) bool { return p == r.Dst })
			}
			return why != ""
		})
		out[i] = n
	}
	return out, notes
}

// Picker chooses which of a peer's endpoints to use. The controller lists
// them best first (the address it saw the peer come from, then what the
// peer reported); when a peer stays silent on one, the next is tried.
// WireGuard itself roams to wherever an authenticated packet comes from, so
// this only matters until the first handshake.
type Picker struct {
	now   func() time.Time
	peers map[string]*pick // by public key
}

type pick struct {
	idx   int
	since time.Time
}

// How long a candidate endpoint gets before the next one is tried.
const endpointTrial = 12 * time.Second

func NewPicker() *Picker { return &Picker{now: time.Now, peers: map[string]*pick{}} }

func (p *Picker) Endpoint(peer control.Peer) netip.AddrPort {
	if len(peer.Endpoints) == 0 {
		return netip.AddrPort{}
	}
	s := p.peers[peer.PublicKey]
	if s == nil {
		s = &pick{since: p.now()}
		p.peers[peer.PublicKey] = s
	}
	return peer.Endpoints[s.idx%len(peer.Endpoints)]
}

// advance moves on from endpoints that got no handshake in their trial
// time. It reports whether any pick changed.
func (p *Picker) Advance(peers []control.Peer, handshake func(pubkey string) time.Time) bool {
	changed := false
	now := p.now()
	for _, peer := range peers {
		s := p.peers[peer.PublicKey]
		if s == nil || len(peer.Endpoints) < 2 {
			continue
		}
		hs := handshake(peer.PublicKey)
		if now.Sub(hs) < 3*time.Minute || now.Sub(s.since) < endpointTrial {
			continue
		}
		s.idx++
		s.since = now
		changed = true
	}
	return changed
}

// NICsApart keeps the NICs' addresses (from DHCP, or static settings) out
// of the overlays' own address space: a NIC address whose subnet overlaps
// a joined network's CIDR would give the kernel a route to some of its
// members through the NIC (the more specific one wins), and the node's
// traffic to them would leave unencrypted. A rogue DHCP server on the
// NIC's link can offer exactly that. The address is left out, with a
// note; the overlay, which the network's admin decided, keeps its place.
// Managed routes are not weighed: a NIC's own subnet inside a routed range
// is the local part of it, as everywhere.
func NICsApart(ifs []reconciler.Interface, ns []reconciler.Network) ([]reconciler.Interface, []string) {
	var notes []string
	out := make([]reconciler.Interface, 0, len(ifs))
	for _, nic := range ifs {
		nic.Addrs = slices.DeleteFunc(slices.Clone(nic.Addrs), func(a netip.Prefix) bool {
			for _, n := range ns {
				if cidr := n.Prefixes[0]; a.Masked().Overlaps(cidr) {
					notes = append(notes, fmt.Sprintf("interface %s: address %s left out: its subnet overlaps network %s's CIDR %s", nic.Name, a, n.ID, cidr))
					return true
				}
			}
			return false
		})
		out = append(out, nic)
	}
	if ifs == nil {
		return nil, notes
	}
	return out, notes
}
