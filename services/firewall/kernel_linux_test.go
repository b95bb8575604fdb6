package firewall

import (
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gatenet/gate/services/nstest"
	"github.com/gatenet/gate/services/policy"
	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// newConn returns a lasting conn in the test's namespace and makes sure
// Gate's table is gone when the test ends.
func newConn(t *testing.T) *nftables.Conn {
	t.Helper()
	nstest.Current(t)
	c, err := nftables.New(nftables.AsLasting())
	if err != nil {
		t.Fatalf("nftables.New: %v", err)
	}
	t.Cleanup(func() {
		if err := Remove(c); err != nil {
			t.Errorf("Remove: %v", err)
		}
		c.CloseLasting()
	})
	if err := Remove(c); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	return c
}

// listGate is `nft list table inet gate`.
func listGate(t *testing.T) string {
	t.Helper()
	return nstest.Run(t, "nft", "list", "table", "inet", TableName)
}

// representative is the seed's AWS gate (no rules from its controller)
// plus a second, dual-stack network on which the node is a
// DigitalOcean-style gateway (masquerade to LAN) that enforces rules.
func representative() Ruleset {
	rs := seedGateway()
	rs.Overlays = append(rs.Overlays, Overlay{
		Iface:    "gtdo",
		Addrs:    addrs("10.77.0.1", "fd8a::1"),
		Prefixes: pfx("10.77.0.0/24", "fd8a::/64", "10.78.0.0/16"),
		Gateway:  &Gateway{Serve: pfx("10.10.0.0/16", "fd00:10::/64"), LAN: "eth1", MasqueradeLAN: true},
		Policy:   representativeRules,
	})
	return rs
}

// representativeRules are gtdo's: its own network's rules, compiled for it.
var representativeRules = func() *policy.Ruleset {
	n := policy.Network{
		CIDR: netip.MustParsePrefix("10.77.0.0/24"),
		Routes: []policy.Route{
			route("10.10.0.0/16", "10.77.0.1"), route("fd00:10::/64", "10.77.0.1"), route("10.78.0.0/16", "10.77.0.2"),
		},
		Members: []policy.Member{
			member("0000000001", []string{"10.77.0.1", "fd8a::1"}, "gw"),
			member("0000000002", []string{"10.77.0.2", "fd8a::2"}, "web"),
		},
	}
	return compileRules(&testing.T{}, n, "0000000001",
		"allow from tag:web to tag:gw on tcp/2200-2299,icmp",
		"deny from 10.78.0.0/16 to 10.10.0.0/16",
		"allow from any,tag:qa to 10.10.0.0/16,fd00:10::/64 on tcp/443,udp/53,udp/5000-5100")
}()

var (
	setItems = regexp.MustCompile(`\{ ([^{}]*) \}`)
	counts   = regexp.MustCompile(`counter packets [0-9]+ bytes [0-9]+`)
)

// normalize sorts the items of every set in a rule (the kernel lists hash
// set elements in its own order) and leaves out what counters counted.
func normalize(rule string) string {
	rule = counts.ReplaceAllString(rule, "counter")
	return setItems.ReplaceAllStringFunc(rule, func(s string) string {
		items := strings.Split(s[2:len(s)-2], ", ")
		slices.Sort(items)
		return "{ " + strings.Join(items, ", ") + " }"
	})
}

// parseListing turns nft's listing of one table into chain -> policy and
// rules, normalized; a regular chain has no policy, "".
func parseListing(t *testing.T, out string) map[string]chainDescs {
	t.Helper()
	got := map[string]chainDescs{}
	var name string
	var cd chainDescs
	policy := regexp.MustCompile(`policy (accept|drop);`)
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "chain "):
			name, cd = strings.Fields(line)[1], chainDescs{}
		case name == "":
		case strings.HasPrefix(line, "type "):
			m := policy.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("no policy in %q", line)
			}
			cd.Policy = m[1]
		case line == "}":
			got[name], name = cd, ""
		case line != "":
			cd.Rules = append(cd.Rules, normalize(line))
		}
	}
	return got
}

// parseSets turns nft's listing of one table into set name -> type,
// comment and elements, as setDescs renders a plan's named sets.
func parseSets(t *testing.T, out string) map[string]string {
	t.Helper()
	got := map[string]string{}
	var name, typ, comment, elems string
	inElems := false
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "set "):
			name, typ, comment, elems = strings.Fields(line)[1], "", "", ""
		case name == "":
		case inElems || strings.HasPrefix(line, "elements = "):
			elems += " " + strings.TrimPrefix(line, "elements = ")
			inElems = !strings.HasSuffix(line, "}")
		case strings.HasPrefix(line, "type "):
			typ = strings.TrimPrefix(line, "type ")
		case strings.HasPrefix(line, "comment "):
			comment = strings.TrimPrefix(line, "comment ")
		case line == "}":
			if elems == "" {
				elems = "{ }"
			}
			got[name], name = typ+" "+comment+" "+normalize(strings.Join(strings.Fields(elems), " ")), ""
		}
	}
	return got
}

func normalized(p plan) map[string]chainDescs {
	d := descs(p)
	for name, cd := range d {
		for i, r := range cd.Rules {
			cd.Rules[i] = normalize(r)
		}
		d[name] = cd
	}
	return d
}

// TestApplyListing checks that the kernel holds what compile meant, rule
// by rule, as nft reads it back.
func TestApplyListing(t *testing.T) {
	c := newConn(t)
	rs := representative()
	if err := Apply(c, rs); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	out := listGate(t)
	if diff := cmp.Diff(normalized(compile(rs)), parseListing(t, out)); diff != "" {
		t.Errorf("kernel listing differs from the compiled rules (-compiled +listed):\n%s\nlisting:\n%s", diff, out)
	}
	wantSets := setDescs(compile(rs))
	for name, s := range wantSets {
		wantSets[name] = normalize(s)
	}
	if diff := cmp.Diff(wantSets, parseSets(t, out)); diff != "" {
		t.Errorf("kernel listing's sets differ from the compiled ones (-compiled +listed):\n%s\nlisting:\n%s", diff, out)
	}
	for _, want := range []string{
		"type filter hook input priority filter; policy drop;",
		"type filter hook forward priority filter; policy drop;",
		"type filter hook forward priority mangle; policy accept;",
		"type nat hook postrouting priority srcnat; policy accept;",
		"tcp dport { 22, 8443 } accept",
		"udp dport { 51820 } accept",
		`oifname "gt8056c2e2" tcp flags syn / syn,rst tcp option maxseg size set rt mtu`,
		`iifname "gt8056c2e2" tcp flags syn / syn,rst tcp option maxseg size set rt mtu`,
		`oifname "eth0" ip saddr { 172.16.0.0/16 } ip daddr != { 172.16.0.0/16, 192.168.254.0/24 } masquerade`,
		`oifname "eth1" iifname "gtdo" ip6 daddr { fd00:10::/64 } masquerade`,
		`iifname != "gtdo" ip6 daddr { fd8a::1 } drop`,
		`iifname "gtdo" jump pol-in-gtdo`,
		`iifname "gtdo" oifname "eth1" ip6 daddr { fd00:10::/64 } jump pol-fwd-gtdo`,
		`ip6 saddr @gtdo.tag-web.v6 ip6 daddr fd8a::1 meta l4proto ipv6-icmp counter packets 0 bytes 0 accept comment "rule 1"`,
		`ip saddr 10.78.0.0/16 ip daddr 10.10.0.0/16 counter packets 0 bytes 0 drop comment "rule 2"`,
		`udp dport { 53, 5000-5100 } counter packets 0 bytes 0 accept comment "rule 3"`,
		`counter packets 0 bytes 0 drop comment "default deny"`,
		`ip saddr @gtdo.tag-web.v4 ip daddr 10.77.0.1 tcp dport 2200-2299 counter packets 0 bytes 0 accept comment "rule 1"`,
		`comment "tag:qa"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("listing lacks %q:\n%s", want, out)
		}
	}
}

func TestApplyIdempotent(t *testing.T) {
	c := newConn(t)
	rs := representative()
	if err := Apply(c, rs); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	first := listGate(t)
	if err := Apply(c, rs); err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	if diff := cmp.Diff(first, listGate(t)); diff != "" {
		t.Errorf("second Apply changed the table (-first +second):\n%s", diff)
	}
	// Through another ruleset and back: nothing of the other remains.
	if err := Apply(c, Ruleset{}); err != nil {
		t.Fatalf("Apply(empty): %v", err)
	}
	if err := Apply(c, rs); err != nil {
		t.Fatalf("Apply again: %v", err)
	}
	if diff := cmp.Diff(first, listGate(t)); diff != "" {
		t.Errorf("Apply after another ruleset differs (-first +now):\n%s", diff)
	}
}

// TestOtherTablesUntouched: tables Gate does not own, including one with
// Gate's name in another family, survive Apply and Remove as they were.
func TestOtherTablesUntouched(t *testing.T) {
	c := newConn(t)
	nstest.Run(t, "nft", "add table inet other; add chain inet other c; add rule inet other c tcp dport 9 counter accept")
	nstest.Run(t, "nft", "add table ip gate; add chain ip gate c { type filter hook input priority 10; policy accept; }")
	t.Cleanup(func() {
		exec.Command("nft", "delete table inet other").Run()
		exec.Command("nft", "delete table ip gate").Run()
	})
	foreign := func() string {
		return nstest.Run(t, "nft", "list", "table", "inet", "other") + nstest.Run(t, "nft", "list", "table", "ip", "gate")
	}
	before := foreign()
	if err := Apply(c, representative()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if diff := cmp.Diff(before, foreign()); diff != "" {
		t.Errorf("Apply changed other tables (-before +after):\n%s", diff)
	}
	if err := Remove(c); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if diff := cmp.Diff(before, foreign()); diff != "" {
		t.Errorf("Remove changed other tables (-before +after):\n%s", diff)
	}
}

func TestRemove(t *testing.T) {
	c := newConn(t)
	if err := Apply(c, representative()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := Remove(c); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if out, err := exec.Command("nft", "list", "table", "inet", TableName).CombinedOutput(); err == nil {
		t.Errorf("table inet gate still listed after Remove:\n%s", out)
	}
	if out := nstest.Run(t, "nft", "list", "tables"); strings.Contains(out, "inet "+TableName) {
		t.Errorf("nft list tables after Remove:\n%s", out)
	}
	if err := Remove(c); err != nil {
		t.Errorf("Remove of an absent table: %v", err)
	}
}

// TestApplyInvalidKeepsRules: an invalid Ruleset is refused before the
// kernel sees anything.
func TestApplyInvalidKeepsRules(t *testing.T) {
	c := newConn(t)
	if err := Apply(c, representative()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	before := listGate(t)
	bad := representative()
	bad.Strict = false
	bad.Overlays[0].Gateway.LAN = "eth/0"
	err := Apply(c, bad)
	if err == nil || !strings.Contains(err.Error(), "Overlays[0].Gateway.LAN") {
		t.Fatalf("Apply(invalid) = %v, want an error naming Overlays[0].Gateway.LAN", err)
	}
	if diff := cmp.Diff(before, listGate(t)); diff != "" {
		t.Errorf("rules changed after a refused Apply (-before +after):\n%s", diff)
	}
}

// TestRejectedBatchKeepsRules: when the kernel refuses the batch halfway
// (here a lookup of a set that does not exist, at the very end), nothing
// of it is applied: the delete of the old table is rolled back too.
func TestRejectedBatchKeepsRules(t *testing.T) {
	c := newConn(t)
	if err := Apply(c, representative()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	before := listGate(t)
	p := compile(Ruleset{})
	last := &p.chains[len(p.chains)-1]
	last.rules = append(last.rules, rule{desc: "lookup of a missing set", exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Lookup{SourceRegister: 1, SetName: "missing", SetID: 4242},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}})
	err := apply(c, p)
	if err == nil {
		t.Fatal("apply of a batch the kernel must refuse succeeded")
	}
	t.Logf("refused as expected: %v", err)
	if diff := cmp.Diff(before, listGate(t)); diff != "" {
		t.Errorf("rules changed after a refused batch (-before +after):\n%s", diff)
	}
	// The conn is still usable.
	if err := Apply(c, Ruleset{}); err != nil {
		t.Fatalf("Apply after a refused batch: %v", err)
	}
}

// TestEncodingErrorKeepsConn: a batch that cannot be encoded (here a set
// too large for one netlink attribute) is refused before anything is
// queued on the caller's Conn, which stays usable.
func TestEncodingErrorKeepsConn(t *testing.T) {
	c := newConn(t)
	if err := Apply(c, representative()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	before := listGate(t)
	var ps []netip.Prefix
	for i := range 2000 {
		ps = append(ps, netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0, byte(i >> 8), byte(i)}), 64))
	}
	cc := &compiler{}
	p := compile(Ruleset{})
	p.chains[0].rules = append(p.chains[0].rules, cc.rule(cc.addrSet(ipv6, daddr, ps, false), verdict(expr.VerdictDrop)))
	err := apply(c, p)
	if err == nil || !strings.Contains(err.Error(), "encoding") {
		t.Fatalf("apply(unencodable) = %v, want an encoding error", err)
	}
	t.Logf("refused as expected: %v", err)
	if diff := cmp.Diff(before, listGate(t)); diff != "" {
		t.Errorf("rules changed (-before +after):\n%s", diff)
	}
	if err := Apply(c, Ruleset{Strict: true}); err != nil {
		t.Fatalf("Apply on the same Conn afterwards: %v", err)
	}
}

// TestLargeRulesetsApply: batches far beyond the socket's default
// buffers, hundreds of KiB and thousands of messages, each acknowledged
// by the kernel, apply (see batchSocket).
func TestLargeRulesetsApply(t *testing.T) {
	c := newConn(t)
	// Each set fits in its attribute; all together exceed the default
	// send buffer.
	var routes Ruleset
	for o := range 8 {
		ov := Overlay{Iface: fmt.Sprintf("gt%d", o), Prefixes: pfx("192.168.254.0/24"),
			Gateway: &Gateway{Serve: pfx("172.16.0.0/16"), LAN: "eth0", WAN: "eth0", MasqueradeInternet: true}}
		for i := range 600 {
			ov.Prefixes = append(ov.Prefixes, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(o), byte(i >> 2), byte(i << 6)}), 27))
		}
		routes.Overlays = append(routes.Overlays, ov)
	}
	if err := Apply(c, routes); err != nil {
		t.Fatalf("Apply(8 overlays of 600 prefixes): %v", err)
	}
	// A policy of as many rules as a network may have, all on one member:
	// a few thousand messages.
	var rules []string
	for i := range policy.MaxRules {
		rules = append(rules, fmt.Sprintf("allow from tag:web,192.168.254.%d to members on tcp/%d,udp/%d", i%250, 1000+i, 1000+i))
	}
	rs := Ruleset{Overlays: []Overlay{{Iface: "gtbig", Addrs: addrs("192.168.254.11"), Prefixes: pfx("192.168.254.0/24"),
		Policy: compileRules(t, testNetwork(), idDB, rules...)}}}
	if err := Apply(c, rs); err != nil {
		t.Fatalf("Apply(%d rules): %v", len(rules), err)
	}
	counts, err := Counters(c)
	if err != nil {
		t.Fatalf("Counters: %v", err)
	}
	if got := len(counts["gtbig"]); got != len(rules)+1 {
		t.Errorf("Counters has %d counts for gtbig, want %d", got, len(rules)+1)
	}
}

// TestOversizedRulesetKeepsRules: a ruleset too large for one batch (here
// rules at the bounds of package policy: 64 sources each) fails as a
// whole, before anything is sent, with an error that says so; the old
// rules stay.
func TestOversizedRulesetKeepsRules(t *testing.T) {
	c := newConn(t)
	if err := Apply(c, representative()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	before := listGate(t)
	huge := &policy.Ruleset{Sets: map[string][]netip.Prefix{}}
	var sets []string
	for i := range policy.MaxItems {
		name := fmt.Sprintf("tag:t%d", i)
		huge.Sets[name] = pfx(fmt.Sprintf("192.168.254.%d/32", i))
		sets = append(sets, name)
	}
	for i := range 500 {
		huge.Input = append(huge.Input, policy.CompiledRule{Rule: i + 1, Allow: true, FromSets: sets, To: pfx("192.168.254.11/32"),
			Services: []policy.Service{{Proto: policy.TCP, Lo: uint16(1000 + i), Hi: uint16(1000 + i)}}})
	}
	err := Apply(c, Ruleset{Overlays: []Overlay{{Iface: "gthuge", Policy: huge}}})
	if err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("Apply(huge) = %v, want a too-large error", err)
	}
	t.Logf("refused as expected: %v", err)
	if diff := cmp.Diff(before, listGate(t)); diff != "" {
		t.Errorf("rules changed (-before +after):\n%s", diff)
	}
	if err := Apply(c, Ruleset{}); err != nil {
		t.Fatalf("Apply on the same Conn afterwards: %v", err)
	}
}
