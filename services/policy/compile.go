package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Ruleset is the part of a network's policy that one member enforces, as
// the receiving side, and what travels in its configuration. Input holds
// the rules for packets that arrive over the overlay addressed to the
// member's own overlay addresses, Forward those for packets that arrive
// over the overlay to be forwarded into the subnets it serves. Both
// keep the policy's order and numbers, and each rule names its
// destinations explicitly, so either list can be evaluated against any
// packet. A packet that no rule of the list matches is dropped, unless it
// is a reply to a connection that was allowed: a Ruleset without rules
// drops everything but replies.
//
// Sources that are selectors (any, members, tag:NAME, member:NODEID) are
// named sets, Sets, keyed by the selector as a rule writes it; when a
// member joins or leaves a tag, a set changes and the rules stay. As
// Compile gives it and the controller sends it, Sets holds only any and
// members; the member adds the tag: and member: sets from its peers with
// Fill before it enforces the rules.
type Ruleset struct {
	Input   []CompiledRule            `json:"input,omitempty"`
	Forward []CompiledRule            `json:"forward,omitempty"`
	Sets    map[string][]netip.Prefix `json:"sets,omitempty"`
}

// CompiledRule is one rule of the policy as one member enforces it. It
// matches a packet whose source is in one of FromSets or From, whose
// destination is in To, and whose protocol and port are one of Services
// (none: every protocol and port).
type CompiledRule struct {
	Rule     int            `json:"rule"` // its number in the policy
	Allow    bool           `json:"allow"`
	FromSets []string       `json:"from_sets,omitempty"` // keys of Ruleset.Sets
	From     []netip.Prefix `json:"from,omitempty"`      // in order, none overlapping
	To       []netip.Prefix `json:"to"`                  // in order, none overlapping
	Services []Service      `json:"services,omitempty"`
}

// Bounds that Ruleset.Check holds a received Ruleset to, past those of
// the policy itself. Compile never gives more.
const (
	maxRulePrefixes = 4096    // in one CompiledRule's To
	maxPrefixes     = 1 << 20 // in a Ruleset, sets and rules together
)

// Compile gives the rules of p that member self enforces, as Ruleset
// describes: (Input) the rules whose to can include one of self's overlay
// addresses, narrowed to those addresses, and (Forward) the rules whose
// to can include part of a subnet that self serves (a route via one of
// its addresses), narrowed to those subnets. Deny rules are kept: they
// shadow the allows below them.
//
// Compile insists on well-formed rules but not on Check: a member:
// selector naming a node that has left matches nothing, and a CIDR
// outside the network matches nothing it is sent, so that a change to the
// network never stops the other members from getting their rules.
func Compile(p Policy, ix *Index, self string) (Ruleset, error) {
	si, ok := ix.byID[self]
	if !ok {
		return Ruleset{}, fmt.Errorf("node %s is not a member of the network", quote(self))
	}
	if len(p) > MaxRules {
		return Ruleset{}, fmt.Errorf("%d rules: a policy holds at most %d", len(p), MaxRules)
	}
	own, served := ix.holdings(si)
	rs := Ruleset{Sets: map[string][]netip.Prefix{}}
	for i, r := range p {
		if err := r.checkParts(); err != nil {
			return Ruleset{}, fmt.Errorf("rule %d: %w", i+1, err)
		}
		in, fw := ix.narrow(r.To, own), ix.narrow(r.To, served)
		if len(in) == 0 && len(fw) == 0 {
			continue
		}
		cr := CompiledRule{Rule: i + 1, Allow: r.Action == Allow}
		for _, s := range r.From {
			if s.Kind == KindCIDR {
				cr.From = append(cr.From, s.Prefix)
				continue
			}
			name := s.String()
			cr.FromSets = append(cr.FromSets, name)
			if _, done := rs.Sets[name]; !done && !s.namesMembers() {
				rs.Sets[name] = ix.resolve(s)
			}
		}
		if len(cr.From) > 0 {
			cr.From = merge(cr.From)
		}
		if !slices.Contains(r.Services, Service{Proto: AnyProto}) {
			cr.Services = slices.Clone(r.Services)
		}
		if len(in) > 0 {
			c := cr
			c.To = in
			rs.Input = append(rs.Input, c)
		}
		if len(fw) > 0 {
			c := cr
			c.To = fw
			rs.Forward = append(rs.Forward, c)
		}
	}
	if len(rs.Sets) == 0 {
		rs.Sets = nil
	}
	if err := rs.Check(); err != nil {
		return Ruleset{}, fmt.Errorf("compiling for %s: %w", self, err)
	}
	return rs, nil
}

// holdings is what member m receives traffic for: its own overlay
// addresses, as host prefixes, and the subnets it serves, each merged.
func (ix *Index) holdings(m *member) (own, served []netip.Prefix) {
	for _, a := range m.Addresses {
		own = append(own, hostPrefix(a))
	}
	for _, r := range ix.routes {
		if r.gw == m {
			served = append(served, r.Dest)
		}
	}
	return merge(own), merge(served)
}

// narrow is the part of targets that sels select, merged.
func (ix *Index) narrow(sels []Selector, targets []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, t := range targets {
		for _, s := range sels {
			switch s.Kind {
			case KindAny, KindMembers, KindCIDR:
				for _, p := range ix.prefixes(s) {
					if x, ok := intersect(p, t); ok {
						out = append(out, x)
					}
				}
			case KindTag, KindMember:
				for a, m := range ix.addrsIn(t) {
					if selects(s, m) {
						out = append(out, hostPrefix(a))
					}
				}
			}
		}
	}
	return merge(out)
}

// prefixes is what a selector that does not name members stands for.
func (ix *Index) prefixes(s Selector) []netip.Prefix {
	switch s.Kind {
	case KindAny:
		return ix.anyNet
	case KindMembers:
		return []netip.Prefix{ix.cidr}
	case KindCIDR:
		return []netip.Prefix{s.Prefix}
	}
	return nil
}

// selects says whether tag: or member: selector s names member m.
func selects(s Selector, m *member) bool {
	switch s.Kind {
	case KindTag:
		return slices.Contains(m.Tags, s.Name)
	case KindMember:
		return m.NodeID == s.Name
	}
	return false
}

// resolve is the set of addresses that selector s stands for, merged;
// never nil, so that an empty set is written as [].
func (ix *Index) resolve(s Selector) []netip.Prefix {
	out := []netip.Prefix{}
	switch s.Kind {
	case KindAny, KindMembers, KindCIDR:
		out = append(out, ix.prefixes(s)...)
	case KindTag:
		ms := ix.tagged(s.Name)
		if len(ms) < 64 || len(ms) < len(ix.byAddr)/16 {
			for _, m := range ms {
				for _, a := range m.Addresses {
					out = append(out, hostPrefix(a))
				}
			}
			break
		}
		// A tag's members come in no order; when they are many, taking
		// them from the addresses in order costs less than sorting them.
		out = slices.Grow(out, len(ms))
		for e := range ix.addrs.all() {
			if slices.Contains(e.m.Tags, s.Name) {
				out = append(out, hostPrefix(e.addr))
			}
		}
	case KindMember:
		if m, ok := ix.byID[s.Name]; ok {
			for _, a := range m.Addresses {
				out = append(out, hostPrefix(a))
			}
		}
	}
	return merge(out)
}

// Fill returns rs with every tag: and member: set its rules read, made
// from members (a member's peers, as it holds them): the overlay
// addresses of the members with that tag, or of that node. A set no
// member is in is empty. Sets rs already holds under those names are
// replaced; any and members are kept as sent.
func (rs Ruleset) Fill(members []Member) Ruleset {
	out := rs
	out.Sets = make(map[string][]netip.Prefix, len(rs.Sets))
	for name, set := range rs.Sets {
		out.Sets[name] = set
	}
	tags, nodes := map[string][]netip.Prefix{}, map[string][]netip.Prefix{}
	for _, list := range [][]CompiledRule{rs.Input, rs.Forward} {
		for _, r := range list {
			for _, name := range r.FromSets {
				s, err := ParseSelector(name)
				if err != nil || !s.namesMembers() {
					continue
				}
				if s.Kind == KindTag {
					tags[s.Name] = []netip.Prefix{}
				} else {
					nodes[s.Name] = []netip.Prefix{}
				}
			}
		}
	}
	if len(tags)+len(nodes) == 0 {
		return rs
	}
	for _, m := range members {
		var own []netip.Prefix
		for _, a := range m.Addresses {
			own = append(own, hostPrefix(a.Unmap()))
		}
		if set, ok := nodes[m.NodeID]; ok {
			nodes[m.NodeID] = append(set, own...)
		}
		for _, t := range m.Tags {
			if set, ok := tags[t]; ok {
				tags[t] = append(set, own...)
			}
		}
	}
	for name, set := range tags {
		out.Sets["tag:"+name] = merge(set)
	}
	for node, set := range nodes {
		out.Sets["member:"+node] = merge(set)
	}
	return out
}

// namesMembers reports whether s stands for members by name (tag:,
// member:), whose addresses a member fills in from its peers.
func (s Selector) namesMembers() bool { return s.Kind == KindTag || s.Kind == KindMember }

// Check says whether rs is fit to receive: what a member runs on the
// Ruleset it receives. It holds rs to the bounds of a policy (at most
// MaxRules rules a list, MaxItems sources and services a rule), numbers
// that rise through each list, prefixes that are valid, canonical, in
// order and not overlapping, set names as a rule writes them, and
// sources any and members that name only sets rs holds (tag: and member:
// sets are filled in by the member: Fill, then CheckFilled).
func (rs Ruleset) Check() error { return rs.check(false) }

// CheckFilled is Check, and that every set a rule reads is there: what
// a member runs before it enforces a Ruleset, after Fill.
func (rs Ruleset) CheckFilled() error { return rs.check(true) }

func (rs Ruleset) check(filled bool) error {
	if len(rs.Sets) > MaxRules*MaxItems {
		return fmt.Errorf("%d sets: at most %d", len(rs.Sets), MaxRules*MaxItems)
	}
	total := 0
	setNames := make([]string, 0, len(rs.Sets))
	for name := range rs.Sets {
		setNames = append(setNames, name)
	}
	sort.Strings(setNames)
	for _, name := range setNames {
		if s, err := ParseSelector(name); err != nil || s.Kind == KindCIDR || s.String() != name {
			return fmt.Errorf("set %s: want any, members, tag:NAME or member:NODEID", quote(name))
		}
		set := rs.Sets[name]
		if total += len(set); total > maxPrefixes {
			return fmt.Errorf("more than %d prefixes", maxPrefixes)
		}
		if err := checkMerged(set); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	for _, l := range []struct {
		name  string
		rules []CompiledRule
	}{{"input", rs.Input}, {"forward", rs.Forward}} {
		if len(l.rules) > MaxRules {
			return fmt.Errorf("%s: %d rules, at most %d", l.name, len(l.rules), MaxRules)
		}
		prev := 0
		for _, r := range l.rules {
			if r.Rule <= prev || r.Rule > MaxRules {
				return fmt.Errorf("%s: rule %d after rule %d: want numbers rising from 1 to at most %d", l.name, r.Rule, prev, MaxRules)
			}
			prev = r.Rule
			if err := r.check(rs.Sets, filled); err != nil {
				return fmt.Errorf("%s: rule %d: %w", l.name, r.Rule, err)
			}
			if total += len(r.From) + len(r.To); total > maxPrefixes {
				return fmt.Errorf("more than %d prefixes", maxPrefixes)
			}
		}
	}
	return nil
}

// check says what is wrong with one received rule, given the sets
// (filled: tag: and member: sets too).
func (r CompiledRule) check(sets map[string][]netip.Prefix, filled bool) error {
	if n := len(r.FromSets) + len(r.From); n == 0 || n > MaxItems {
		return fmt.Errorf("%d sources: want 1 to %d", n, MaxItems)
	}
	for _, name := range r.FromSets {
		s, err := ParseSelector(name)
		if err != nil || s.Kind == KindCIDR || s.String() != name {
			return fmt.Errorf("source set %s: want any, members, tag:NAME or member:NODEID", quote(name))
		}
		if _, ok := sets[name]; !ok && (filled || !s.namesMembers()) {
			return fmt.Errorf("source set %s is not among the sets", quote(name))
		}
	}
	if err := checkMerged(r.From); err != nil {
		return fmt.Errorf("from: %w", err)
	}
	if len(r.To) == 0 || len(r.To) > maxRulePrefixes {
		return fmt.Errorf("%d destinations: want 1 to %d", len(r.To), maxRulePrefixes)
	}
	if err := checkMerged(r.To); err != nil {
		return fmt.Errorf("to: %w", err)
	}
	if len(r.Services) > MaxItems {
		return fmt.Errorf("%d services: at most %d", len(r.Services), MaxItems)
	}
	for _, s := range r.Services {
		if err := s.check(); err != nil {
			return err
		}
	}
	return nil
}

// String renders r as a line for logs and status, in the words of a rule:
// "3 allow from tag:web to 10.99.0.5 on tcp/5432".
func (r CompiledRule) String() string {
	b := strconv.AppendInt(nil, int64(r.Rule), 10)
	if r.Allow {
		b = append(b, " allow from "...)
	} else {
		b = append(b, " deny from "...)
	}
	b = append(b, strings.Join(r.FromSets, ",")...)
	if len(r.FromSets) > 0 && len(r.From) > 0 {
		b = append(b, ',')
	}
	cidr := func(p netip.Prefix, b []byte) []byte { return Selector{Kind: KindCIDR, Prefix: p}.appendText(b) }
	b = appendList(b, r.From, cidr)
	b = append(b, " to "...)
	b = appendList(b, r.To, cidr)
	if len(r.Services) > 0 {
		b = append(b, " on "...)
		b = appendList(b, r.Services, Service.appendText)
	}
	return string(b)
}
