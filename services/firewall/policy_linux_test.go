package firewall

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/gatenet/gate/services/policy"
	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
)

// setDescs renders a plan's named sets as name -> type, comment and
// elements, the way nft lists them: "ipv4_addr "tag:web" { 192.168.254.21 }".
func setDescs(p plan) map[string]string {
	out := map[string]string{}
	for _, s := range p.sets {
		f, typ := ipv6, "ipv6_addr"
		if s.keyType == nftables.TypeIPAddr {
			f, typ = ipv4, "ipv4_addr"
		}
		elems := "{ }"
		if rs := elemRanges(f, s.elems); len(rs) > 0 {
			elems = "{ " + strings.Join(rs, ", ") + " }"
		}
		out[s.name] = typ + ` "` + s.comment + `" ` + elems
	}
	return out
}

// elemRanges decodes interval elements as intervalElems encodes them.
func elemRanges(f family, elems []nftables.SetElement) []string {
	var out []string
	for i, e := range elems {
		if e.IntervalEnd {
			continue
		}
		from, _ := netip.AddrFromSlice(e.Key)
		last := lastAddr(netip.PrefixFrom(f.zeroAddr, 0))
		if i+1 < len(elems) && elems[i+1].IntervalEnd {
			end, _ := netip.AddrFromSlice(elems[i+1].Key)
			last = end.Prev()
		}
		out = append(out, addrRange{from, last}.String())
	}
	return out
}

func TestCompilePolicy(t *testing.T) {
	n := testNetwork()
	// What every input chain of these tests holds before its jumps.
	antiSpoof := func(iface, addr string) string { return `iifname != "` + iface + `" ip daddr { ` + addr + ` } drop` }
	tests := []struct {
		name     string
		rs       Ruleset
		want     map[string]chainDescs
		wantSets map[string]string
	}{{
		name: "member under the default rule, guard mode",
		rs: Ruleset{Overlays: []Overlay{{
			Iface: "gtm", Addrs: addrs("192.168.254.11"), Prefixes: pfx("192.168.254.0/24"),
			Policy: compileRules(t, n, idDB, policy.DefaultRules().String()),
		}}},
		want: map[string]chainDescs{
			"input": {"accept", cat(inputHead, metaGuard("gtm"), []string{antiSpoof("gtm", "192.168.254.11")}, ctGuard,
				[]string{`iifname "gtm" jump pol-in-gtm`})},
			"forward":     {"accept", cat(metaGuard("gtm"), ctGuard, []string{`oifname "gtm" iifname != "gtm" drop`, `iifname "gtm" drop`})},
			"mss":         {"accept", mssRules("gtm")},
			"postrouting": {"accept", nil},
			"pol-in-gtm": {"", []string{
				`ip saddr @gtm.any.v4 ip daddr 192.168.254.11 counter accept comment "rule 1"`,
				`counter drop comment "default deny"`,
			}},
		},
		wantSets: map[string]string{
			"gtm.any.v4": `ipv4_addr "any" { 10.20.0.0/16, 172.16.0.0/16, 192.168.254.0/24 }`,
		},
	}, {
		name: "database, strict: rules before the open ports, deny kept, services grouped",
		rs: Ruleset{Strict: true, AllowTCP: []uint16{22}, Overlays: []Overlay{{
			Iface: "gtdb", Addrs: addrs("192.168.254.11"), Prefixes: pfx("192.168.254.0/24"),
			Policy: compileRules(t, n, idDB,
				"allow from tag:web to members on tcp/5432",
				"deny from tag:web to any on tcp/22",
				"allow from tag:web,192.168.254.30,192.168.254.31 to tag:db on tcp/8000-8100,tcp/8080,tcp/8101,udp/53,icmp",
				"allow from any to 172.16.0.0/16"),
		}}},
		want: map[string]chainDescs{
			"input": {"drop", cat(inputHead, metaGuard("gtdb"), []string{antiSpoof("gtdb", "192.168.254.11")}, ctRules,
				[]string{`iifname "gtdb" jump pol-in-gtdb`, "tcp dport { 22 } accept"}, strictTail)},
			"forward":     {"drop", cat(metaGuard("gtdb"), ctRules, []string{`oifname "gtdb" iifname != "gtdb" drop`, `iifname "gtdb" drop`})},
			"mss":         {"accept", mssRules("gtdb")},
			"postrouting": {"accept", nil},
			"pol-in-gtdb": {"", []string{
				`ip saddr @gtdb.tag-web.v4 ip daddr 192.168.254.11 tcp dport 5432 counter accept comment "rule 1"`,
				`ip saddr @gtdb.tag-web.v4 ip daddr 192.168.254.11 tcp dport 22 counter drop comment "rule 2"`,
				`ip saddr @gtdb.tag-web.v4 ip daddr 192.168.254.11 tcp dport 8000-8101 counter accept comment "rule 3"`,
				`ip saddr @gtdb.tag-web.v4 ip daddr 192.168.254.11 udp dport 53 counter accept comment "rule 3"`,
				`ip saddr @gtdb.tag-web.v4 ip daddr 192.168.254.11 meta l4proto icmp counter accept comment "rule 3"`,
				`ip saddr 192.168.254.30/31 ip daddr 192.168.254.11 tcp dport 8000-8101 counter accept comment "rule 3"`,
				`ip saddr 192.168.254.30/31 ip daddr 192.168.254.11 udp dport 53 counter accept comment "rule 3"`,
				`ip saddr 192.168.254.30/31 ip daddr 192.168.254.11 meta l4proto icmp counter accept comment "rule 3"`,
				`counter drop comment "default deny"`,
			}},
		},
		wantSets: map[string]string{
			"gtdb.tag-web.v4": `ipv4_addr "tag:web" { 192.168.254.21 }`,
		},
	}, {
		name: "an empty Ruleset: nothing but the default deny",
		rs: Ruleset{Overlays: []Overlay{{
			Iface: "gte", Addrs: addrs("192.168.254.30"), Prefixes: pfx("192.168.254.0/24"),
			Policy: compileRules(t, n, idOther, "allow from tag:web to tag:db on tcp/5432"),
		}}},
		want: map[string]chainDescs{
			"input": {"accept", cat(inputHead, metaGuard("gte"), []string{antiSpoof("gte", "192.168.254.30")}, ctGuard,
				[]string{`iifname "gte" jump pol-in-gte`})},
			"forward":     {"accept", cat(metaGuard("gte"), ctGuard, []string{`oifname "gte" iifname != "gte" drop`, `iifname "gte" drop`})},
			"mss":         {"accept", mssRules("gte")},
			"postrouting": {"accept", nil},
			"pol-in-gte":  {"", []string{`counter drop comment "default deny"`}},
		},
		wantSets: map[string]string{},
	}, {
		name: "dual-stack gateway: Input then Forward rules on input, Forward rules into the subnets, empty sets kept",
		rs: Ruleset{Strict: true, Overlays: []Overlay{{
			Iface: "gtgw", Addrs: addrs("192.168.254.10"), Prefixes: pfx("192.168.254.0/24", "fd8a::/64"),
			Gateway: &Gateway{Serve: pfx("172.16.0.0/16", "10.20.0.0/16", "fd00:16::/64"), LAN: "eth1"},
			Policy: compileRules(t, n, idGW,
				"allow from tag:web to tag:db on tcp/5432", // not the gateway's
				"deny from members to 172.16.0.0/16 on tcp/22",
				"allow from tag:web,192.168.254.30,192.168.254.40 to 172.16.0.0/16,fd00:16::/64 on udp/53,icmp",
				"allow from tag:nobody to any",
				"allow from tag:gw to tag:gw on tcp"),
		}}},
		want: map[string]chainDescs{
			"input": {"drop", cat(inputHead, metaGuard("gtgw"), []string{antiSpoof("gtgw", "192.168.254.10")}, ctRules,
				[]string{`iifname "gtgw" jump pol-in-gtgw`}, strictTail)},
			"forward": {"drop", cat(metaGuard("gtgw"), ctRules, []string{
				`iifname "eth1" oifname "gtgw" ip saddr { 10.20.0.0/16, 172.16.0.0/16 } ip daddr { 192.168.254.0/24 } accept`,
				`iifname "gtgw" oifname "eth1" ip daddr { 10.20.0.0/16, 172.16.0.0/16 } jump pol-fwd-gtgw`,
				`iifname "eth1" oifname "gtgw" ip6 saddr { fd00:16::/64 } ip6 daddr { fd8a::/64 } accept`,
				`iifname "gtgw" oifname "eth1" ip6 daddr { fd00:16::/64 } jump pol-fwd-gtgw`,
				`oifname "gtgw" iifname != "gtgw" drop`,
				`iifname "gtgw" drop`,
			})},
			"mss":         {"accept", mssRules("gtgw")},
			"postrouting": {"accept", nil},
			"pol-in-gtgw": {"", []string{
				// Input: to the gateway's own address.
				`ip saddr @gtgw.tag-nobody.v4 ip daddr 192.168.254.10 counter accept comment "rule 4"`,
				`ip saddr @gtgw.tag-gw.v4 ip daddr 192.168.254.10 meta l4proto tcp counter accept comment "rule 5"`,
				// Forward: to its own addresses in the subnets it serves.
				`ip saddr @gtgw.members.v4 ip daddr 172.16.0.0/16 tcp dport 22 counter drop comment "rule 2"`,
				`ip saddr @gtgw.tag-web.v4 ip daddr 172.16.0.0/16 udp dport 53 counter accept comment "rule 3"`,
				`ip saddr @gtgw.tag-web.v4 ip daddr 172.16.0.0/16 meta l4proto icmp counter accept comment "rule 3"`,
				`ip saddr { 192.168.254.30, 192.168.254.40 } ip daddr 172.16.0.0/16 udp dport 53 counter accept comment "rule 3"`,
				`ip saddr { 192.168.254.30, 192.168.254.40 } ip daddr 172.16.0.0/16 meta l4proto icmp counter accept comment "rule 3"`,
				`ip6 saddr @gtgw.tag-web.v6 ip6 daddr fd00:16::/64 udp dport 53 counter accept comment "rule 3"`,
				`ip6 saddr @gtgw.tag-web.v6 ip6 daddr fd00:16::/64 meta l4proto ipv6-icmp counter accept comment "rule 3"`,
				`ip saddr @gtgw.tag-nobody.v4 ip daddr { 10.20.0.0/16, 172.16.0.0/16 } counter accept comment "rule 4"`,
				`ip6 saddr @gtgw.tag-nobody.v6 ip6 daddr fd00:16::/64 counter accept comment "rule 4"`,
				`counter drop comment "default deny"`,
			}},
			"pol-fwd-gtgw": {"", []string{
				`ip saddr @gtgw.members.v4 ip daddr 172.16.0.0/16 tcp dport 22 counter drop comment "rule 2"`,
				`ip saddr @gtgw.tag-web.v4 ip daddr 172.16.0.0/16 udp dport 53 counter accept comment "rule 3"`,
				`ip saddr @gtgw.tag-web.v4 ip daddr 172.16.0.0/16 meta l4proto icmp counter accept comment "rule 3"`,
				`ip saddr { 192.168.254.30, 192.168.254.40 } ip daddr 172.16.0.0/16 udp dport 53 counter accept comment "rule 3"`,
				`ip saddr { 192.168.254.30, 192.168.254.40 } ip daddr 172.16.0.0/16 meta l4proto icmp counter accept comment "rule 3"`,
				`ip6 saddr @gtgw.tag-web.v6 ip6 daddr fd00:16::/64 udp dport 53 counter accept comment "rule 3"`,
				`ip6 saddr @gtgw.tag-web.v6 ip6 daddr fd00:16::/64 meta l4proto ipv6-icmp counter accept comment "rule 3"`,
				`ip saddr @gtgw.tag-nobody.v4 ip daddr { 10.20.0.0/16, 172.16.0.0/16 } counter accept comment "rule 4"`,
				`ip6 saddr @gtgw.tag-nobody.v6 ip6 daddr fd00:16::/64 counter accept comment "rule 4"`,
				`counter drop comment "default deny"`,
			}},
		},
		wantSets: map[string]string{
			"gtgw.members.v4":    `ipv4_addr "members" { 192.168.254.0/24 }`,
			"gtgw.tag-gw.v4":     `ipv4_addr "tag:gw" { }`, // its own tag: filled from its peers
			"gtgw.tag-nobody.v4": `ipv4_addr "tag:nobody" { }`,
			"gtgw.tag-nobody.v6": `ipv6_addr "tag:nobody" { }`,
			"gtgw.tag-web.v4":    `ipv4_addr "tag:web" { 192.168.254.21 }`,
			"gtgw.tag-web.v6":    `ipv6_addr "tag:web" { fd8a::21 }`,
		},
	}, {
		name: "two overlays, rules on one: the other filtered as before",
		rs: Ruleset{Overlays: []Overlay{
			{Iface: "gta", Addrs: addrs("192.168.254.11"), Prefixes: pfx("192.168.254.0/24"),
				Policy: compileRules(t, n, idDB, "allow from member:0000000021 to members on udp/5000-5100,udp/4000")},
			{Iface: "gtb", Addrs: addrs("10.99.0.5"), Prefixes: pfx("10.99.0.0/24")},
		}},
		want: map[string]chainDescs{
			"input": {"accept", cat(inputHead, metaGuard("gta", "gtb"), []string{antiSpoof("gta", "192.168.254.11"), antiSpoof("gtb", "10.99.0.5")}, ctGuard,
				[]string{`iifname "gta" jump pol-in-gta`})},
			"forward": {"accept", cat(metaGuard("gta", "gtb"), ctGuard, []string{
				`oifname "gta" iifname != "gta" drop`, `iifname "gta" drop`,
				`oifname "gtb" iifname != "gtb" drop`, `iifname "gtb" drop`,
			})},
			"mss":         {"accept", cat(mssRules("gta"), mssRules("gtb"))},
			"postrouting": {"accept", nil},
			"pol-in-gta": {"", []string{
				`ip saddr @gta.member-0000000021.v4 ip daddr 192.168.254.11 udp dport { 4000, 5000-5100 } counter accept comment "rule 1"`,
				`counter drop comment "default deny"`,
			}},
		},
		wantSets: map[string]string{
			"gta.member-0000000021.v4": `ipv4_addr "member:0000000021" { 192.168.254.21 }`,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.rs.Validate(); err != nil {
				t.Fatalf("test ruleset is invalid: %v", err)
			}
			p := compile(tt.rs)
			if diff := cmp.Diff(tt.want, descs(p)); diff != "" {
				t.Errorf("compile() chains mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantSets, setDescs(p)); diff != "" {
				t.Errorf("compile() sets mismatch (-want +got):\n%s", diff)
			}
			checkPlan(t, p)
			if diff := cmp.Diff(descs(p), descs(compile(tt.rs))); diff != "" {
				t.Errorf("compile() is not deterministic:\n%s", diff)
			}
		})
	}
}

// TestSetNamesFit: a named set's name tells its overlay, selector and
// family apart, and the longest fits the kernel (NFT_NAME_MAXLEN, 256 with
// the NUL). Check holds set keys to selectors, and Validate interfaces to
// 15 bytes.
func TestSetNamesFit(t *testing.T) {
	longIface := strings.Repeat("i", 15)
	longTag := "tag:" + strings.Repeat("t", 32) // names.MaxTag
	for _, key := range []string{longTag, "member:0123456789", "members", "any"} {
		if _, err := policy.ParseSelector(key); err != nil {
			t.Fatalf("%s is not a selector: %v", key, err)
		}
		if name := setName(longIface, key, ipv6); len(name) > 255 {
			t.Errorf("set name %s is %d bytes, more than the kernel's 255", name, len(name))
		}
	}
	if _, err := policy.ParseSelector("tag:" + strings.Repeat("t", 33)); err == nil {
		t.Error("a 33-character tag is a selector: the bound above no longer holds")
	}
	// Interface names may hold dashes; selectors never hold a dot.
	if a, b := setName("a", "tag:b-any", ipv4), setName("a-tag-b", "any", ipv4); a == b {
		t.Errorf("two sets share the name %s", a)
	}
	if got, want := setName("gt8056c2e2", "tag:web", ipv4), "gt8056c2e2.tag-web.v4"; got != want {
		t.Errorf("setName = %s, want %s", got, want)
	}
}

func TestRuleComments(t *testing.T) {
	for n, want := range map[string]int{"rule 1": 1, "rule 1000": 1000, "default deny": 0} {
		if got, ok := parseRuleComment(n); !ok || got != want {
			t.Errorf("parseRuleComment(%q) = %d, %v; want %d", n, got, ok, want)
		}
	}
	for _, bad := range []string{"", "rule 0", "rule -1", "rule 01", "rule 3 ", "rule", "rule x", "Rule 3", "default"} {
		if n, ok := parseRuleComment(bad); ok {
			t.Errorf("parseRuleComment(%q) = %d, want not a rule", bad, n)
		}
	}
	// User data as libnftnl writes it, and some it would not.
	for _, tc := range []struct {
		ud   []byte
		want string
	}{
		{[]byte("\x00\x07rule 3\x00"), "rule 3"},
		{[]byte("\x01\x01x\x00\x07rule 3\x00"), "rule 3"},
		{[]byte("\x00\x09rule 3\x00"), ""}, // runs past the end
		{[]byte("\x00"), ""},
		{nil, ""},
	} {
		if got := udataComment(tc.ud); got != tc.want {
			t.Errorf("udataComment(%q) = %q, want %q", tc.ud, got, tc.want)
		}
	}
}
