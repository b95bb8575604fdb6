package main

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/gatenet/gate/services/control"
)

// any is the wildcard of a field whose value an uncertain write would have
// chosen (an address the controller picks, a token's ID): it matches any
// value.
const anyValue = "*"

// netState is one network as the admin API shows it, reduced to what a
// write sets. Members are keyed by node ID, tokens by their note (unique
// per token, set by the driver), routes by destination.
type netState struct {
	ID        string
	Name      string
	CIDR      string
	AutoAllow bool
	Routes    map[string]string   // dest -> via
	Members   map[string]memState // node -> state
	Tokens    map[string]tokState // note -> token
}

type memState struct {
	State string
	Addr  string // "" none
}

type tokState struct {
	ID       string
	Allow    bool
	Reusable bool
	Uses     int
}

func (n *netState) clone() *netState {
	c := *n
	c.Routes = maps.Clone(n.Routes)
	c.Members = maps.Clone(n.Members)
	c.Tokens = maps.Clone(n.Tokens)
	return &c
}

// world is every network, by name (names are unique: the driver makes
// them so).
type world map[string]*netState

func (w world) clone() world {
	c := world{}
	for k, v := range w {
		c[k] = v.clone()
	}
	return c
}

// only is the part of w whose names start with prefix (one worker's).
func (w world) only(prefix string) world {
	c := world{}
	for k, v := range w {
		if strings.HasPrefix(k, prefix) {
			c[k] = v
		}
	}
	return c
}

func match(want, got string) bool { return want == anyValue || want == got }

// diff lists how got differs from want (want may hold wildcards); empty
// when they match.
func diff(want, got world) []string {
	var out []string
	for _, name := range sortedKeys(want) {
		w, g := want[name], got[name]
		if g == nil {
			out = append(out, fmt.Sprintf("network %s (%s) is missing", name, w.ID))
			continue
		}
		if !match(w.ID, g.ID) || w.CIDR != g.CIDR || w.AutoAllow != g.AutoAllow {
			out = append(out, fmt.Sprintf("network %s: want id %s cidr %s auto %v, got %s %s %v", name, w.ID, w.CIDR, w.AutoAllow, g.ID, g.CIDR, g.AutoAllow))
		}
		for _, d := range sortedKeys(w.Routes) {
			if g.Routes[d] != w.Routes[d] {
				out = append(out, fmt.Sprintf("network %s: route %s via %s is missing (got %q)", name, d, w.Routes[d], g.Routes[d]))
			}
		}
		for _, d := range sortedKeys(g.Routes) {
			if _, ok := w.Routes[d]; !ok {
				out = append(out, fmt.Sprintf("network %s: route %s via %s should not be there", name, d, g.Routes[d]))
			}
		}
		for _, node := range sortedKeys(w.Members) {
			wm, ok := w.Members[node]
			gm, gok := g.Members[node]
			if !gok {
				out = append(out, fmt.Sprintf("network %s: member %s (%s %s) is missing", name, node, wm.State, wm.Addr))
			} else if ok && (wm.State != gm.State || !match(wm.Addr, gm.Addr)) {
				out = append(out, fmt.Sprintf("network %s: member %s: want %s %q, got %s %q", name, node, wm.State, wm.Addr, gm.State, gm.Addr))
			}
		}
		for _, node := range sortedKeys(g.Members) {
			if _, ok := w.Members[node]; !ok {
				out = append(out, fmt.Sprintf("network %s: member %s should not be there (it is %s)", name, node, g.Members[node].State))
			}
		}
		for _, note := range sortedKeys(w.Tokens) {
			wt := w.Tokens[note]
			gt, ok := g.Tokens[note]
			if !ok {
				out = append(out, fmt.Sprintf("network %s: token %s (%s) is missing", name, note, wt.ID))
			} else if !match(wt.ID, gt.ID) || wt.Allow != gt.Allow || wt.Reusable != gt.Reusable || wt.Uses != gt.Uses {
				out = append(out, fmt.Sprintf("network %s: token %s: want %+v, got %+v", name, note, wt, gt))
			}
		}
		for _, note := range sortedKeys(g.Tokens) {
			if _, ok := w.Tokens[note]; !ok {
				out = append(out, fmt.Sprintf("network %s: token %s should not be there", name, note))
			}
		}
	}
	for _, name := range sortedKeys(got) {
		if want[name] == nil {
			out = append(out, fmt.Sprintf("network %s (%s) should not be there", name, got[name].ID))
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	ks := slices.Collect(maps.Keys(m))
	sort.Strings(ks)
	return ks
}

// snapshot reads everything through the admin API and checks what must
// hold whatever was written: every listed network answers the same on its
// own, member addresses are inside the network and unique in it, networks
// do not overlap, routes go via an address inside the network.
func snapshot(ctx context.Context, admin *control.Client) (world, []string, error) {
	ns, err := admin.Networks(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("listing networks: %w", err)
	}
	w := world{}
	var bad []string
	var cidrs []netip.Prefix
	for _, n := range ns {
		one, err := admin.Network(ctx, n.ID)
		if err != nil {
			return nil, nil, fmt.Errorf("network %s: %w", n.ID, err)
		}
		if one.ID != n.ID || one.Name != n.Name || one.CIDR != n.CIDR || len(one.Routes) != len(n.Routes) {
			bad = append(bad, fmt.Sprintf("network %s: listed as %+v, shown as %+v", n.ID, n, one))
		}
		for _, c := range cidrs {
			if c.Overlaps(n.CIDR) {
				bad = append(bad, fmt.Sprintf("network %s: CIDR %s overlaps %s", n.ID, n.CIDR, c))
			}
		}
		cidrs = append(cidrs, n.CIDR)
		if w[n.Name] != nil {
			bad = append(bad, fmt.Sprintf("two networks named %s", n.Name))
		}
		s := &netState{ID: n.ID, Name: n.Name, CIDR: n.CIDR.String(), AutoAllow: n.AutoAllow,
			Routes: map[string]string{}, Members: map[string]memState{}, Tokens: map[string]tokState{}}
		for _, r := range n.Routes {
			s.Routes[r.Dest.String()] = r.Via.String()
			if !n.CIDR.Contains(r.Via) {
				bad = append(bad, fmt.Sprintf("network %s: route %s via %s outside %s", n.ID, r.Dest, r.Via, n.CIDR))
			}
		}
		ms, err := admin.Members(ctx, n.ID)
		if err != nil {
			return nil, nil, fmt.Errorf("members of %s: %w", n.ID, err)
		}
		used := map[netip.Addr]string{}
		for _, m := range ms {
			if _, dup := s.Members[m.NodeID]; dup {
				bad = append(bad, fmt.Sprintf("network %s: member %s listed twice", n.ID, m.NodeID))
			}
			st := memState{State: m.State}
			if len(m.Addresses) > 1 {
				bad = append(bad, fmt.Sprintf("network %s: member %s has %d addresses", n.ID, m.NodeID, len(m.Addresses)))
			}
			for _, a := range m.Addresses {
				st.Addr = a.String()
				if !n.CIDR.Contains(a) {
					bad = append(bad, fmt.Sprintf("network %s: member %s has %s, outside %s", n.ID, m.NodeID, a, n.CIDR))
				}
				if other, dup := used[a]; dup {
					bad = append(bad, fmt.Sprintf("network %s: address %s held by %s and %s", n.ID, a, other, m.NodeID))
				}
				used[a] = m.NodeID
			}
			s.Members[m.NodeID] = st
		}
		ts, err := admin.Tokens(ctx, n.ID)
		if err != nil {
			return nil, nil, fmt.Errorf("tokens of %s: %w", n.ID, err)
		}
		for _, t := range ts {
			if t.JoinString != "" {
				bad = append(bad, fmt.Sprintf("network %s: token %s listed with its secret", n.ID, t.ID))
			}
			s.Tokens[t.Note] = tokState{ID: t.ID, Allow: t.Allow, Reusable: t.Reusable, Uses: t.Uses}
		}
		w[n.Name] = s
	}
	return w, bad, nil
}
