package controller

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/policy"
)

// This file is pure: it turns database records into what the API shows.

// memberStatus is the status a member reports for its network.
func memberStatus(m memberRec) string {
	switch {
	case m.State == control.StateDenied:
		return control.StatusDenied
	case m.State == control.StateAllowed && m.Address.IsValid():
		return control.StatusOK
	default:
		// Pending, or allowed while the pool had no address to give.
		return control.StatusRequesting
	}
}

// inService reports whether m takes part in the network: it is allowed and
// has an address. Only such members are anyone's peers.
func inService(m memberRec) bool { return memberStatus(m) == control.StatusOK }

// buildMemberConfig returns the configuration of member self of network n,
// given the network's routes and all its members (self included). It is
// the definition the controller's cache (view.go) must agree with; the
// tests hold the two together.
func buildMemberConfig(n networkRec, routes []control.Route, members []memberRec, self memberRec) (control.MemberConfig, error) {
	mc := control.MemberConfig{
		NetworkID: n.ID,
		Name:      n.Name,
		Status:    memberStatus(self),
		NodeID:    self.NodeID,
		CIDR:      n.CIDR,
		MTU:       n.MTU,
		Addresses: []netip.Prefix{},
		Routes:    []control.Route{},
		Peers:     []control.Peer{},
		Revision:  n.Revision,
	}
	if mc.Status != control.StatusOK {
		return mc, nil
	}
	mc.Addresses = append(mc.Addresses, netip.PrefixFrom(self.Address, n.CIDR.Bits()))
	mc.Routes = append(mc.Routes, sortedRoutes(routes)...)
	ix, err := policy.NewIndex(policyNetwork(n, mc.Routes, members))
	if err != nil {
		return mc, err
	}
	// The peers it may reach or that may reach it, unless the rules let
	// everyone reach everyone.
	var may map[string]bool
	if !openRules(n.Rules) {
		may = peerSet(policy.Peers(n.Rules, ix, self.NodeID))
	}
	for _, m := range sortedMembers(members) {
		if m.NodeID == self.NodeID || !inService(m) || may != nil && !may[m.NodeID] {
			continue
		}
		mc.Peers = append(mc.Peers, peerOf(m, mc.Routes))
	}
	if self.BehindNAT {
		mc.Keepalive = natKeepalive
	}
	if mc.Policy, err = compileFor(n, mc.Routes, self); err != nil {
		return mc, err
	}
	return mc, nil
}

// peerOf is member m (in service) as its peers see it, given the network's
// routes: the same for every peer, which is why the controller can encode
// it once and send the bytes to all.
func peerOf(m memberRec, routes []control.Route) control.Peer {
	p := control.Peer{
		NodeID:     m.NodeID,
		Hostname:   m.Hostname,
		PublicKey:  m.PublicKey,
		Addresses:  []netip.Addr{m.Address},
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(m.Address, 32)},
		Endpoints:  peerEndpoints(m),
		Tags:       slices.Clone(m.Tags),
	}
	for _, r := range routes {
		if r.Via == m.Address {
			p.AllowedIPs = append(p.AllowedIPs, r.Dest)
		}
	}
	return p
}

// peerEndpoints lists where a member can be reached, best first: the
// address the controller saw it come from (which works through NAT), then
// what it reported, without repeats.
func peerEndpoints(m memberRec) []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(m.Endpoints)+1)
	if m.Observed.IsValid() {
		out = append(out, m.Observed)
	}
	for _, ep := range m.Endpoints {
		if !slices.Contains(out, ep) {
			out = append(out, ep)
		}
	}
	return out
}

// behindNAT reports whether the address the controller saw a member come
// from is none of the addresses it reported: then something between them
// rewrote it, and the member must keep its NAT mapping open.
func behindNAT(observed netip.AddrPort, reported []netip.AddrPort) bool {
	if !observed.IsValid() {
		return false
	}
	for _, ep := range reported {
		if ep.Addr() == observed.Addr() {
			return false
		}
	}
	return true
}

// compareAddr orders members by address, those without one last.
func compareAddr(a, b netip.Addr) int {
	switch {
	case a.IsValid() && !b.IsValid():
		return -1
	case !a.IsValid() && b.IsValid():
		return 1
	}
	return a.Compare(b)
}

func sortedMembers(ms []memberRec) []memberRec {
	ms = slices.Clone(ms)
	slices.SortFunc(ms, func(a, b memberRec) int {
		return cmp.Or(compareAddr(a.Address, b.Address), cmp.Compare(a.NodeID, b.NodeID))
	})
	return ms
}

func sortedRoutes(rs []control.Route) []control.Route {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b control.Route) int {
		return cmp.Or(a.Dest.Addr().Compare(b.Dest.Addr()), cmp.Compare(a.Dest.Bits(), b.Dest.Bits()))
	})
	return rs
}

// memberView is a member as the admin API shows it.
func memberView(m memberRec) control.Member {
	v := control.Member{
		NetworkID:   m.NetworkID,
		NodeID:      m.NodeID,
		Fingerprint: m.Identity,
		Hostname:    m.Hostname,
		PublicKey:   m.PublicKey,
		Endpoints:   slices.Clone(m.Endpoints),
		State:       m.State,
		Addresses:   []netip.Addr{},
		BehindNAT:   m.BehindNAT,
		LastSeen:    m.LastSeen.UTC(),
		Version:     m.Version,
		Created:     m.Created.UTC(),
		ListenPort:  m.ListenPort,
		Tags:        slices.Clone(m.Tags),
	}
	if v.Endpoints == nil {
		v.Endpoints = []netip.AddrPort{}
	}
	if m.Address.IsValid() {
		v.Addresses = append(v.Addresses, m.Address)
	}
	return v
}

// networkView is a network as the admin API shows it.
func networkView(n networkRec, routes []control.Route) control.Network {
	rs := sortedRoutes(routes)
	if rs == nil {
		rs = []control.Route{}
	}
	return control.Network{
		ID:           n.ID,
		Name:         n.Name,
		CIDR:         n.CIDR,
		MTU:          n.MTU,
		AutoAllow:    n.AutoAllow,
		RequireToken: n.RequireToken,
		Routes:       rs,
		Created:      n.Created.UTC(),
		Revision:     n.Revision,
		Rules:        slices.Clone(n.Rules),
	}
}

// tokenView is a token as the admin API shows it, without its secret.
func tokenView(t tokenRec) control.Token {
	return control.Token{
		ID:             t.ID,
		NetworkID:      t.NetworkID,
		Reusable:       t.Reusable,
		Allow:          t.Allow,
		Address:        t.Address,
		Expires:        t.Expires.UTC(),
		Uses:           t.Uses,
		Note:           t.Note,
		UsedBy:         t.UsedBy,
		UsedByInstance: t.UsedInstance,
		Revoked:        t.Revoked,
		Tags:           slices.Clone(t.Tags),
	}
}
