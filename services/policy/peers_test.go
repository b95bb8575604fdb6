package policy

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPeers(t *testing.T) {
	ix := testIndex(t)
	everyone := []string{web1, web2, db, gw, gw2, lone}
	but := func(self string) []string {
		return slices.DeleteFunc(slices.Clone(everyone), func(id string) bool { return id == self })
	}
	const app = `
allow from tag:web to tag:db on tcp/5432
deny from members to 172.16.0.0/16 on tcp/22
allow from tag:web,10.99.0.20 to 172.16.0.0/16 on tcp/8000-8100
allow from tag:db to 192.168.1.0/24 on udp/53`
	for _, tc := range []struct {
		name, rules, self string
		want              []string
	}{
		{"default: everyone", "allow from any to any", web1, but(web1)},
		{"default: not itself, not one without address", "allow from any to any", gw, but(gw)},
		{"no address, no peers", "allow from any to any", pend, nil},
		{"unknown node", "allow from any to any", "0123456789", nil},
		{"no rules", "", web1, nil},
		{"web: the database and the VPC's gateway", app, web1, []string{db, gw}},
		{"database: the webs, and the office's gateway", app, db, []string{web1, web2, gw2}},
		{"VPC gateway: who may reach the VPC", app, gw, []string{web1, web2, lone}},
		{"office gateway: who may reach the office", app, gw2, []string{db}},
		{"untagged member: only the VPC's gateway", app, lone, []string{gw}},
		{"deny rules give no peers", "deny from any to any", web1, nil},
		{"from a served subnet", "allow from 172.16.0.0/16 to tag:db", db, []string{gw}},
		{"from a served subnet, the gateway's side", "allow from 172.16.0.0/16 to tag:db", gw, []string{db}},
		{"IPv6 subnet", "allow from tag:web to fd00:16::/48", web2, []string{gw}},
		{"member selector", "allow from member:d000000001 to member:b000000001", db, []string{lone}},
		{"one subnet to another", "allow from 192.168.1.0/24 to 172.16.0.0/16", gw, []string{gw2}},
		{"members reach the gateway, not its subnets", "allow from members to members", lone, but(lone)},
		{"a tag no one has", "allow from tag:qa to any", lone, nil},
	} {
		p := Policy{}
		if tc.rules != "" {
			p = policy(t, tc.rules)
		}
		if diff := cmp.Diff(tc.want, Peers(p, ix, tc.self)); diff != "" {
			t.Errorf("%s: Peers(%s) (-want +got):\n%s", tc.name, tc.self, diff)
		}
	}
}

// TestPeersProperties checks, for random policies, that Peers is
// symmetric, and that it lists a member for every packet Decide allows
// between addresses that two different members hold (their own, or inside
// a subnet they serve).
func TestPeersProperties(t *testing.T) {
	ix := testIndex(t)
	rng := rand.New(rand.NewPCG(3, 4))
	ps := probes()
	holder := func(a netip.Addr) string {
		if m := ix.memberAt(a); m != nil {
			return m.NodeID
		}
		for _, r := range ix.routes {
			if r.Dest.Contains(a) && r.gw != nil {
				return r.gw.NodeID
			}
		}
		return ""
	}
	for range 300 {
		p := randomPolicy(rng)
		peers := map[string][]string{}
		for _, m := range testNet().Members {
			peers[m.NodeID] = Peers(p, ix, m.NodeID)
		}
		for a, ps := range peers {
			for _, b := range ps {
				if !slices.Contains(peers[b], a) {
					t.Fatalf("policy:\n%s%s is among the peers of %s (%v) but not the other way (%v)", p, b, a, ps, peers[b])
				}
			}
		}
		for _, pr := range ps {
			a, b := holder(pr.src), holder(pr.dst)
			if a == "" || b == "" || a == b {
				continue
			}
			if d := Decide(p, ix, pr.src, pr.dst, pr.proto, pr.port); d.Allow && !slices.Contains(peers[a], b) {
				t.Fatalf("policy:\n%s%v -> %v %v/%d is allowed (%s) but %s is not among the peers of %s: %v",
					p, pr.src, pr.dst, pr.proto, pr.port, d.Reason, b, a, peers[a])
			}
		}
	}
}

// hubAndSpoke is a network of n members: two gateways (tag gw, serving
// 172.16.0.0/16 and 172.17.0.0/16) and n-2 spokes (tag spoke and one of
// 48 more), under 100 rules by which a spoke may reach only the gateways.
func hubAndSpoke(n int) (Network, Policy, error) {
	net := Network{
		CIDR: netip.MustParsePrefix("10.0.0.0/16"),
		Routes: []Route{
			{netip.MustParsePrefix("172.16.0.0/16"), netip.MustParseAddr("10.0.0.1")},
			{netip.MustParsePrefix("172.17.0.0/16"), netip.MustParseAddr("10.0.0.2")},
		},
	}
	base := netip.MustParseAddr("10.0.0.0")
	a := base
	for i := range n {
		a = a.Next()
		tags := []string{"spoke", fmt.Sprintf("t%d", i%48)}
		if i < 2 {
			tags = []string{"gw"}
		}
		net.Members = append(net.Members, Member{NodeID: fmt.Sprintf("%010x", i*7919), Addresses: []netip.Addr{a}, Tags: tags})
	}
	var b strings.Builder
	b.WriteString("allow from tag:spoke to tag:gw on tcp/443\n")
	b.WriteString("allow from tag:gw to any\n")
	b.WriteString("allow from tag:spoke to 172.16.0.0/16,172.17.0.0/16 on tcp/443,udp/53\n")
	for i := 3; i < 100; i++ {
		if i%2 == 0 {
			fmt.Fprintf(&b, "allow from tag:gw to tag:t%d on tcp/%d\n", i%48, 1000+i)
		} else {
			fmt.Fprintf(&b, "deny from tag:t%d to 172.16.0.0/16 on tcp/22\n", i%48)
		}
	}
	p, err := ParsePolicy(b.String())
	return net, p, err
}

func BenchmarkPeers(b *testing.B) {
	net, p, err := hubAndSpoke(50000)
	if err != nil {
		b.Fatal(err)
	}
	ix, err := NewIndex(net)
	if err != nil {
		b.Fatal(err)
	}
	spoke, gateway := net.Members[1234].NodeID, net.Members[0].NodeID
	if got := Peers(p, ix, spoke); len(got) != 2 {
		b.Fatalf("a spoke has %d peers, want the 2 gateways", len(got))
	}
	if got := Peers(p, ix, gateway); len(got) != 50000-1 {
		b.Fatalf("a gateway has %d peers, want every other member", len(got))
	}
	b.Run("spoke", func(b *testing.B) {
		for b.Loop() {
			Peers(p, ix, spoke)
		}
	})
	b.Run("gateway", func(b *testing.B) {
		for b.Loop() {
			Peers(p, ix, gateway)
		}
	})
}

func BenchmarkNewIndex(b *testing.B) {
	net, _, err := hubAndSpoke(50000)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := NewIndex(net); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	net, p, err := hubAndSpoke(50000)
	if err != nil {
		b.Fatal(err)
	}
	ix, err := NewIndex(net)
	if err != nil {
		b.Fatal(err)
	}
	for _, who := range []struct{ name, id string }{{"spoke", net.Members[1234].NodeID}, {"gateway", net.Members[0].NodeID}} {
		b.Run(who.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Compile(p, ix, who.id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCompileAlone is what the controller does for each member it
// answers with rules: an index of the member alone and the routes, and
// the rules compiled against it.
func BenchmarkCompileAlone(b *testing.B) {
	net, p, err := hubAndSpoke(3)
	if err != nil {
		b.Fatal(err)
	}
	self := net.Members[2]
	net.Members = []Member{self}
	for b.Loop() {
		ix, err := NewIndex(net)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Compile(p, ix, self.NodeID); err != nil {
			b.Fatal(err)
		}
	}
}
