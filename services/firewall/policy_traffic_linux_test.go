package firewall

import (
	"net"
	"net/netip"
	"os/exec"
	"testing"

	"github.com/gatenet/gate/services/nstest"
	"github.com/gatenet/gate/services/policy"
	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
)

// Real traffic through a network's rules, as traffic_linux_test.go sends
// it: the test's namespace is the node, a member namespace stands for the
// rest of the overlay, behind a veth named like an overlay interface. Its
// addresses are the members of testNetwork: 192.168.254.21 is tagged web,
// 192.168.254.30 has no tag.

// overlayStandIn links the node (address node on iface) to a new member
// namespace whose eth0 holds every address in members. WireGuard carries
// IP alone, without link-local addresses or neighbour discovery; IPv6 is
// off on both ends, so that nothing arrives but what the test sends.
func overlayStandIn(t *testing.T, iface, node string, members ...string) string {
	t.Helper()
	ns := link(t, iface, node, members[0])
	for _, a := range members[1:] {
		ip(t, ns, "addr", "add", a, "dev", "eth0")
	}
	sysctl(t, "", "net.ipv6.conf."+iface+".disable_ipv6=1")
	sysctl(t, ns, "net.ipv6.conf.eth0.disable_ipv6=1")
	return ns
}

// mustReachFrom connects from src in namespace ns to addr; the server must
// see src.
func mustReachFrom(t *testing.T, ns, src, addr string) {
	t.Helper()
	got, err := askFrom(ns, src, addr)
	if err != nil {
		t.Errorf("from %s to %s: %v; want it to connect", src, addr, err)
	} else if got != src {
		t.Errorf("from %s to %s: server saw %s", src, addr, got)
	}
}

func mustNotReachFrom(t *testing.T, ns, src, addr string) {
	t.Helper()
	if got, err := askFrom(ns, src, addr); err == nil {
		t.Errorf("from %s to %s: connected (server saw %s); want it dropped", src, addr, got)
	}
}

// pings says whether one echo request from namespace ns (ping's args) is
// answered within a second.
func pings(ns string, args ...string) bool {
	return exec.Command("ip", append([]string{"netns", "exec", ns, "ping", "-c", "1", "-W", "1"}, args...)...).Run() == nil
}

// countsOf reads the counters of overlay iface's rules.
func countsOf(t *testing.T, c *nftables.Conn, iface string) []RuleCount {
	t.Helper()
	all, err := Counters(c)
	if err != nil {
		t.Fatalf("Counters: %v", err)
	}
	return all[iface]
}

// countOf is the count of rule n in chain among rcs.
func countOf(t *testing.T, rcs []RuleCount, chain string, n int) RuleCount {
	t.Helper()
	for _, rc := range rcs {
		if rc.Chain == chain && rc.Rule == n {
			return rc
		}
	}
	t.Errorf("no count for %s rule %d among %+v", chain, n, rcs)
	return RuleCount{}
}

// order is the chain and rule of each count, in order.
func order(rcs []RuleCount) []string {
	var out []string
	for _, rc := range rcs {
		out = append(out, rc.Chain+" "+ruleComment(rc.Rule))
	}
	return out
}

// TestPolicyDefaultAllowsEverything: under a new network's one rule,
// "allow from any to any", everything from the overlay passes, as it did
// before rules, in strict mode too, and the rule counts it.
func TestPolicyDefaultAllowsEverything(t *testing.T) {
	c := newConn(t)
	member := overlayStandIn(t, "gtpa0", "192.168.254.11/24", "192.168.254.21/24", "192.168.254.30/24")
	serve(t, "", "192.168.254.11:5432")
	serve(t, "", "192.168.254.11:80")
	err := Apply(c, Ruleset{Strict: true, AllowUDP: []uint16{51820}, Overlays: []Overlay{{
		Iface: "gtpa0", Addrs: addrs("192.168.254.11"), Prefixes: pfx("192.168.254.0/24"),
		Policy: compileRules(t, testNetwork(), idDB, policy.DefaultRules().String()),
	}}})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	mustReachFrom(t, member, "192.168.254.21", "192.168.254.11:5432")
	mustReachFrom(t, member, "192.168.254.30", "192.168.254.11:80")
	if !pings(member, "-I", "192.168.254.30", "192.168.254.11") {
		t.Error("echo request from 192.168.254.30 not answered")
	}
	rcs := countsOf(t, c, "gtpa0")
	if diff := cmp.Diff([]string{"input rule 1", "input rule 0"}, order(rcs)); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	// The first packet of each connection, and the echo request.
	if rc := countOf(t, rcs, "input", 1); !rc.Allow || rc.Packets < 3 || rc.Bytes == 0 {
		t.Errorf("rule 1 counted %+v, want an allow with at least 3 packets", rc)
	}
	if rc := countOf(t, rcs, "input", 0); rc.Allow || rc.Packets != 0 {
		t.Errorf("the default deny counted %+v, want a deny of nothing", rc)
	}
}

// TestPolicyTagToPort: "allow from tag:web to members on tcp/5432" lets
// the web member reach port 5432 and nothing else, and lets no one else
// in: not through a port strict mode opens to everyone, not with ICMP.
// Replies to the node's own connections pass.
func TestPolicyTagToPort(t *testing.T) {
	c := newConn(t)
	member := overlayStandIn(t, "gtpb0", "192.168.254.11/24", "192.168.254.21/24", "192.168.254.30/24")
	serve(t, "", "192.168.254.11:5432")
	serve(t, "", "192.168.254.11:5433")
	serve(t, member, "192.168.254.21:7000")
	err := Apply(c, Ruleset{Strict: true, AllowTCP: []uint16{5433}, Overlays: []Overlay{{
		Iface: "gtpb0", Addrs: addrs("192.168.254.11"), Prefixes: pfx("192.168.254.0/24"),
		Policy: compileRules(t, testNetwork(), idDB, "allow from tag:web to members on tcp/5432"),
	}}})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	mustReachFrom(t, member, "192.168.254.21", "192.168.254.11:5432")
	mustNotReachFrom(t, member, "192.168.254.21", "192.168.254.11:5433") // open, but not to the overlay
	mustNotReachFrom(t, member, "192.168.254.30", "192.168.254.11:5432") // not tagged web
	if pings(member, "-I", "192.168.254.21", "192.168.254.11") {
		t.Error("echo request from 192.168.254.21 answered; the rules allow no ICMP")
	}
	mustReach(t, "", "192.168.254.21:7000", "192.168.254.11") // the node's own connection: its replies pass

	rcs := countsOf(t, c, "gtpb0")
	if diff := cmp.Diff([]string{"input rule 1", "input rule 0"}, order(rcs)); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if rc := countOf(t, rcs, "input", 1); !rc.Allow || rc.Packets < 1 {
		t.Errorf("rule 1 counted %+v, want an allow of at least one packet", rc)
	}
	// Two connections (each SYN sent at least once) and an echo request.
	if rc := countOf(t, rcs, "input", 0); rc.Allow || rc.Packets < 3 {
		t.Errorf("the default deny counted %+v, want a deny of at least 3 packets", rc)
	}
}

// TestPolicyDenyShadowsAllow: the first rule that matches decides; a deny
// above "allow from any to any" takes what it names out of it. Guard mode.
func TestPolicyDenyShadowsAllow(t *testing.T) {
	c := newConn(t)
	member := overlayStandIn(t, "gtpc0", "192.168.254.11/24", "192.168.254.21/24", "192.168.254.30/24")
	serve(t, "", "192.168.254.11:5432")
	serve(t, "", "192.168.254.11:80")
	err := Apply(c, Ruleset{Overlays: []Overlay{{
		Iface: "gtpc0", Addrs: addrs("192.168.254.11"), Prefixes: pfx("192.168.254.0/24"),
		Policy: compileRules(t, testNetwork(), idDB,
			"deny from tag:web to members on tcp/5432",
			"allow from any to any"),
	}}})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	mustNotReachFrom(t, member, "192.168.254.21", "192.168.254.11:5432")
	mustReachFrom(t, member, "192.168.254.21", "192.168.254.11:80")
	mustReachFrom(t, member, "192.168.254.30", "192.168.254.11:5432")

	rcs := countsOf(t, c, "gtpc0")
	if diff := cmp.Diff([]string{"input rule 1", "input rule 2", "input rule 0"}, order(rcs)); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if rc := countOf(t, rcs, "input", 1); rc.Allow || rc.Packets < 1 {
		t.Errorf("rule 1 counted %+v, want a deny of at least one packet", rc)
	}
	if rc := countOf(t, rcs, "input", 2); !rc.Allow || rc.Packets < 2 {
		t.Errorf("rule 2 counted %+v, want an allow of at least 2 packets", rc)
	}
	if rc := countOf(t, rcs, "input", 0); rc.Packets != 0 {
		t.Errorf("the default deny counted %+v, want nothing", rc)
	}
}

// TestPolicyEmptyRulesetGuard: a member that no rule concerns gets an
// empty Ruleset, which lets nothing new in from the overlay. In guard mode
// the host's other traffic, IPv6 with neighbour discovery included, is
// left alone, and replies to the node's own connections pass.
func TestPolicyEmptyRulesetGuard(t *testing.T) {
	c := newConn(t)
	rules := compileRules(t, testNetwork(), idOther, "allow from tag:web to tag:db on tcp/5432")
	if len(rules.Input)+len(rules.Forward) != 0 {
		t.Fatalf("compiled %+v for the untagged member, want no rules", rules)
	}
	member := overlayStandIn(t, "gtpd0", "192.168.254.30/24", "192.168.254.21/24")
	lan := link(t, "fwpd0", "10.99.9.1/24", "10.99.9.2/24")
	ip(t, "", "addr", "add", "fd99:9::1/64", "dev", "fwpd0", "nodad")
	ip(t, lan, "addr", "add", "fd99:9::2/64", "dev", "eth0", "nodad")
	serve(t, "", "192.168.254.30:5432")
	serve(t, "", "10.99.9.1:5432")
	serve(t, "", "[fd99:9::1]:5432")
	serve(t, member, "192.168.254.21:7000")
	err := Apply(c, Ruleset{Overlays: []Overlay{{
		Iface: "gtpd0", Addrs: addrs("192.168.254.30"), Prefixes: pfx("192.168.254.0/24"), Policy: rules,
	}}})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	// One echo request, dropped and counted: 84 bytes (20 IP, 8 ICMP, 56 data).
	if pings(member, "192.168.254.30") {
		t.Error("echo request answered; want it dropped")
	}
	want := []RuleCount{{Chain: "input", Rule: 0, Packets: 1, Bytes: 84}}
	if diff := cmp.Diff(want, countsOf(t, c, "gtpd0")); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	mustNotReachFrom(t, member, "192.168.254.21", "192.168.254.30:5432")
	mustReach(t, "", "192.168.254.21:7000", "192.168.254.30")
	mustReach(t, lan, "10.99.9.1:5432", "10.99.9.2")
	ip(t, "", "neigh", "flush", "dev", "fwpd0")
	ip(t, lan, "neigh", "flush", "dev", "eth0")
	mustReach(t, lan, "[fd99:9::1]:5432", "fd99:9::2")
}

// TestPolicyGatewayForward: on a gateway, what the overlay sends into the
// served subnet passes by the network's Forward rules, and so does what it
// sends to the gateway's own address in that subnet; the LAN still reaches
// the overlay (the member there enforces). Strict mode: a port it opens is
// open to the LAN, not to the overlay.
func TestPolicyGatewayForward(t *testing.T) {
	c := newConn(t)
	sysctl(t, "", "net.ipv4.ip_forward=1")
	member := overlayStandIn(t, "gtpe0", "192.168.254.10/24", "192.168.254.21/24", "192.168.254.30/24")
	ip(t, member, "route", "add", "172.16.0.0/16", "via", "192.168.254.10")
	lan := link(t, "fwpe0", "172.16.0.1/16", "172.16.0.5/16")
	ip(t, lan, "route", "add", "192.168.254.0/24", "via", "172.16.0.1")
	serve(t, lan, "172.16.0.5:5432")
	serve(t, lan, "172.16.0.5:80")
	serve(t, "", "172.16.0.1:5432")
	serve(t, "", "172.16.0.1:2222")
	serve(t, member, "192.168.254.21:7000")
	err := Apply(c, Ruleset{Strict: true, AllowTCP: []uint16{2222}, Overlays: []Overlay{{
		Iface: "gtpe0", Addrs: addrs("192.168.254.10"), Prefixes: pfx("192.168.254.0/24"),
		Gateway: &Gateway{Serve: pfx("172.16.0.0/16"), LAN: "fwpe0"},
		Policy: compileRules(t, testNetwork(), idGW,
			"allow from tag:web to 172.16.0.0/16 on tcp/5432",
			"deny from members to 172.16.0.0/16 on tcp/80"),
	}}})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	mustReachFrom(t, member, "192.168.254.21", "172.16.0.5:5432")    // forward, rule 1
	mustNotReachFrom(t, member, "192.168.254.21", "172.16.0.5:80")   // forward, rule 2
	mustNotReachFrom(t, member, "192.168.254.30", "172.16.0.5:5432") // forward, no rule
	mustReachFrom(t, member, "192.168.254.21", "172.16.0.1:5432")    // input, rule 1
	mustNotReachFrom(t, member, "192.168.254.30", "172.16.0.1:2222") // input, no rule
	mustReach(t, lan, "172.16.0.1:2222", "172.16.0.5")
	mustReach(t, lan, "192.168.254.21:7000", "172.16.0.5")

	rcs := countsOf(t, c, "gtpe0")
	if diff := cmp.Diff([]string{"input rule 1", "input rule 2", "input rule 0", "forward rule 1", "forward rule 2", "forward rule 0"}, order(rcs)); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	for _, w := range []struct {
		chain string
		rule  int
		allow bool
		some  bool // counted at least one packet; else none
	}{
		{"forward", 1, true, true}, {"forward", 2, false, true}, {"forward", 0, false, true},
		{"input", 1, true, true}, {"input", 2, false, false}, {"input", 0, false, true},
	} {
		rc := countOf(t, rcs, w.chain, w.rule)
		if rc.Allow != w.allow || (rc.Packets > 0) != w.some {
			t.Errorf("%s rule %d counted %+v, want allow %v, packets counted %v", w.chain, w.rule, rc, w.allow, w.some)
		}
	}
}

// TestPolicyIPv6: an IPv6 overlay. ICMP in a rule is ICMPv6 there. The
// stand-in has no neighbour discovery, like WireGuard: its neighbours are
// written down.
func TestPolicyIPv6(t *testing.T) {
	c := newConn(t)
	member := nstest.New(t)
	nstest.Veth(t, "gtp6", "eth0", member)
	ip(t, "", "addr", "add", "fd8a::11/64", "dev", "gtp6", "nodad")
	ip(t, member, "addr", "add", "fd8a::21/64", "dev", "eth0", "nodad")
	ip(t, member, "addr", "add", "fd8a::30/64", "dev", "eth0", "nodad")
	nodeMAC, memberMAC := mac(t, "", "gtp6"), mac(t, member, "eth0")
	for _, a := range []string{"fd8a::21", "fd8a::30"} {
		ip(t, "", "neigh", "replace", a, "lladdr", memberMAC, "dev", "gtp6", "nud", "permanent")
	}
	ip(t, member, "neigh", "replace", "fd8a::11", "lladdr", nodeMAC, "dev", "eth0", "nud", "permanent")
	serve(t, "", "[fd8a::11]:5432")

	n := policy.Network{
		CIDR: netip.MustParsePrefix("fd8a::/64"),
		Members: []policy.Member{
			member6(idDB, "fd8a::11", "db"), member6(idWeb, "fd8a::21", "web"), member6(idOther, "fd8a::30"),
		},
	}
	err := Apply(c, Ruleset{Overlays: []Overlay{{
		Iface: "gtp6", Addrs: addrs("fd8a::11"), Prefixes: pfx("fd8a::/64"),
		Policy: compileRules(t, n, idDB, "allow from tag:web to members on tcp/5432,icmp"),
	}}})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	mustReachFrom(t, member, "fd8a::21", "[fd8a::11]:5432")
	mustNotReachFrom(t, member, "fd8a::30", "[fd8a::11]:5432")
	if !pings(member, "-6", "-I", "fd8a::21", "fd8a::11") {
		t.Error("ICMPv6 echo request from fd8a::21 not answered")
	}
	if pings(member, "-6", "-I", "fd8a::30", "fd8a::11") {
		t.Error("ICMPv6 echo request from fd8a::30 answered; want it dropped")
	}
	rcs := countsOf(t, c, "gtp6")
	if rc := countOf(t, rcs, "input", 1); rc.Packets < 2 {
		t.Errorf("rule 1 counted %+v, want at least 2 packets", rc)
	}
	if rc := countOf(t, rcs, "input", 0); rc.Packets < 2 {
		t.Errorf("the default deny counted %+v, want at least 2 packets", rc)
	}
}

func member6(id, addr string, tags ...string) policy.Member {
	return member(id, []string{addr}, tags...)
}

// mac is the hardware address of interface name in namespace ns.
func mac(t *testing.T, ns, name string) string {
	t.Helper()
	var hw string
	err := inNS(ns, func() error {
		ifi, err := net.InterfaceByName(name)
		if err == nil {
			hw = ifi.HardwareAddr.String()
		}
		return err
	})
	if err != nil {
		t.Fatalf("interface %s in %q: %v", name, ns, err)
	}
	return hw
}

// TestCountersWithoutPolicy: without Gate's table, or with a table whose
// overlays have no rules, there is nothing to count; a rule in a policy
// chain that Gate did not write is an error, not a guess.
func TestCountersWithoutPolicy(t *testing.T) {
	c := newConn(t)
	if got, err := Counters(c); err != nil || len(got) != 0 {
		t.Errorf("Counters without a table = %v, %v; want nothing", got, err)
	}
	if err := Apply(c, seedGateway()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if got, err := Counters(c); err != nil || len(got) != 0 {
		t.Errorf("Counters without rules = %v, %v; want nothing", got, err)
	}
	rs := seedGateway()
	rs.Overlays[0].Policy = &policy.Ruleset{}
	if err := Apply(c, rs); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	nstest.Run(t, "nft", "insert", "rule", "inet", "gate", "pol-in-gt8056c2e2", "counter", "accept", "comment", `"someone else's"`)
	if got, err := Counters(c); err == nil {
		t.Errorf("Counters with a foreign rule = %v, want an error", got)
	} else {
		t.Logf("refused as expected: %v", err)
	}
}
