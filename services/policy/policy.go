package policy

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/gatenet/gate/services/names"
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

// Index is a Network prepared for the questions Check, Decide, Compile
// and Peers ask: members by node ID, by tag and by address. Build it once
// per change of the network, not once per question. Nothing changes it
// after NewIndex (which keeps the members' slices of addresses and tags:
// leave them be), so it may be shared between goroutines.
type Index struct {
	cidr    netip.Prefix
	routes  []route
	anyNet  []netip.Prefix // what "any" stands for: the CIDR and every served subnet, merged
	members []Member       // by node ID
	byID    map[string]int
	byTag   map[string][]int // tag -> members, in node ID order
	addrs   []addrEntry      // by address
}

type route struct {
	Route
	gw int // the member whose address Via is; -1 when none is
}

type addrEntry struct {
	addr netip.Addr
	m    int
}

// NewIndex checks and indexes n. It refuses what would make the questions
// ambiguous: an invalid CIDR, a node ID twice or not 10 hex digits, an
// address that is invalid or held by two members, a tag that is not as
// names.Tag returns it, a route to a non-canonical prefix or via no
// address.
func NewIndex(n Network) (*Index, error) {
	if !n.CIDR.IsValid() {
		return nil, errors.New("the network has no overlay CIDR")
	}
	if err := checkPrefix(n.CIDR); err != nil {
		return nil, fmt.Errorf("overlay CIDR: %w", err)
	}
	ix := &Index{
		cidr:    n.CIDR,
		members: slices.Clone(n.Members),
		byID:    make(map[string]int, len(n.Members)),
		byTag:   make(map[string][]int),
	}
	slices.SortFunc(ix.members, func(a, b Member) int { return cmp.Compare(a.NodeID, b.NodeID) })
	for i, m := range ix.members {
		if !isNodeID(m.NodeID) {
			return nil, fmt.Errorf("member %s: want a node ID, 10 lower-case hex digits", quote(m.NodeID))
		}
		if _, dup := ix.byID[m.NodeID]; dup {
			return nil, fmt.Errorf("member %s is listed twice", m.NodeID)
		}
		ix.byID[m.NodeID] = i
		for _, a := range m.Addresses {
			if !a.IsValid() || a.Zone() != "" || a.Is4In6() {
				return nil, fmt.Errorf("member %s: address %s is not a plain IPv4 or IPv6 address", m.NodeID, a)
			}
			ix.addrs = append(ix.addrs, addrEntry{a, i})
		}
		for j, t := range m.Tags {
			if nt, ok := names.Tag(t); !ok || nt != t {
				return nil, fmt.Errorf("member %s: tag %s: want a tag as names.Tag gives it", m.NodeID, quote(t))
			}
			if slices.Contains(m.Tags[:j], t) {
				continue
			}
			ix.byTag[t] = append(ix.byTag[t], i)
		}
	}
	slices.SortFunc(ix.addrs, func(a, b addrEntry) int { return a.addr.Compare(b.addr) })
	for i := 1; i < len(ix.addrs); i++ {
		if a := ix.addrs[i]; a.addr == ix.addrs[i-1].addr {
			return nil, fmt.Errorf("address %s is held by both %s and %s", a.addr, ix.members[ix.addrs[i-1].m].NodeID, ix.members[a.m].NodeID)
		}
	}
	ix.anyNet = []netip.Prefix{n.CIDR}
	for _, r := range n.Routes {
		if err := checkPrefix(r.Dest); err != nil {
			return nil, fmt.Errorf("route to %s: %w", r.Dest, err)
		}
		if !r.Via.IsValid() {
			return nil, fmt.Errorf("route to %s: via no address", r.Dest)
		}
		ix.routes = append(ix.routes, route{Route: r, gw: ix.memberAt(r.Via)})
		ix.anyNet = append(ix.anyNet, r.Dest)
	}
	ix.anyNet = merge(ix.anyNet)
	return ix, nil
}

// Member returns the member with node ID id.
func (ix *Index) Member(id string) (Member, bool) {
	i, ok := ix.byID[id]
	if !ok {
		return Member{}, false
	}
	return ix.members[i], true
}

// memberAt is the member that holds address a, or -1.
func (ix *Index) memberAt(a netip.Addr) int {
	i, ok := slices.BinarySearchFunc(ix.addrs, a, func(e addrEntry, a netip.Addr) int { return e.addr.Compare(a) })
	if !ok {
		return -1
	}
	return ix.addrs[i].m
}

// addrsIn is the members' addresses inside p, in order.
func (ix *Index) addrsIn(p netip.Prefix) []addrEntry {
	first := p.Masked().Addr()
	i, _ := slices.BinarySearchFunc(ix.addrs, first, func(e addrEntry, a netip.Addr) int { return e.addr.Compare(a) })
	j := i
	for j < len(ix.addrs) && p.Contains(ix.addrs[j].addr) {
		j++
	}
	return ix.addrs[i:j]
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
				if len(ix.byTag[s.Name]) > 0 {
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
