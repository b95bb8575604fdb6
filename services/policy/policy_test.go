package policy

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Members of the test network, by node ID.
const (
	web1 = "a000000001" // 10.99.0.1, tag web
	web2 = "a000000002" // 10.99.0.2, tags web and api
	db   = "b000000001" // 10.99.0.5, tag db
	gw   = "c000000001" // 10.99.0.10, tag gw, serves 172.16.0.0/16 and fd00:16::/48
	gw2  = "c000000002" // 10.99.0.11, tag gw, serves 192.168.1.0/24
	lone = "d000000001" // 10.99.0.20, no tags
	pend = "e000000001" // no address yet
)

// testNet is a network of an app: two web servers, a database, and two
// gateways into a VPC (IPv4 and IPv6) and an office LAN.
func testNet() Network {
	return Network{
		CIDR: netip.MustParsePrefix("10.99.0.0/24"),
		Routes: []Route{
			{netip.MustParsePrefix("172.16.0.0/16"), netip.MustParseAddr("10.99.0.10")},
			{netip.MustParsePrefix("fd00:16::/48"), netip.MustParseAddr("10.99.0.10")},
			{netip.MustParsePrefix("192.168.1.0/24"), netip.MustParseAddr("10.99.0.11")},
		},
		Members: []Member{
			{NodeID: web1, Addresses: addrs("10.99.0.1"), Tags: []string{"web"}},
			{NodeID: web2, Addresses: addrs("10.99.0.2"), Tags: []string{"web", "api"}},
			{NodeID: db, Addresses: addrs("10.99.0.5"), Tags: []string{"db"}},
			{NodeID: gw, Addresses: addrs("10.99.0.10"), Tags: []string{"gw"}},
			{NodeID: gw2, Addresses: addrs("10.99.0.11"), Tags: []string{"gw"}},
			{NodeID: lone, Addresses: addrs("10.99.0.20")},
			{NodeID: pend},
		},
	}
}

func testIndex(t testing.TB) *Index {
	t.Helper()
	ix, err := NewIndex(testNet())
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// policy parses rules one a line, failing the test on an error.
func policy(t testing.TB, text string) Policy {
	t.Helper()
	p, err := ParsePolicy(text)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewIndexRefuses(t *testing.T) {
	member := func(id string, a string, tags ...string) Member {
		return Member{NodeID: id, Addresses: addrs(a), Tags: tags}
	}
	cidr := netip.MustParsePrefix("10.99.0.0/24")
	for _, tc := range []struct {
		name string
		net  Network
		want string
	}{
		{"no CIDR", Network{}, "the network has no overlay CIDR"},
		{"CIDR not canonical", Network{CIDR: netip.MustParsePrefix("10.99.0.1/24")}, "overlay CIDR: 10.99.0.1/24 is not a canonical prefix: write 10.99.0.0/24"},
		{"bad node ID", Network{CIDR: cidr, Members: []Member{member("A000000001", "10.99.0.1")}},
			`member "A000000001": want a node ID, 10 lower-case hex digits`},
		{"node twice", Network{CIDR: cidr, Members: []Member{member(web1, "10.99.0.1"), member(web1, "10.99.0.2")}},
			"member a000000001 is listed twice"},
		{"address twice", Network{CIDR: cidr, Members: []Member{member(web1, "10.99.0.1"), member(web2, "10.99.0.1")}},
			"address 10.99.0.1 is held by both a000000001 and a000000002"},
		{"zoned address", Network{CIDR: cidr, Members: []Member{member(web1, "fe80::1%eth0")}},
			"member a000000001: address fe80::1%eth0 is not a plain IPv4 or IPv6 address"},
		{"tag not lowered", Network{CIDR: cidr, Members: []Member{member(web1, "10.99.0.1", "Web")}},
			`member a000000001: tag "Web": want a tag as names.Tag gives it`},
		{"route not canonical", Network{CIDR: cidr, Routes: []Route{{netip.MustParsePrefix("172.16.0.1/16"), netip.MustParseAddr("10.99.0.1")}}},
			"route to 172.16.0.1/16: 172.16.0.1/16 is not a canonical prefix: write 172.16.0.0/16"},
		{"route via nothing", Network{CIDR: cidr, Routes: []Route{{Dest: netip.MustParsePrefix("172.16.0.0/16")}}},
			"route to 172.16.0.0/16: via no address"},
	} {
		_, err := NewIndex(tc.net)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: NewIndex error = %v, want %s", tc.name, err, tc.want)
		}
	}
}

func TestCheck(t *testing.T) {
	ix := testIndex(t)
	for _, tc := range []struct {
		name     string
		p        Policy
		errs     []string // each line of the error, in order
		warnings []string
	}{
		{name: "default", p: DefaultRules()},
		{name: "every kind of selector", p: policy(t, `
allow from tag:web,member:a000000001 to tag:db on tcp/5432
allow from members to 172.16.0.0/16,192.168.1.128/25,fd00:16:0:1::/64 on tcp/443
allow from 10.99.0.0/24,10.99.0.5 to any`)},
		{name: "CIDR outside the network", p: policy(t, `
allow from any to 10.99.0.0/16
allow from 10.0.0.0/8 to any
allow from any to 172.16.0.0/16
allow from any to 2001:db8::/32
allow from 10.0.0.0/8 to 10.0.0.0/8`),
			errs: []string{
				`rule 1 "allow from any to 10.99.0.0/16": 10.99.0.0/16 lies outside the network: it is neither inside the overlay 10.99.0.0/24 nor inside a served subnet (172.16.0.0/16, fd00:16::/48, 192.168.1.0/24)`,
				`rule 2 "allow from 10.0.0.0/8 to any": 10.0.0.0/8 lies outside the network: it is neither inside the overlay 10.99.0.0/24 nor inside a served subnet (172.16.0.0/16, fd00:16::/48, 192.168.1.0/24)`,
				`rule 4 "allow from any to 2001:db8::/32": 2001:db8::/32 lies outside the network: it is neither inside the overlay 10.99.0.0/24 nor inside a served subnet (172.16.0.0/16, fd00:16::/48, 192.168.1.0/24)`,
				`rule 5 "allow from 10.0.0.0/8 to 10.0.0.0/8": 10.0.0.0/8 lies outside the network: it is neither inside the overlay 10.99.0.0/24 nor inside a served subnet (172.16.0.0/16, fd00:16::/48, 192.168.1.0/24)`,
			}},
		{name: "unknown member", p: policy(t, "allow from member:0123456789 to any"),
			errs: []string{`rule 1 "allow from member:0123456789 to any": member:0123456789: no member of the network has node ID 0123456789`}},
		{name: "tag no one has", p: policy(t, `
allow from tag:ops to tag:db
deny from tag:ops,tag:qa to tag:ops
allow from tag:web to tag:qa`),
			warnings: []string{
				"tag:ops (rules 1, 2): no member has this tag yet; the rule matches no one until one does",
				"tag:qa (rules 2, 3): no member has this tag yet; the rule matches no one until one does",
			}},
		{name: "malformed rule built in Go", p: Policy{
			{Action: Allow, From: []Selector{{Kind: KindAny}}},
			{Action: 7, From: []Selector{{Kind: KindAny}}, To: []Selector{{Kind: KindAny}}},
			{Action: Deny, From: []Selector{{Kind: KindTag, Name: "Web"}}, To: []Selector{{Kind: KindAny}}},
			{Action: Deny, From: []Selector{{Kind: KindAny}}, To: []Selector{{Kind: KindAny}}, Services: []Service{{TCP, 0, 80}}},
			{Action: Deny, From: []Selector{{Kind: KindAny}}, To: []Selector{{Kind: KindAny}}, Note: "a\nb"},
		},
			errs: []string{
				"rule 1: 0 selectors in to: want 1 to 64",
				"rule 2: action 7: want allow or deny",
				`rule 3: selector "tag:Web" (kind 3) is malformed`,
				"rule 4: service tcp: bad port range 0-80",
				`rule 5: note "a\nb": want printable ASCII, at most 200 bytes, no spaces at its ends`,
			}},
		{name: "too many rules", p: make(Policy, MaxRules+1), errs: []string{"1001 rules: a policy holds at most 1000"}},
	} {
		warnings, err := tc.p.Check(ix)
		var errs []string
		if err != nil {
			errs = strings.Split(err.Error(), "\n")
		}
		if diff := cmp.Diff(tc.errs, errs); diff != "" {
			t.Errorf("%s: errors (-want +got):\n%s", tc.name, diff)
		}
		if diff := cmp.Diff(tc.warnings, warnings); diff != "" {
			t.Errorf("%s: warnings (-want +got):\n%s", tc.name, diff)
		}
	}
}
