package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Policy is a network's rules, in order; rule n is p[n-1]. Its JSON form
// is an array of rule strings.
type Policy []Rule

// DefaultRules is the policy a new network starts with: everything the
// network carries may reach everything else.
func DefaultRules() Policy {
	return Policy{MustParseRule("allow from any to any")}
}

// String renders p one rule a line, each line ending in a newline.
func (p Policy) String() string {
	var b strings.Builder
	for _, r := range p {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// ParsePolicy reads rules one a line, as Policy.String writes them. Blank
// lines, and lines whose first word starts with #, are skipped: they are
// not kept (a note after a rule is). An error names the line of each
// rule that is wrong (the first ten).
func ParsePolicy(text string) (Policy, error) {
	var p Policy
	var errs []error
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if t := strings.Trim(line, " \t"); t == "" || t[0] == '#' {
			continue
		}
		if len(p) == MaxRules {
			errs = append(errs, fmt.Errorf("line %d: more than %d rules", i+1, MaxRules))
			break
		}
		r, err := ParseRule(line)
		if err != nil {
			if errs = append(errs, fmt.Errorf("line %d: %w", i+1, err)); len(errs) == 10 {
				break
			}
			continue
		}
		p = append(p, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// Network is what the rules are checked and evaluated against: a
// network's overlay CIDR, the subnets its members serve, and its members.
// The controller builds it from its records; NewIndex prepares it.
type Network struct {
	CIDR    netip.Prefix
	Routes  []Route
	Members []Member
}

// Route is a served subnet: Dest is reached through the member whose
// overlay address is Via, its gateway.
type Route struct {
	Dest netip.Prefix
	Via  netip.Addr
}

// Member is one member as the rules see it.
type Member struct {
	NodeID    string
	Addresses []netip.Addr // overlay addresses
	Tags      []string
}

// Check says what is wrong with p in the network ix describes: too many
// rules, a rule that is malformed (one built in Go rather than parsed), a
// CIDR that lies neither inside the overlay CIDR nor inside a served
// subnet, a member: selector naming a node that is not a member. It
// returns every error, each naming its rule by number. A tag that no
// member has is not an error: it comes back among the warnings.
func (p Policy) Check(ix *Index) (warnings []string, err error) {
	if len(p) > MaxRules {
		return nil, fmt.Errorf("%d rules: a policy holds at most %d", len(p), MaxRules)
	}
	var errs []error
	var unusedTags []string
	tagRules := map[string][]string{}
	for i, r := range p {
		if err := r.check(); err != nil {
			errs = append(errs, fmt.Errorf("rule %d: %w", i+1, err))
			continue
		}
		seen := map[Selector]bool{} // a selector in both from and to is wrong once
		for _, s := range slices.Concat(r.From, r.To) {
			if seen[s] {
				continue
			}
			seen[s] = true
			switch s.Kind {
			case KindCIDR:
				if !ix.inside(s.Prefix) {
					errs = append(errs, fmt.Errorf("rule %d %s: %s lies outside the network: it is neither inside the overlay %s nor inside a served subnet%s",
						i+1, quote(r.String()), s, ix.cidr, ix.servedList()))
				}
			case KindMember:
				if _, ok := ix.byID[s.Name]; !ok {
					errs = append(errs, fmt.Errorf("rule %d %s: %s: no member of the network has node ID %s", i+1, quote(r.String()), s, s.Name))
				}
			case KindTag:
				if len(ix.tagged(s.Name)) > 0 {
					continue
				}
				n := fmt.Sprint(i + 1)
				if _, seen := tagRules[s.Name]; !seen {
					unusedTags = append(unusedTags, s.Name)
				}
				if rs := tagRules[s.Name]; len(rs) == 0 || rs[len(rs)-1] != n {
					tagRules[s.Name] = append(rs, n)
				}
			}
		}
	}
	for _, t := range unusedTags {
		rs := tagRules[t]
		what := "rule " + rs[0]
		if len(rs) > 1 {
			what = "rules " + strings.Join(rs, ", ")
		}
		warnings = append(warnings, fmt.Sprintf("tag:%s (%s): no member has this tag yet; the rule matches no one until one does", t, what))
	}
	return warnings, errors.Join(errs...)
}

// inside says whether p lies inside the overlay CIDR or a served subnet.
func (ix *Index) inside(p netip.Prefix) bool {
	within := func(n netip.Prefix) bool { return n.Bits() <= p.Bits() && n.Contains(p.Addr()) }
	if within(ix.cidr) {
		return true
	}
	return slices.ContainsFunc(ix.routes, func(r route) bool { return within(r.Dest) })
}

// servedList names the served subnets for an error: " (a, b, c)", or
// nothing when there are none.
func (ix *Index) servedList() string {
	if len(ix.routes) == 0 {
		return " (it has none)"
	}
	var ds []string
	for _, r := range ix.routes {
		if d := r.Dest.String(); !slices.Contains(ds, d) {
			ds = append(ds, d)
		}
	}
	if len(ds) > 5 {
		ds = append(ds[:5], "...")
	}
	return " (" + strings.Join(ds, ", ") + ")"
}
