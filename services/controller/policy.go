package controller

// Policy on the controller: each network's rules (services/policy), the
// tags on its members, and for every member the rules it enforces,
// compiled from them and sent with its configuration.
//
// What a member enforces depends only on the rules, the routes and the
// member itself: it is compiled against those (policy.Index of one
// member), at the cost of the routes. The sets of tags and members its
// rules read are not sent: the member fills them in from its peers
// (policy.Ruleset.Fill), whose entries carry their tags, so a member
// joining or changing tags costs the others one peer entry, as it did
// before policy, and a rule change sends every member only its rules.
// Who is whose peer under rules that are not open (policy.Peers) does
// read the whole network: the view keeps its index up to date in place
// (netView.pix).

import (
	"context"
	"net/netip"
	"slices"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/names"
	"github.com/gatenet/gate/services/policy"
)

// openRules reports whether some rule lets every member reach every
// other (allow from any or members to any or members, on any service):
// then every member is every member's peer, as before rules existed, and
// the shared peer list serves them all.
func openRules(p policy.Policy) bool {
	wide := func(sels []policy.Selector) bool {
		return slices.ContainsFunc(sels, func(s policy.Selector) bool {
			return s.Kind == policy.KindAny || s.Kind == policy.KindMembers
		})
	}
	for _, r := range p {
		if r.Action == policy.Allow && wide(r.From) && wide(r.To) {
			return true
		}
	}
	return false
}

// peerSet is node IDs as a set.
func peerSet(ids []string) map[string]bool {
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out
}

// policyMember is m as the rules see it.
func policyMember(m memberRec) policy.Member {
	return policy.Member{NodeID: m.NodeID, Addresses: []netip.Addr{m.Address}, Tags: m.Tags}
}

// policyRoutes is routes as the rules see them: each gateway of a route
// serves its subnet, so that a backup enforces the rules on what it
// forwards before it is ever used.
func policyRoutes(routes []control.Route) []policy.Route {
	out := make([]policy.Route, 0, len(routes))
	for _, r := range routes {
		for _, gw := range r.Gateways() {
			out = append(out, policy.Route{Dest: r.Dest, Via: gw})
		}
	}
	return out
}

// policyNetwork is a network as the rules see it: its members in service.
func policyNetwork(n networkRec, routes []control.Route, members []memberRec) policy.Network {
	pn := policy.Network{CIDR: n.CIDR, Routes: policyRoutes(routes)}
	for _, m := range members {
		if inService(m) {
			pn.Members = append(pn.Members, policyMember(m))
		}
	}
	return pn
}

// compileFor compiles n's rules for member self (in service). What it
// enforces depends only on itself and the routes: the sets of tags and
// members it fills in from its peers (policy.Ruleset.Fill).
func compileFor(n networkRec, routes []control.Route, self memberRec) (*policy.Ruleset, error) {
	ix, err := policy.NewIndex(policyNetwork(n, routes, []memberRec{self}))
	if err != nil {
		return nil, err
	}
	rs, err := policy.Compile(n.Rules, ix, self.NodeID)
	if err != nil {
		return nil, err
	}
	return &rs, nil
}

// checkTags parses the tags an admin gives: each a tag (names.Tag,
// lower-cased), at most maxTags, sorted and without repeats.
func checkTags(in []string) ([]string, error) {
	if len(in) > maxTags {
		return nil, badRequest("%d tags: a member or token has at most %d", len(in), maxTags)
	}
	var out []string
	for _, t := range in {
		nt, ok := names.Tag(t)
		if !ok {
			return nil, badRequest("tag %s: want 1-%d lower-case letters, digits and hyphens, starting with a letter, not ending with a hyphen", quoteShort(t), names.MaxTag)
		}
		out = append(out, nt)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// maxTags bounds the tags of one member or token.
const maxTags = 16

// quoteShort quotes what a client sent for an error message: escaped,
// and cut at 64 bytes so that an answer never echoes a large body back.
func quoteShort(s string) string {
	if len(s) > 64 {
		return quote(s[:64]) + "..."
	}
	return quote(s)
}

// setMemberTags replaces a member's tags.
func (s *Server) setMemberTags(ctx context.Context, id string, ref memberRef, tags []string) (control.Member, error) {
	tags, err := checkTags(tags)
	if err != nil {
		return control.Member{}, err
	}
	var was []string
	m, changed, err := s.changeMember(ctx, id, ref, func(tx *Tx, n networkRec, members []memberRec, m *memberRec) error {
		was, m.Tags = m.Tags, tags
		return nil
	})
	if err == nil && changed {
		s.logf("network %s: member %s tags set to %q (were %q)", id, ref.node, tagsText(tags), tagsText(was))
	}
	return memberView(m), err
}

// setRules replaces a network's rules, whole. They are checked against
// the network as it is (a CIDR outside it and its served subnets, or a
// member that is not one, is refused); tags no member has yet are
// accepted, with a warning. With want set, the network must still be at
// that revision.
func (s *Server) setRules(ctx context.Context, id string, req control.SetRulesRequest) (control.Network, []string, error) {
	if req.Rules == nil {
		return control.Network{}, nil, badRequest("rules: missing; an empty list [] denies everything but replies")
	}
	var out control.Network
	var warnings []string
	err := s.writeNet(ctx, id, func(tx *Tx) error {
		n, _, ix, err := networkForRules(tx, id)
		if err != nil {
			return err
		}
		if req.Revision != 0 && req.Revision != n.Revision {
			return conflict("network %s is at revision %d, not %d: someone changed it since you read the rules; read them again and re-apply your change", id, n.Revision, req.Revision)
		}
		if req.Base != nil && req.Base.String() != n.Rules.String() {
			return conflict("network %s: its rules changed since you read them; read them again and re-apply your change", id)
		}
		if warnings, err = req.Rules.Check(ix); err != nil {
			return badRequest("%v", err)
		}
		n.Rules = req.Rules
		if err := tx.updateNetwork(n); err != nil {
			return err
		}
		if _, err := tx.bump(id); err != nil {
			return err
		}
		out, err = networkOf(tx, id)
		return err
	})
	if err == nil {
		s.logf("network %s: rules set (%d rules, revision %d)", id, len(out.Rules), out.Revision)
	}
	return out, warnings, err
}

// networkForRules reads network id as its rules see it, inside tx: the
// record, its members, and the index the rules are checked and decided
// against.
func networkForRules(tx *Tx, id string) (networkRec, []memberRec, *policy.Index, error) {
	n, err := tx.network(id)
	if err != nil {
		return n, nil, nil, err
	}
	rs, err := tx.routes(id)
	if err != nil {
		return n, nil, nil, err
	}
	ms, err := tx.members(id)
	if err != nil {
		return n, nil, nil, err
	}
	ix, err := policy.NewIndex(policyNetwork(n, rs, ms))
	return n, ms, ix, err
}

// testPolicy answers whether the network's rules let a packet through,
// and which rule decided.
func (s *Server) testPolicy(ctx context.Context, id string, req control.PolicyTestRequest) (control.PolicyDecision, error) {
	proto, err := policy.ParseProto(req.Proto)
	if err != nil {
		return control.PolicyDecision{}, badRequest("proto: %v", err)
	}
	if !req.To.IsValid() {
		return control.PolicyDecision{}, badRequest("to: missing: the destination address")
	}
	if (proto == policy.TCP || proto == policy.UDP) && req.Port == 0 {
		return control.PolicyDecision{}, badRequest("port: missing: %s needs a destination port", proto)
	}
	var out control.PolicyDecision
	err = s.store.Read(ctx, func(tx *Tx) error {
		n, ms, ix, err := networkForRules(tx, id)
		if err != nil {
			return err
		}
		from, err := policySource(req.From, id, ms)
		if err != nil {
			return err
		}
		d := policy.Decide(n.Rules, ix, from, req.To.Unmap(), proto, req.Port)
		out = control.PolicyDecision{Allow: d.Allow, Rule: d.Rule, Reason: d.Reason, From: from}
		if d.Rule > 0 {
			out.Text = n.Rules[d.Rule-1]
		}
		return nil
	})
	return out, err
}

// policySource reads a policy test's source: an address, or a member by
// node ID or fingerprint (its overlay address).
func policySource(from, id string, ms []memberRec) (netip.Addr, error) {
	if a, err := netip.ParseAddr(from); err == nil {
		return a.Unmap(), nil
	}
	ref, err := parseMemberRef(from)
	if err != nil {
		return netip.Addr{}, badRequest("from %s: want an address, or a member's node ID or fingerprint", quoteShort(from))
	}
	m, ok := findMember(ms, ref.node)
	if !ok {
		return netip.Addr{}, errMemberNotFound(ref.node, id)
	}
	if err := checkNamed(m, ref); err != nil {
		return netip.Addr{}, err
	}
	if !inService(m) {
		return netip.Addr{}, conflict("member %s is not in service (%s): it sends nothing through the network", m.NodeID, memberStatus(m))
	}
	return m.Address, nil
}
