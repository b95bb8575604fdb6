package firewall

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Rules every input chain starts or continues with.
var (
	inputHead  = []string{`iif "lo" accept`}
	ctRules    = []string{"ct state invalid drop", "ct state established,related accept"}
	ctGuard    = []string{"ct state established,related accept"} // guard mode drops nothing conntrack calls invalid
	strictTail = []string{
		"meta nfproto ipv4 udp sport 67 udp dport 68 accept",
		"meta nfproto ipv6 udp sport 547 udp dport 546 accept",
		"icmp type { echo-request, destination-unreachable, time-exceeded, parameter-problem } limit rate 20/second burst 50 packets accept",
		"icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept",
		"icmpv6 type { echo-request, destination-unreachable, packet-too-big, time-exceeded, parameter-problem } limit rate 20/second burst 50 packets accept",
	}
)

// metaGuard is what the input and forward chains hold first for each
// overlay: nothing from it to a cloud's metadata service.
func metaGuard(ifaces ...string) []string {
	var out []string
	for _, i := range ifaces {
		out = append(out, `iifname "`+i+`" ip daddr { 169.254.0.0/16 } drop`, `iifname "`+i+`" ip6 daddr { fd00:ec2::254, fe80::/10 } drop`)
	}
	return out
}

func cat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func mssRules(iface string) []string {
	return []string{
		`oifname "` + iface + `" tcp flags syn / syn,rst tcp option maxseg size set rt mtu`,
		`iifname "` + iface + `" tcp flags syn / syn,rst tcp option maxseg size set rt mtu`,
	}
}

// descs renders a plan as chain name -> policy and rules in nft words. A
// regular chain has no policy: "".
type chainDescs struct {
	Policy string
	Rules  []string
}

func descs(p plan) map[string]chainDescs {
	out := map[string]chainDescs{}
	for _, ch := range p.chains {
		cd := chainDescs{Policy: "accept"}
		switch {
		case ch.hook == nil:
			cd.Policy = ""
		case ch.policy == nftables.ChainPolicyDrop:
			cd.Policy = "drop"
		}
		for _, r := range ch.rules {
			cd.Rules = append(cd.Rules, r.desc)
		}
		out[ch.name] = cd
	}
	return out
}

func TestCompile(t *testing.T) {
	const ov = "gt8056c2e2"
	tests := []struct {
		name string
		rs   Ruleset
		want map[string]chainDescs
	}{{
		name: "empty ruleset: guards only, policies accept",
		rs:   Ruleset{},
		want: map[string]chainDescs{
			"input":       {"accept", cat(inputHead, ctGuard)},
			"forward":     {"accept", ctGuard},
			"mss":         {"accept", nil},
			"postrouting": {"accept", nil},
		},
	}, {
		name: "strict without ports: no empty port sets",
		rs:   Ruleset{Strict: true},
		want: map[string]chainDescs{
			"input":       {"drop", cat(inputHead, ctRules, strictTail)},
			"forward":     {"drop", ctRules},
			"mss":         {"accept", nil},
			"postrouting": {"accept", nil},
		},
	}, {
		name: "seed AWS gate: one NIC, LAN == WAN, NAT instance",
		rs:   seedGateway(),
		want: map[string]chainDescs{
			"input": {"drop", cat(inputHead, metaGuard(ov),
				[]string{`iifname != "gt8056c2e2" ip daddr { 192.168.254.11 } drop`},
				ctRules,
				[]string{"udp dport { 51820 } accept", "tcp dport { 22, 8443 } accept"},
				strictTail)},
			"forward": {"drop", cat(metaGuard(ov), ctRules, []string{
				`iifname "eth0" oifname "gt8056c2e2" ip saddr { 172.16.0.0/16 } ip daddr { 192.168.254.0/24 } accept`,
				`iifname "gt8056c2e2" oifname "eth0" ip daddr { 172.16.0.0/16 } accept`,
				`iifname "eth0" oifname "eth0" ip saddr { 172.16.0.0/16 } ip daddr != { 172.16.0.0/16, 192.168.254.0/24 } accept`,
				`oifname "gt8056c2e2" iifname != "gt8056c2e2" drop`,
				`iifname "gt8056c2e2" drop`,
			})},
			"mss": {"accept", mssRules(ov)},
			"postrouting": {"accept", []string{
				`oifname "eth0" ip saddr { 172.16.0.0/16 } ip daddr != { 172.16.0.0/16, 192.168.254.0/24 } masquerade`,
			}},
		},
	}, {
		name: "DigitalOcean gate: masquerade to LAN, no internet NAT, no WAN; answers health questions from the overlay",
		rs: Ruleset{
			Strict:   true,
			AllowUDP: []uint16{51820, 51820},
			Overlays: []Overlay{{
				Iface: "gtdo", Addrs: addrs("192.168.254.170"), Prefixes: pfx("192.168.254.0/24", "172.16.0.0/16"),
				Gateway:    &Gateway{Serve: pfx("10.10.0.0/16"), LAN: "eth1", MasqueradeLAN: true, MasqueradeInternet: true},
				HealthPort: 51819,
			}},
		},
		want: map[string]chainDescs{
			"input": {"drop", cat(inputHead, metaGuard("gtdo"),
				[]string{`iifname != "gtdo" ip daddr { 192.168.254.170 } drop`},
				ctRules,
				[]string{`iifname "gtdo" ip daddr { 192.168.254.170 } udp dport { 51819 } accept`},
				[]string{"udp dport { 51820 } accept"},
				strictTail)},
			"forward": {"drop", cat(metaGuard("gtdo"), ctRules, []string{
				`iifname "eth1" oifname "gtdo" ip saddr { 10.10.0.0/16 } ip daddr { 172.16.0.0/16, 192.168.254.0/24 } accept`,
				`iifname "gtdo" oifname "eth1" ip daddr { 10.10.0.0/16 } accept`,
				`oifname "gtdo" iifname != "gtdo" drop`,
				`iifname "gtdo" drop`,
			})},
			"mss": {"accept", mssRules("gtdo")},
			"postrouting": {"accept", []string{
				`oifname "eth1" iifname "gtdo" ip daddr { 10.10.0.0/16 } masquerade`,
			}},
		},
	}, {
		name: "dual-stack member of two networks, not a gateway, lenient",
		rs: Ruleset{
			AllowTCP: []uint16{22}, // ignored without Strict
			Overlays: []Overlay{
				{Iface: "gta", Addrs: addrs("192.168.254.170", "fd8a::170"), Prefixes: pfx("192.168.254.0/24", "fd8a::/64")},
				{Iface: "gtb", Addrs: addrs("10.99.0.5"), Prefixes: pfx("10.99.0.0/24")},
			},
		},
		want: map[string]chainDescs{
			"input": {"accept", cat(inputHead, metaGuard("gta", "gtb"), []string{
				`iifname != "gta" ip daddr { 192.168.254.170 } drop`,
				`iifname != "gta" ip6 daddr { fd8a::170 } drop`,
				`iifname != "gtb" ip daddr { 10.99.0.5 } drop`,
			}, ctGuard)},
			"forward": {"accept", cat(metaGuard("gta", "gtb"), ctGuard, []string{
				`oifname "gta" iifname != "gta" drop`,
				`iifname "gta" drop`,
				`oifname "gtb" iifname != "gtb" drop`,
				`iifname "gtb" drop`,
			})},
			"mss":         {"accept", cat(mssRules("gta"), mssRules("gtb"))},
			"postrouting": {"accept", nil},
		},
	}, {
		name: "dual-stack gateway, separate WAN, merged prefixes",
		rs: Ruleset{
			Overlays: []Overlay{{
				Iface:    "gtx",
				Prefixes: pfx("192.168.254.0/24", "192.168.255.0/24", "10.0.0.0/8", "10.1.0.0/16", "fd8a::/64"),
				Gateway: &Gateway{
					Serve: pfx("172.16.0.0/16", "2001:db8::/56"), LAN: "eth1", WAN: "eth0", MasqueradeInternet: true,
				},
			}},
		},
		want: map[string]chainDescs{
			"input": {"accept", cat(inputHead, metaGuard("gtx"), ctGuard)},
			"forward": {"accept", cat(metaGuard("gtx"), ctGuard, []string{
				`iifname "eth1" oifname "gtx" ip saddr { 172.16.0.0/16 } ip daddr { 10.0.0.0/8, 192.168.254.0/23 } accept`,
				`iifname "gtx" oifname "eth1" ip daddr { 172.16.0.0/16 } accept`,
				`iifname "eth1" oifname "eth0" ip saddr { 172.16.0.0/16 } ip daddr != { 10.0.0.0/8, 172.16.0.0/16, 192.168.254.0/23 } accept`,
				`iifname "eth1" oifname "gtx" ip6 saddr { 2001:db8::/56 } ip6 daddr { fd8a::/64 } accept`,
				`iifname "gtx" oifname "eth1" ip6 daddr { 2001:db8::/56 } accept`,
				`iifname "eth1" oifname "eth0" ip6 saddr { 2001:db8::/56 } ip6 daddr != { 2001:db8::/56, fd8a::/64 } accept`,
				`oifname "gtx" iifname != "gtx" drop`,
				`iifname "gtx" drop`,
			})},
			"mss": {"accept", mssRules("gtx")},
			"postrouting": {"accept", []string{
				`oifname "eth0" ip saddr { 172.16.0.0/16 } ip daddr != { 10.0.0.0/8, 172.16.0.0/16, 192.168.254.0/23 } masquerade`,
				`oifname "eth0" ip6 saddr { 2001:db8::/56 } ip6 daddr != { 2001:db8::/56, fd8a::/64 } masquerade`,
			}},
		},
	}, {
		name: "gateway serving nothing yet: no gateway rules, guard stays",
		rs: Ruleset{Overlays: []Overlay{{
			Iface: "gty", Prefixes: pfx("192.168.254.0/24"),
			Gateway: &Gateway{LAN: "eth0", WAN: "eth0", MasqueradeLAN: true, MasqueradeInternet: true},
		}}},
		want: map[string]chainDescs{
			"input":       {"accept", cat(inputHead, metaGuard("gty"), ctGuard)},
			"forward":     {"accept", cat(metaGuard("gty"), ctGuard, []string{`oifname "gty" iifname != "gty" drop`, `iifname "gty" drop`})},
			"mss":         {"accept", mssRules("gty")},
			"postrouting": {"accept", nil},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.rs.Validate(); err != nil {
				t.Fatalf("test ruleset is invalid: %v", err)
			}
			p := compile(tt.rs)
			if diff := cmp.Diff(tt.want, descs(p)); diff != "" {
				t.Errorf("compile() mismatch (-want +got):\n%s", diff)
			}
			checkPlan(t, p)
			if diff := cmp.Diff(descs(p), descs(compile(tt.rs))); diff != "" {
				t.Errorf("compile() is not deterministic:\n%s", diff)
			}
		})
	}
}

// checkPlan checks what every plan must hold: the base chains in hook
// order with the right types, then regular chains only, each the target of
// a jump; set IDs unique and each lookup naming a set of its own rule or a
// named set of the plan; no empty anonymous set; named sets with unique
// names that fit the kernel; every rule ending in an action.
func checkPlan(t *testing.T, p plan) {
	t.Helper()
	wantChains := []struct {
		name string
		typ  nftables.ChainType
		hook *nftables.ChainHook
		prio *nftables.ChainPriority
	}{
		{"input", nftables.ChainTypeFilter, nftables.ChainHookInput, nftables.ChainPriorityFilter},
		{"forward", nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter},
		{"mss", nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityMangle},
		{"postrouting", nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource},
	}
	if len(p.chains) < len(wantChains) {
		t.Fatalf("plan has %d chains, want at least %d", len(p.chains), len(wantChains))
	}
	ids := map[uint32]bool{}
	named := map[string]uint32{}
	for _, s := range p.sets {
		if _, dup := named[s.name]; dup {
			t.Errorf("named set %s twice", s.name)
		}
		if len(s.name) > 255 {
			t.Errorf("named set %s: name longer than the kernel's 255 bytes", s.name)
		}
		if ids[s.id] {
			t.Errorf("named set %s: set ID %d used twice", s.name, s.id)
		}
		named[s.name], ids[s.id] = s.id, true
	}
	regular, jumped := map[string]bool{}, map[string]bool{}
	for i, ch := range p.chains {
		if i < len(wantChains) {
			w := wantChains[i]
			if ch.name != w.name || ch.typ != w.typ || ch.hook == nil || *ch.hook != *w.hook || *ch.prio != *w.prio {
				t.Errorf("chain %d = %s %s hook %v prio %v, want %s %s hook %d prio %d",
					i, ch.name, ch.typ, ch.hook, ch.prio, w.name, w.typ, *w.hook, *w.prio)
			}
		} else {
			if ch.hook != nil || ch.prio != nil || ch.typ != "" || !strings.HasPrefix(ch.name, "pol-") || regular[ch.name] {
				t.Errorf("chain %d = %s %s: want a regular chain pol-..., once", i, ch.name, ch.typ)
			}
			regular[ch.name] = true
		}
		for _, r := range ch.rules {
			own := map[uint32]bool{}
			for _, s := range r.sets {
				if ids[s.id] {
					t.Errorf("%s: rule %q: set ID %d used twice", ch.name, r.desc, s.id)
				}
				ids[s.id], own[s.id] = true, true
				if len(s.elems) == 0 {
					t.Errorf("%s: rule %q: empty set %d", ch.name, r.desc, s.id)
				}
			}
			for _, e := range r.exprs {
				l, ok := e.(*expr.Lookup)
				switch {
				case !ok:
				case l.SetName == anonSetName:
					if !own[l.SetID] {
						t.Errorf("%s: rule %q: lookup of set %d not created with the rule", ch.name, r.desc, l.SetID)
					}
				case named[l.SetName] != l.SetID || l.SetID == 0:
					t.Errorf("%s: rule %q: lookup of %s (ID %d), not a named set of the plan", ch.name, r.desc, l.SetName, l.SetID)
				}
			}
			switch last := r.exprs[len(r.exprs)-1].(type) {
			case *expr.Verdict:
				if last.Kind == expr.VerdictJump {
					jumped[last.Chain] = true
				}
			case *expr.Masq, *expr.Exthdr:
			default:
				t.Errorf("%s: rule %q ends with %T, not an action", ch.name, r.desc, last)
			}
		}
	}
	if diff := cmp.Diff(regular, jumped); diff != "" {
		t.Errorf("regular chains and jump targets differ (-chains +jumps):\n%s", diff)
	}
}

func TestIntervalElems(t *testing.T) {
	type el struct {
		Key string
		End bool
	}
	tests := []struct {
		fam  family
		in   []netip.Prefix
		want []el
	}{
		{ipv4, pfx("172.16.0.0/16"), []el{{"0.0.0.0", true}, {"172.16.0.0", false}, {"172.17.0.0", true}}},
		{ipv4, pfx("10.0.0.1/32", "10.0.0.0/31", "10.0.0.2/31"), []el{{"0.0.0.0", true}, {"10.0.0.0", false}, {"10.0.0.4", true}}},
		{ipv4, pfx("0.0.0.0/0", "10.0.0.0/8"), []el{{"0.0.0.0", false}}},
		{ipv4, pfx("0.0.0.0/8"), []el{{"0.0.0.0", false}, {"1.0.0.0", true}}},
		{ipv4, pfx("255.255.255.255/32"), []el{{"0.0.0.0", true}, {"255.255.255.255", false}}},
		{ipv6, pfx("fd8a::/64", "::/0"), []el{{"::", false}}},
		{ipv6, pfx("fd8a::11/128"), []el{{"::", true}, {"fd8a::11", false}, {"fd8a::12", true}}},
	}
	for _, tt := range tests {
		var got []el
		for _, e := range intervalElems(tt.fam, tt.in) {
			a, _ := netip.AddrFromSlice(e.Key)
			got = append(got, el{a.String(), e.IntervalEnd})
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("intervalElems(%v) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}
