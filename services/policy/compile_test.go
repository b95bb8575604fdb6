package policy

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const appPolicy = `
allow from tag:web to tag:db on tcp/5432
deny from members to 172.16.0.0/16 on tcp/22
allow from tag:web,10.99.0.20 to 172.16.0.0/16,192.168.1.0/24 on tcp/8000-8100,udp/53,icmp
allow from any to fd00:16::/48 on tcp/443
allow from tag:gw to members on icmp
deny from any to any`

func TestCompile(t *testing.T) {
	ix := testIndex(t)
	tagWeb := prefixes("10.99.0.1/32", "10.99.0.2/32")
	tagGW := prefixes("10.99.0.10/31") // .10 and .11, merged
	anyNet := prefixes("10.99.0.0/24", "172.16.0.0/16", "192.168.1.0/24", "fd00:16::/48")
	icmp := []Service{{Proto: ICMP}}
	for _, tc := range []struct {
		name, rules, self string
		want              Ruleset
	}{
		{name: "database: input only, sets only those its rules use", rules: appPolicy, self: db, want: Ruleset{
			Input: []CompiledRule{
				{Rule: 1, Allow: true, FromSets: []string{"tag:web"}, To: prefixes("10.99.0.5/32"), Services: []Service{{TCP, 5432, 5432}}},
				{Rule: 5, Allow: true, FromSets: []string{"tag:gw"}, To: prefixes("10.99.0.5/32"), Services: icmp},
				{Rule: 6, FromSets: []string{"any"}, To: prefixes("10.99.0.5/32")},
			},
			Sets: map[string][]netip.Prefix{"tag:web": tagWeb, "tag:gw": tagGW, "any": anyNet},
		}},
		{name: "gateway: input and forward, deny kept", rules: appPolicy, self: gw, want: Ruleset{
			Input: []CompiledRule{
				{Rule: 5, Allow: true, FromSets: []string{"tag:gw"}, To: prefixes("10.99.0.10/32"), Services: icmp},
				{Rule: 6, FromSets: []string{"any"}, To: prefixes("10.99.0.10/32")},
			},
			Forward: []CompiledRule{
				{Rule: 2, FromSets: []string{"members"}, To: prefixes("172.16.0.0/16"), Services: []Service{{TCP, 22, 22}}},
				{Rule: 3, Allow: true, FromSets: []string{"tag:web"}, From: prefixes("10.99.0.20/32"), To: prefixes("172.16.0.0/16"),
					Services: []Service{{TCP, 8000, 8100}, {UDP, 53, 53}, {Proto: ICMP}}},
				{Rule: 4, Allow: true, FromSets: []string{"any"}, To: prefixes("fd00:16::/48"), Services: []Service{{TCP, 443, 443}}},
				{Rule: 6, FromSets: []string{"any"}, To: prefixes("172.16.0.0/16", "fd00:16::/48")},
			},
			Sets: map[string][]netip.Prefix{"tag:gw": tagGW, "any": anyNet, "members": prefixes("10.99.0.0/24"), "tag:web": tagWeb},
		}},
		{name: "untagged member", rules: appPolicy, self: lone, want: Ruleset{
			Input: []CompiledRule{
				{Rule: 5, Allow: true, FromSets: []string{"tag:gw"}, To: prefixes("10.99.0.20/32"), Services: icmp},
				{Rule: 6, FromSets: []string{"any"}, To: prefixes("10.99.0.20/32")},
			},
			Sets: map[string][]netip.Prefix{"tag:gw": tagGW, "any": anyNet},
		}},
		{name: "no rule concerns it", rules: "allow from tag:web to tag:db", self: lone, want: Ruleset{}},
		{name: "no address yet", rules: "allow from any to any", self: pend, want: Ruleset{}},
		{name: "narrowed to the part it serves", rules: "allow from 10.99.0.0/28 to 172.16.5.0/24,192.168.0.0/16,10.99.0.0/28 on any", self: gw2, want: Ruleset{
			Input:   []CompiledRule{{Rule: 1, Allow: true, From: prefixes("10.99.0.0/28"), To: prefixes("10.99.0.11/32")}},
			Forward: []CompiledRule{{Rule: 1, Allow: true, From: prefixes("10.99.0.0/28"), To: prefixes("192.168.1.0/24")}},
		}},
		{name: "narrowed to its address", rules: "allow from tag:web,any,member:b000000001 to 10.99.0.0/28,tag:web on udp,any", self: web2, want: Ruleset{
			Input: []CompiledRule{{Rule: 1, Allow: true, FromSets: []string{"tag:web", "any", "member:b000000001"}, To: prefixes("10.99.0.2/32")}},
			Sets:  map[string][]netip.Prefix{"tag:web": tagWeb, "any": anyNet, "member:b000000001": prefixes("10.99.0.5/32")},
		}},
		{name: "a set no one is in is written empty", rules: "allow from tag:qa,member:0123456789 to members", self: lone, want: Ruleset{
			Input: []CompiledRule{{Rule: 1, Allow: true, FromSets: []string{"tag:qa", "member:0123456789"}, To: prefixes("10.99.0.20/32")}},
			Sets:  map[string][]netip.Prefix{"tag:qa": {}, "member:0123456789": {}},
		}},
	} {
		got, err := Compile(policy(t, tc.rules), ix, tc.self)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		// The controller sends any and members; the member fills in
		// tag: and member: sets, here from every member.
		for name := range got.Sets {
			if name != "any" && name != "members" {
				t.Errorf("%s: Compile sends set %s: the member fills it in", tc.name, name)
			}
		}
		got = got.Fill(testNet().Members)
		if diff := cmp.Diff(tc.want, got, cmpNetip); diff != "" {
			t.Errorf("%s: Compile (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestCompileRefuses(t *testing.T) {
	ix := testIndex(t)
	if _, err := Compile(DefaultRules(), ix, "0123456789"); err == nil || err.Error() != `node "0123456789" is not a member of the network` {
		t.Errorf("unknown member: error %v", err)
	}
	bad := Policy{{Action: Allow, From: []Selector{{Kind: KindAny}}}}
	if _, err := Compile(bad, ix, web1); err == nil || err.Error() != "rule 1: 0 selectors in to: want 1 to 64" {
		t.Errorf("malformed rule: error %v", err)
	}
}

func TestRulesetJSON(t *testing.T) {
	ix := testIndex(t)
	rs, err := Compile(policy(t, "allow from tag:web,10.99.0.20 to tag:db on tcp/5432,icmp"), ix, db)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"input":[{"rule":1,"allow":true,"from_sets":["tag:web"],"from":["10.99.0.20/32"],"to":["10.99.0.5/32"],"services":["tcp/5432","icmp"]}]}`
	if string(b) != want {
		t.Errorf("JSON:\n%s\nwant\n%s", b, want)
	}
	var back Ruleset
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rs, back, cmpNetip); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if got := rs.Input[0].String(); got != "1 allow from tag:web,10.99.0.20 to 10.99.0.5 on tcp/5432,icmp" {
		t.Errorf("String() = %q", got)
	}
	if b, _ := json.Marshal(Ruleset{}); string(b) != "{}" {
		t.Errorf("empty Ruleset as JSON: %s", b)
	}
}

func TestRulesetCheck(t *testing.T) {
	good := func() Ruleset {
		return Ruleset{
			Input: []CompiledRule{
				{Rule: 2, Allow: true, FromSets: []string{"tag:web"}, From: prefixes("10.99.0.20/32"), To: prefixes("10.99.0.5/32"), Services: []Service{{TCP, 5432, 5432}}},
				{Rule: 7, FromSets: []string{"any"}, To: prefixes("10.99.0.5/32")},
			},
			Forward: []CompiledRule{{Rule: 1, Allow: true, From: prefixes("10.99.0.0/24"), To: prefixes("172.16.0.0/16", "fd00::/8")}},
			Sets:    map[string][]netip.Prefix{"tag:web": prefixes("10.99.0.1/32", "10.99.0.2/32"), "any": prefixes("10.99.0.0/24")},
		}
	}
	if err := good().Check(); err != nil {
		t.Fatalf("good: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(rs *Ruleset)
		want   string
	}{
		{"numbers fall", func(rs *Ruleset) { rs.Input[1].Rule = 2 }, "input: rule 2 after rule 2: want numbers rising from 1 to at most 1000"},
		{"number 0", func(rs *Ruleset) { rs.Forward[0].Rule = 0 }, "forward: rule 0 after rule 0: want numbers rising from 1 to at most 1000"},
		{"number too high", func(rs *Ruleset) { rs.Input[1].Rule = 1001 }, "input: rule 1001 after rule 2: want numbers rising from 1 to at most 1000"},
		{"too many rules", func(rs *Ruleset) {
			rs.Input = nil
			for i := range MaxRules + 1 {
				rs.Input = append(rs.Input, CompiledRule{Rule: i + 1, FromSets: []string{"any"}, To: prefixes("10.99.0.5/32")})
			}
		}, "input: 1001 rules, at most 1000"},
		{"unknown set", func(rs *Ruleset) { rs.Input[1].FromSets = []string{"members"} }, `input: rule 7: source set "members" is not among the sets`},
		{"source set named by a CIDR", func(rs *Ruleset) { rs.Input[1].FromSets = []string{"10.0.0.0/8"} },
			`input: rule 7: source set "10.0.0.0/8": want any, members, tag:NAME or member:NODEID`},
		{"source set not as a rule writes it", func(rs *Ruleset) { rs.Input[1].FromSets = []string{"tag:Web"} },
			`input: rule 7: source set "tag:Web": want any, members, tag:NAME or member:NODEID`},
		{"no source", func(rs *Ruleset) { rs.Input[1].FromSets = nil }, "input: rule 7: 0 sources: want 1 to 64"},
		{"too many sources", func(rs *Ruleset) {
			for range MaxItems {
				rs.Input[1].FromSets = append(rs.Input[1].FromSets, "any")
			}
		}, "input: rule 7: 65 sources: want 1 to 64"},
		{"no destination", func(rs *Ruleset) { rs.Forward[0].To = nil }, "forward: rule 1: 0 destinations: want 1 to 4096"},
		{"destinations out of order", func(rs *Ruleset) { rs.Forward[0].To = prefixes("fd00::/8", "172.16.0.0/16") },
			"forward: rule 1: to: 172.16.0.0/16 after fd00::/8: want prefixes in order, none overlapping"},
		{"destinations overlap", func(rs *Ruleset) { rs.Forward[0].To = prefixes("172.16.0.0/16", "172.16.1.0/24") },
			"forward: rule 1: to: 172.16.1.0/24 after 172.16.0.0/16: want prefixes in order, none overlapping"},
		{"source not canonical", func(rs *Ruleset) {
			rs.Forward[0].From = []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr("10.99.0.1"), 24)}
		},
			"forward: rule 1: from: 10.99.0.1/24 is not a canonical prefix: write 10.99.0.0/24"},
		{"invalid prefix", func(rs *Ruleset) { rs.Forward[0].From = []netip.Prefix{{}} }, "forward: rule 1: from: invalid Prefix is not a valid prefix"},
		{"bad service", func(rs *Ruleset) { rs.Input[0].Services = []Service{{Proto: ICMP, Lo: 8, Hi: 8}} }, "input: rule 2: service icmp takes no ports"},
		{"unknown protocol", func(rs *Ruleset) { rs.Input[0].Services = []Service{{Proto: 47}} },
			"input: rule 2: service of protocol 47: rules name only tcp, udp, icmp and any"},
		{"bad set name", func(rs *Ruleset) { rs.Sets["tag:Web"] = nil }, `set "tag:Web": want any, members, tag:NAME or member:NODEID`},
		{"set named by a CIDR", func(rs *Ruleset) { rs.Sets["10.0.0.0/8"] = nil }, `set "10.0.0.0/8": want any, members, tag:NAME or member:NODEID`},
		{"set not in order", func(rs *Ruleset) { rs.Sets["any"] = prefixes("172.16.0.0/16", "10.99.0.0/24") },
			"set any: 10.99.0.0/24 after 172.16.0.0/16: want prefixes in order, none overlapping"},
		{"set IPv4 as IPv6", func(rs *Ruleset) { rs.Sets["any"] = prefixes("::ffff:10.99.0.0/120") },
			"set any: ::ffff:10.99.0.0/120 is IPv4 written as IPv6: write it as IPv4"},
	} {
		rs := good()
		tc.change(&rs)
		if err := rs.Check(); err == nil || err.Error() != tc.want {
			t.Errorf("%s: Check() = %v, want %s", tc.name, err, tc.want)
		}
	}
}

// evaluate runs one list of a Ruleset as a member would for a packet that
// is not a reply: the first rule that matches decides; none, it drops.
func (rs Ruleset) evaluate(rules []CompiledRule, src, dst netip.Addr, proto Proto, port uint16) (allow bool, rule int) {
	in := func(ps []netip.Prefix, a netip.Addr) bool {
		return slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	for _, r := range rules {
		from := in(r.From, src)
		for _, s := range r.FromSets {
			from = from || in(rs.Sets[s], src)
		}
		if from && in(r.To, dst) && matchesService(r.Services, proto, port) {
			return r.Allow, r.Rule
		}
	}
	return false, 0
}

// probe is a packet to try.
type probe struct {
	src, dst netip.Addr
	proto    Proto
	port     uint16
}

// probes are packets between every pair of interesting addresses of the
// test network (its members, inside its served subnets, outside it), of
// a few services.
func probes() []probe {
	hosts := addrs("10.99.0.1", "10.99.0.2", "10.99.0.5", "10.99.0.10", "10.99.0.11", "10.99.0.20", "10.99.0.200",
		"172.16.3.4", "172.16.5.1", "192.168.1.9", "fd00:16::1", "fd00:16:0:9::1", "8.8.8.8", "2001:db8::1")
	services := []struct {
		proto Proto
		port  uint16
	}{{TCP, 22}, {TCP, 5432}, {TCP, 8000}, {TCP, 443}, {UDP, 53}, {ICMP, 0}, {ICMPv6, 0}, {47, 0}}
	var out []probe
	for _, src := range hosts {
		for _, dst := range hosts {
			for _, s := range services {
				out = append(out, probe{src, dst, s.proto, s.port})
			}
		}
	}
	return out
}

// randomPolicy is a policy of 1 to 8 rules drawn from the selectors and
// services that matter in the test network.
func randomPolicy(rng *rand.Rand) Policy {
	sels := []string{"any", "members", "tag:web", "tag:db", "tag:gw", "tag:api", "tag:qa", "member:b000000001", "member:c000000002",
		"10.99.0.0/28", "10.99.0.20", "172.16.0.0/16", "172.16.5.0/24", "192.168.1.0/24", "fd00:16::/48", "fd00:16:0:9::/64"}
	services := []string{"any", "tcp", "udp", "icmp", "tcp/22", "tcp/5432", "tcp/1-1000", "udp/53"}
	pick := func(from []string) string {
		var out []string
		for range 1 + rng.IntN(3) {
			out = append(out, from[rng.IntN(len(from))])
		}
		return strings.Join(out, ",")
	}
	var b strings.Builder
	for range 1 + rng.IntN(8) {
		action := "allow"
		if rng.IntN(3) == 0 {
			action = "deny"
		}
		fmt.Fprintf(&b, "%s from %s to %s", action, pick(sels), pick(sels))
		if rng.IntN(2) == 0 {
			fmt.Fprintf(&b, " on %s", pick(services))
		}
		b.WriteByte('\n')
	}
	p, err := ParsePolicy(b.String())
	if err != nil {
		panic(err)
	}
	return p
}

// TestCompileAgreesWithDecide compiles random policies for every member
// and checks that what each member enforces on a packet addressed to it
// (Input) or into a subnet it serves (Forward) is what Decide says of it.
func TestCompileAgreesWithDecide(t *testing.T) {
	ix := testIndex(t)
	rng := rand.New(rand.NewPCG(1, 2))
	ps := probes()
	for range 300 {
		p := randomPolicy(rng)
		for _, m := range testNet().Members {
			rs, err := Compile(p, ix, m.NodeID)
			if err != nil {
				t.Fatalf("Compile(%q, %s): %v", p, m.NodeID, err)
			}
			// It fills its sets from its peers, and only its peers'
			// addresses can come over the overlay (WireGuard's allowed
			// IPs): other members' addresses are not probed as sources.
			peers, from := peerMembers(ix, Peers(p, ix, m.NodeID))
			rs = rs.Fill(peers)
			if err := rs.CheckFilled(); err != nil {
				t.Fatalf("Compile(%q, %s) filled: %v", p, m.NodeID, err)
			}
			own, served := ix.holdings(ix.byID[m.NodeID])
			for _, pr := range ps {
				if _, member := ix.byAddr[pr.src]; member && !from[pr.src] {
					continue
				}
				var rules []CompiledRule
				switch {
				case slices.ContainsFunc(own, func(p netip.Prefix) bool { return p.Contains(pr.dst) }):
					rules = rs.Input
				case slices.ContainsFunc(served, func(p netip.Prefix) bool { return p.Contains(pr.dst) }):
					rules = rs.Forward
				default:
					continue
				}
				allow, rule := rs.evaluate(rules, pr.src, pr.dst, pr.proto, pr.port)
				d := Decide(p, ix, pr.src, pr.dst, pr.proto, pr.port)
				if allow != d.Allow || rule != d.Rule {
					t.Fatalf("policy:\n%s%s enforces %v -> %v %v/%d by rule %d (allow %v); Decide: %+v\nruleset: %+v",
						p, m.NodeID, pr.src, pr.dst, pr.proto, pr.port, rule, allow, d, rs)
				}
			}
		}
	}
}

// peerMembers is the members with these node IDs, and their addresses.
func peerMembers(ix *Index, ids []string) ([]Member, map[netip.Addr]bool) {
	var out []Member
	from := map[netip.Addr]bool{}
	for _, id := range ids {
		m := ix.byID[id]
		out = append(out, Member{NodeID: m.NodeID, Addresses: m.Addresses, Tags: m.Tags})
		for _, a := range m.Addresses {
			from[a] = true
		}
	}
	return out, from
}

func TestFill(t *testing.T) {
	rs := Ruleset{
		Input: []CompiledRule{
			{Rule: 1, FromSets: []string{"tag:bad"}, To: prefixes("10.99.0.5/32")},
			{Rule: 2, Allow: true, FromSets: []string{"tag:web", "member:c000000002", "any"}, To: prefixes("10.99.0.5/32")},
		},
		Forward: []CompiledRule{{Rule: 3, Allow: true, FromSets: []string{"tag:ops"}, To: prefixes("172.16.0.0/16")}},
		Sets:    map[string][]netip.Prefix{"any": prefixes("10.99.0.0/24"), "tag:web": prefixes("10.99.0.77/32")},
	}
	if err := rs.Check(); err != nil {
		t.Fatalf("as sent: %v", err)
	}
	if err := rs.CheckFilled(); err == nil || err.Error() != `input: rule 1: source set "tag:bad" is not among the sets` {
		t.Errorf("CheckFilled before Fill: %v", err)
	}
	peers := []Member{
		{NodeID: "b000000001", Addresses: addrs("10.99.0.2"), Tags: []string{"web", "bad"}},
		{NodeID: "c000000002", Addresses: []netip.Addr{netip.MustParseAddr("::ffff:10.99.0.9")}},
		{NodeID: "d000000003", Addresses: addrs("10.99.0.1", "fd00::1"), Tags: []string{"web"}},
		{NodeID: "e000000004", Addresses: addrs("10.99.0.3"), Tags: []string{"db"}},
	}
	got := rs.Fill(peers)
	want := map[string][]netip.Prefix{
		"any":               prefixes("10.99.0.0/24"),
		"tag:bad":           prefixes("10.99.0.2/32"),
		"tag:web":           prefixes("10.99.0.1/32", "10.99.0.2/32", "fd00::1/128"), // replaced, not added to
		"member:c000000002": prefixes("10.99.0.9/32"),
		"tag:ops":           {},
	}
	if diff := cmp.Diff(want, got.Sets, cmpNetip); diff != "" {
		t.Errorf("Fill sets (-want +got):\n%s", diff)
	}
	if err := got.CheckFilled(); err != nil {
		t.Errorf("CheckFilled after Fill: %v", err)
	}
	if _, ok := rs.Sets["tag:bad"]; ok || !slices.Equal(rs.Sets["tag:web"], prefixes("10.99.0.77/32")) {
		t.Errorf("Fill changed the Ruleset it was called on: %v", rs.Sets)
	}
}
