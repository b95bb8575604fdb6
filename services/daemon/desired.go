package daemon

import (
	"net/netip"
	"slices"
	"time"

	"github.com/gatenet/gate/services/agent"
	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/netcfg"
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

// desired turns memberships into the reconciler's desired state. It is pure:
// the endpoint picks come in as a function.
func desired(ms []agent.Membership, key tunnel.Key, mode string, allowTCP []uint16, pick func(peer control.Peer) netip.AddrPort) reconciler.Desired {
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
		}
		own := func(a netip.Addr) bool {
			return slices.ContainsFunc(c.Addresses, func(p netip.Prefix) bool { return p.Addr() == a })
		}
		for _, r := range c.Routes {
			if own(r.Via) {
				continue // this node is the next hop: it serves the route, it does not route to it
			}
			n.Routes = append(n.Routes, netcfg.Route{Dst: r.Dest, Via: r.Via, Metric: RouteMetric})
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
				AllowedIPs: p.AllowedIPs,
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
	return d
}

// picker chooses which of a peer's endpoints to use. The controller lists
// them best first (the address it saw the peer come from, then what the
// peer reported); when a peer stays silent on one, the next is tried.
// WireGuard itself roams to wherever an authenticated packet comes from, so
// this only matters until the first handshake.
type picker struct {
	now   func() time.Time
	peers map[string]*pick // by public key
}

type pick struct {
	idx   int
	since time.Time
}

// How long a candidate endpoint gets before the next one is tried.
const endpointTrial = 12 * time.Second

func newPicker() *picker { return &picker{now: time.Now, peers: map[string]*pick{}} }

func (p *picker) endpoint(peer control.Peer) netip.AddrPort {
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
func (p *picker) advance(peers []control.Peer, handshake func(pubkey string) time.Time) bool {
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
