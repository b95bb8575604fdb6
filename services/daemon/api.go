package daemon

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/gatenet/gate/services/agent"
	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/failover"
	"github.com/gatenet/gate/services/firewall"
	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/logring"
	"github.com/gatenet/gate/services/policy"
	"github.com/gatenet/gate/services/reconciler"
	"github.com/gatenet/gate/services/routetable"
)

// Status implements localapi.Backend.
func (d *Daemon) Status() localapi.Status {
	st := d.rec.Status()
	s := localapi.Status{
		NodeID:      d.id.NodeID(),
		Fingerprint: d.id.Pin(),
		Hostname:    d.opt.Hostname,
		Version:     d.opt.Version,
		Online:      d.agent.Online(),
		Started:     d.started,
		Firewall:    st.Firewall,
		Forward:     st.Forwarding,
	}
	ms := d.agent.Memberships()
	s.Networks = len(ms)
	for _, m := range ms {
		s.Controllers = append(s.Controllers, localapi.NetworkController{Network: m.ID, Now: m.Now(), Addresses: m.Controllers(), Online: m.Online})
	}
	if st.Err != nil {
		s.LastError = st.Err.Error()
	}
	if st.Firewall == "strict" { // the reconciler's word for what it enforces
		s.InputOpen = d.inputOpen()
	}
	s.Pending = d.intent.Pending()
	s.Config = d.intent.Status()
	return s
}

// Networks implements localapi.Backend.
func (d *Daemon) Networks() []localapi.Network {
	st := d.rec.Status()
	ms := d.agent.Memberships()
	enforced := func(m agent.Membership) bool {
		return m.Config != nil && m.Config.Status == control.StatusOK && m.Config.Policy != nil
	}
	// Every watcher's snapshot comes here: read the kernel's counters
	// only when some network has rules to count.
	var counts map[string][]firewall.RuleCount
	if slices.ContainsFunc(ms, enforced) {
		var err error
		if counts, err = d.rec.PolicyCounters(); err != nil {
			counts = nil // shown as zeros; the reconciler reports a broken table itself
		}
	}
	fo := d.fo.Status()
	var out []localapi.Network
	for _, m := range ms {
		n := d.network(m, st.Networks)
		if enforced(m) {
			n.Rules = policyRules(m.Config.Policy, m.Gateway != nil, counts[m.Iface])
		}
		n.Failover = routeFailover(fo, m.ID)
		out = append(out, n)
	}
	return out
}

// policyRules lists the rules a node enforces, as the firewall applies
// them (services/firewall): on input, the input rules and then the
// forward ones (a gateway's own address in a subnet it serves), and, on a
// gateway, the forward rules on what it forwards; each chain ends in the
// default deny (rule 0). What each matched comes from counts.
func policyRules(rs *policy.Ruleset, gateway bool, counts []firewall.RuleCount) []localapi.PolicyRule {
	type key struct {
		chain string
		rule  int
	}
	got := map[key]firewall.RuleCount{}
	for _, c := range counts {
		got[key{c.Chain, c.Rule}] = c
	}
	var out []localapi.PolicyRule
	chain := func(name string, lists ...[]policy.CompiledRule) {
		at := map[int]int{} // rule number -> index in out
		for _, l := range lists {
			for _, r := range l {
				_, text, _ := strings.Cut(r.String(), " ") // without its number
				if i, ok := at[r.Rule]; ok {
					out[i].Text += "; " + text
					continue
				}
				c := got[key{name, r.Rule}]
				at[r.Rule] = len(out)
				out = append(out, localapi.PolicyRule{Chain: name, Rule: r.Rule, Allow: r.Allow, Text: text, Packets: c.Packets, Bytes: c.Bytes})
			}
		}
		// In rule order: the lists' destinations do not overlap, so
		// that is the order that decides.
		first := len(out) - len(at)
		slices.SortStableFunc(out[first:], func(a, b localapi.PolicyRule) int { return cmp.Compare(a.Rule, b.Rule) })
		c := got[key{name, 0}]
		out = append(out, localapi.PolicyRule{Chain: name, Rule: 0, Text: "anything else: denied", Packets: c.Packets, Bytes: c.Bytes})
	}
	chain("input", rs.Input, rs.Forward)
	if gateway {
		chain("forward", rs.Forward)
	}
	return out
}

func (d *Daemon) network(m agent.Membership, kernel map[string]reconciler.NetworkStatus) localapi.Network {
	n := localapi.Network{
		ID:            m.ID,
		Status:        m.Status(),
		Controller:    m.Controller,
		Controllers:   m.Controllers(),
		ControllerNow: m.Now(),
		ListenPort:    m.ListenPort,
		Gateway:       m.Gateway,
		Online:        m.Online,
		LastSync:      m.LastSync,
		Error:         m.Error,
	}
	c := m.Config
	if c == nil {
		return n
	}
	n.Name = c.Name
	if c.Status != control.StatusOK {
		return n
	}
	n.Interface, n.MTU, n.Addresses = m.Iface, c.MTU, c.Addresses
	for _, r := range c.Routes {
		if !r.ServedBy(c.Addresses) {
			n.Routes = append(n.Routes, r)
		}
	}
	ks := kernel[m.ID]
	if ks.Err != nil && n.Error == "" {
		n.Error = ks.Err.Error()
	}
	for _, p := range c.Peers {
		lp := localapi.Peer{NodeID: p.NodeID, Hostname: p.Hostname, PublicKey: p.PublicKey, AllowedIPs: p.AllowedIPs}
		if ks.Device != nil {
			for _, dp := range ks.Device.Peers {
				if dp.PublicKey.String() == p.PublicKey {
					lp.Endpoint, lp.LastHandshake, lp.RxBytes, lp.TxBytes = dp.Endpoint, dp.LastHandshake, dp.RxBytes, dp.TxBytes
				}
			}
		}
		n.Peers = append(n.Peers, lp)
	}
	return n
}

// Watch implements localapi.Backend.
func (d *Daemon) Watch(ctx context.Context, since uint64) localapi.Snapshot {
	for {
		d.mu.Lock()
		rev, ch := d.rev, d.revCh
		d.mu.Unlock()
		if rev > since || ctx.Err() != nil {
			return localapi.Snapshot{Rev: rev, Status: d.Status(), Networks: d.Networks(), Interfaces: d.Interfaces()}
		}
		select {
		case <-ch:
		case <-ctx.Done():
		}
	}
}

// Logs implements localapi.Backend.
func (d *Daemon) Logs(ctx context.Context, since uint64) []logring.Line {
	if ls := d.opt.Log.Since(since); len(ls) > 0 {
		return ls
	}
	return d.opt.Log.Wait(ctx, since)
}

// Join implements localapi.Backend.
func (d *Daemon) Join(ctx context.Context, r localapi.JoinRequest) (localapi.Network, error) {
	m, err := d.agent.Join(ctx, r)
	if err != nil {
		return localapi.Network{}, err
	}
	// Answer once the kernel has what the controller said, so that a
	// caller who sees OK can use the network at once.
	if err := d.rec.Wait(ctx, d.update()); err != nil && ctx.Err() == nil {
		d.opt.Logf("network %s: %v", m.ID, err)
	}
	return d.network(d.agent.Membership(m.ID), d.rec.Status().Networks), nil
}

// Leave implements localapi.Backend.
func (d *Daemon) Leave(ctx context.Context, network string) error {
	if err := d.agent.Leave(ctx, network); err != nil {
		return err
	}
	// Answer once the interface, routes and rules are gone.
	return d.rec.Wait(ctx, d.update())
}

// Interfaces implements localapi.InterfacesBackend.
func (d *Daemon) Interfaces() []localapi.Interface {
	if d.nics == nil {
		return nil
	}
	return d.nics.Status(d.rec.Status())
}

// failoverNetworks is what the failover service needs of the networks
// this node is in.
func failoverNetworks(ms []agent.Membership) []failover.Network {
	var out []failover.Network
	for _, m := range ms {
		c := m.Config
		if c == nil || c.Status != control.StatusOK || !slices.ContainsFunc(c.Routes, func(r control.Route) bool { return len(r.Backups) > 0 }) {
			continue
		}
		n := failover.Network{ID: m.ID, Iface: m.Iface, Own: c.Addresses, Routes: c.Routes, CIDR: c.CIDR}
		if g := m.Gateway; g != nil {
			n.Serve, n.LAN, n.RouteTables, n.NATInstance = g.Serve, g.LAN, g.AWSRouteTables, g.MasqueradeInternet
		}
		out = append(out, n)
	}
	return out
}

// pointAWS points AWS route tables at this instance (services/routetable)
// and sums up what it did.
func pointAWS(ctx context.Context, tables []string, dests []netip.Prefix) (string, error) {
	res, err := (&routetable.AWS{Tables: tables}).Point(ctx, dests)
	if err != nil {
		return "", err
	}
	var done, failed []string
	for _, r := range res {
		if r.Err != nil {
			failed = append(failed, r.Err.Error())
		} else {
			done = append(done, r.Table+" "+r.Dest.String()+" "+r.Action)
		}
	}
	if len(failed) > 0 {
		return "", fmt.Errorf("%d of %d routes failed: %s", len(failed), len(res), strings.Join(failed, "; "))
	}
	return strings.Join(done, ", "), nil
}

// routeFailover is each route with several gateways of network id as
// the failover service sees it.
func routeFailover(sts []failover.Status, id string) []localapi.RouteFailover {
	var out []localapi.RouteFailover
	for _, st := range sts {
		if st.Network != id {
			continue
		}
		rf := localapi.RouteFailover{Dest: st.Route.Dest, Serving: st.Serving, Active: st.Choice.Active, Since: st.Choice.Since, Reason: st.Choice.Reason,
			RouteTables: st.RouteTables}
		if st.Serving {
			rf.State = st.State.String()
			rf.ActiveHere = st.Choice.Active == st.Self
		}
		for _, gw := range st.Route.Gateways() {
			h := st.Seen[gw.String()]
			rf.Gateways = append(rf.Gateways, localapi.GatewayHealth{Addr: gw, Up: h.Up, Since: h.Since, Reason: h.Reason})
		}
		out = append(out, rf)
	}
	return out
}
