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

// representative is the seed's AWS gate plus a second, dual-stack network
// on which the node is a DigitalOcean-style gateway (masquerade to LAN).
func representative() Ruleset {
	rs := seedGateway()
	rs.Overlays = append(rs.Overlays, Overlay{
		Iface:    "gtdo",
		Addrs:    addrs("10.77.0.1", "fd8a::1"),
		Prefixes: pfx("10.77.0.0/24", "fd8a::/64", "10.78.0.0/16"),
		Gateway:  &Gateway{Serve: pfx("10.10.0.0/16", "fd00:10::/64"), LAN: "eth1", MasqueradeLAN: true},
	})
	return rs
}

var setItems = regexp.MustCompile(`\{ ([^{}]*) \}`)

// normalize sorts the items of every set in a rule: the kernel lists hash
// set elements in its own order.
func normalize(rule string) string {
	return setItems.ReplaceAllStringFunc(rule, func(s string) string {
		items := strings.Split(s[2:len(s)-2], ", ")
		slices.Sort(items)
		return "{ " + strings.Join(items, ", ") + " }"
	})
}

// parseListing turns nft's listing of one table into chain -> policy and
// rules, normalized.
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

// TestOversizedRulesetKeepsRules: a ruleset too large for one batch fails
// as a whole, with an error that says so; the old rules stay.
func TestOversizedRulesetKeepsRules(t *testing.T) {
	c := newConn(t)
	if err := Apply(c, representative()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	before := listGate(t)
	// Each set fits in its attribute; all together exceed the socket's
	// send buffer.
	var huge Ruleset
	for o := range 8 {
		ov := Overlay{Iface: fmt.Sprintf("gt%d", o), Prefixes: pfx("192.168.254.0/24"),
			Gateway: &Gateway{Serve: pfx("172.16.0.0/16"), LAN: "eth0", WAN: "eth0", MasqueradeInternet: true}}
		for i := range 600 {
			ov.Prefixes = append(ov.Prefixes, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(o), byte(i >> 2), byte(i << 6)}), 27))
		}
		huge.Overlays = append(huge.Overlays, ov)
	}
	err := Apply(c, huge)
	if err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("Apply(huge) = %v, want a too-large error", err)
	}
	if diff := cmp.Diff(before, listGate(t)); diff != "" {
		t.Errorf("rules changed (-before +after):\n%s", diff)
	}
	if err := Apply(c, Ruleset{}); err != nil {
		t.Fatalf("Apply on the same Conn afterwards: %v", err)
	}
}
