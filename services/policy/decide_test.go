package policy

import (
	"net/netip"
	"testing"
)

func TestDecide(t *testing.T) {
	ix := testIndex(t)
	const (
		web1Addr = "10.99.0.1"
		web2Addr = "10.99.0.2"
		dbAddr   = "10.99.0.5"
		loneAddr = "10.99.0.20"
		vpcHost  = "172.16.3.4"
	)
	appRules := `
allow from tag:web to tag:db on tcp/5432
deny from members to 172.16.0.0/16 on tcp/22 # no ssh into the VPC
allow from tag:web,10.99.0.20 to 172.16.0.0/16,192.168.1.0/24 on tcp/8000-8100,udp/53,icmp
allow from any to fd00:16::/48 on tcp/443`
	for _, tc := range []struct {
		name     string
		rules    string
		src, dst string
		proto    Proto
		port     uint16
		allow    bool
		rule     int
		reason   string // checked when set
	}{
		{name: "default allows all", rules: "allow from any to any", src: loneAddr, dst: dbAddr, proto: TCP, port: 22, allow: true, rule: 1,
			reason: `rule 1 "allow from any to any" allows it`},
		{name: "default reaches a served subnet", rules: "allow from any to any", src: vpcHost, dst: web1Addr, proto: UDP, port: 53, allow: true, rule: 1},
		{name: "any is only what the network carries", rules: "allow from any to any", src: "8.8.8.8", dst: web1Addr, proto: TCP, port: 80,
			reason: "no rule matches: denied by default"},
		{name: "no rules", rules: "", src: web1Addr, dst: dbAddr, proto: TCP, port: 5432, reason: "no rule matches: denied by default"},
		{name: "tag to tag", rules: appRules, src: web2Addr, dst: dbAddr, proto: TCP, port: 5432, allow: true, rule: 1,
			reason: `rule 1 "allow from tag:web to tag:db on tcp/5432" allows it`},
		{name: "wrong port", rules: appRules, src: web1Addr, dst: dbAddr, proto: TCP, port: 5433},
		{name: "wrong protocol", rules: appRules, src: web1Addr, dst: dbAddr, proto: UDP, port: 5432},
		{name: "wrong source", rules: appRules, src: loneAddr, dst: dbAddr, proto: TCP, port: 5432},
		{name: "deny before allow", rules: appRules, src: web1Addr, dst: vpcHost, proto: TCP, port: 22, rule: 2,
			reason: `rule 2 "deny from members to 172.16.0.0/16 on tcp/22 # no ssh into the VPC" denies it`},
		{name: "range low end", rules: appRules, src: web1Addr, dst: vpcHost, proto: TCP, port: 8000, allow: true, rule: 3},
		{name: "range high end", rules: appRules, src: web1Addr, dst: vpcHost, proto: TCP, port: 8100, allow: true, rule: 3},
		{name: "past the range", rules: appRules, src: web1Addr, dst: vpcHost, proto: TCP, port: 8101},
		{name: "second source selector", rules: appRules, src: loneAddr, dst: "192.168.1.9", proto: UDP, port: 53, allow: true, rule: 3},
		{name: "icmp", rules: appRules, src: loneAddr, dst: "192.168.1.9", proto: ICMP, allow: true, rule: 3},
		{name: "icmp stands for icmpv6 too", rules: "allow from any to any on icmp", src: "fd00:16::1", dst: web1Addr, proto: ICMPv6, allow: true, rule: 1},
		{name: "icmp is not udp", rules: "allow from any to any on icmp", src: web1Addr, dst: dbAddr, proto: UDP, port: 53},
		{name: "other protocol only under any", rules: "allow from any to any on tcp,udp,icmp\nallow from tag:db to any", src: dbAddr, dst: web1Addr, proto: 47, allow: true, rule: 2},
		{name: "IPv6 served subnet", rules: appRules, src: loneAddr, dst: "fd00:16:0:9::1", proto: TCP, port: 443, allow: true, rule: 4},
		{name: "IPv6 outside the subnet", rules: appRules, src: loneAddr, dst: "fd00:17::1", proto: TCP, port: 443},
		{name: "IPv4-mapped IPv6 is IPv4", rules: appRules, src: "::ffff:10.99.0.1", dst: "::ffff:10.99.0.5", proto: TCP, port: 5432, allow: true, rule: 1},
		{name: "allow before deny", rules: "allow from tag:web to tag:db\ndeny from any to tag:db", src: web1Addr, dst: dbAddr, proto: TCP, port: 1, allow: true, rule: 1},
		{name: "deny shadows a later allow", rules: "deny from any to tag:db\nallow from tag:web to tag:db", src: web1Addr, dst: dbAddr, proto: TCP, port: 1, rule: 1},
		{name: "member selector", rules: "allow from member:a000000002 to members on tcp", src: web2Addr, dst: loneAddr, proto: TCP, port: 9, allow: true, rule: 1},
		{name: "member selector, other member", rules: "allow from member:a000000002 to members on tcp", src: web1Addr, dst: loneAddr, proto: TCP, port: 9},
		{name: "members is the whole CIDR", rules: "allow from members to members", src: "10.99.0.200", dst: web1Addr, proto: TCP, port: 9, allow: true, rule: 1},
		{name: "members is not a served subnet", rules: "allow from members to members", src: vpcHost, dst: web1Addr, proto: TCP, port: 9},
		{name: "tag of an address no one holds", rules: "allow from tag:web to any", src: "10.99.0.200", dst: web1Addr, proto: TCP, port: 9},
		{name: "member that left matches nothing", rules: "allow from member:0123456789 to any\ndeny from any to any", src: web1Addr, dst: dbAddr, proto: TCP, port: 9, rule: 2},
	} {
		p := Policy{}
		if tc.rules != "" {
			p = policy(t, tc.rules)
		}
		d := Decide(p, ix, netip.MustParseAddr(tc.src), netip.MustParseAddr(tc.dst), tc.proto, tc.port)
		if d.Allow != tc.allow || d.Rule != tc.rule || tc.reason != "" && d.Reason != tc.reason {
			t.Errorf("%s: Decide(%s -> %s %v/%d) = %+v; want allow %v by rule %d %s", tc.name, tc.src, tc.dst, tc.proto, tc.port, d, tc.allow, tc.rule, tc.reason)
		}
	}
}

// TestDecideIPv6Overlay runs a network whose overlay is IPv6.
func TestDecideIPv6Overlay(t *testing.T) {
	ix, err := NewIndex(Network{
		CIDR: netip.MustParsePrefix("fd99::/64"),
		Members: []Member{
			{NodeID: web1, Addresses: addrs("fd99::1"), Tags: []string{"web"}},
			{NodeID: db, Addresses: addrs("fd99::5"), Tags: []string{"db"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := policy(t, "allow from tag:web to tag:db on tcp/5432\nallow from fd99::5 to fd99::/112 on udp")
	for _, tc := range []struct {
		src, dst string
		proto    Proto
		port     uint16
		rule     int
	}{
		{"fd99::1", "fd99::5", TCP, 5432, 1},
		{"fd99::5", "fd99::1", TCP, 5432, 0},
		{"fd99::5", "fd99::1", UDP, 9, 2},
		{"fd99::5", "fd99::1:0", UDP, 9, 0},
	} {
		d := Decide(p, ix, netip.MustParseAddr(tc.src), netip.MustParseAddr(tc.dst), tc.proto, tc.port)
		if d.Rule != tc.rule || d.Allow != (tc.rule != 0) {
			t.Errorf("Decide(%s -> %s %v/%d) = %+v; want rule %d", tc.src, tc.dst, tc.proto, tc.port, d, tc.rule)
		}
	}
}
