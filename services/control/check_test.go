package control

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"unicode"

	"github.com/gatenet/gate/services/policy"
)

func goodConfig() MemberConfig {
	return MemberConfig{
		NetworkID: "0123456789abcdef", Name: "aws-do", Status: StatusOK, NodeID: "0a2e9cf01c",
		CIDR: netip.MustParsePrefix("192.168.254.0/24"), MTU: 1420,
		Addresses: []netip.Prefix{netip.MustParsePrefix("192.168.254.170/24")},
		Routes:    []Route{{Dest: netip.MustParsePrefix("172.16.0.0/16"), Via: netip.MustParseAddr("192.168.254.11")}},
		Peers: []Peer{{
			NodeID: "9788637428", Hostname: "aws-gate-1", PublicKey: "CS+YPi5HkDBROcDyRceksS2fDhNeQTsNzI/owBZXX/A=",
			Addresses:  []netip.Addr{netip.MustParseAddr("192.168.254.11")},
			AllowedIPs: []netip.Prefix{netip.MustParsePrefix("192.168.254.11/32"), netip.MustParsePrefix("172.16.0.0/16")},
			Endpoints:  []netip.AddrPort{netip.MustParseAddrPort("203.0.113.5:51820")},
		}},
	}
}

// TestAttackCheckConfig: what a member takes from its controller is
// checked where it arrives. A bad peer (text from another member) is left
// out; a bad configuration is refused whole, and the last good one stays.
func TestAttackCheckConfig(t *testing.T) {
	peer := func(f func(p *Peer)) func(c *MemberConfig) {
		return func(c *MemberConfig) {
			p := c.Peers[0]
			f(&p)
			c.Peers = append(c.Peers, p)
		}
	}
	for _, tc := range []struct {
		name    string
		mod     func(c *MemberConfig)
		err     string // the whole configuration refused
		dropped string // one peer left out
	}{
		{name: "good", mod: func(*MemberConfig) {}},
		{name: "not OK needs no CIDR", mod: func(c *MemberConfig) { c.Status, c.CIDR, c.Peers = StatusRequesting, netip.Prefix{}, nil }},
		{name: "unknown status", mod: func(c *MemberConfig) { c.Status = "OK\x1b[2J" }, err: `unknown status "OK\x1b[2J"`},
		{name: "escape in the network name", mod: func(c *MemberConfig) { c.Name = "corp\x1b]0;pwned\x07" }, err: "network name"},
		{name: "bad network ID", mod: func(c *MemberConfig) { c.NetworkID = "../../etc" }, err: "network ID"},
		{name: "IPv6 CIDR", mod: func(c *MemberConfig) { c.CIDR = netip.MustParsePrefix("fd00::/64") }, err: "network CIDR"},
		{name: "MTU", mod: func(c *MemberConfig) { c.MTU = 70000 }, err: "MTU 70000"},
		{name: "own address outside", mod: func(c *MemberConfig) { c.Addresses = []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")} }, err: "own address"},
		{name: "route via outside", mod: func(c *MemberConfig) { c.Routes[0].Via = netip.MustParseAddr("10.0.0.1") }, err: "route"},
		{name: "rules naming an unknown set", mod: func(c *MemberConfig) {
			c.Policy = &policy.Ruleset{Input: []policy.CompiledRule{{Rule: 1, Allow: true, FromSets: []string{"tag:x\x1b[2J"},
				To: []netip.Prefix{netip.MustParsePrefix("192.168.254.170/32")}}}}
		}, err: "rules"},
		{name: "rules with an invalid prefix", mod: func(c *MemberConfig) {
			c.Policy = &policy.Ruleset{Input: []policy.CompiledRule{{Rule: 1, Allow: true, To: []netip.Prefix{{}}}}}
		}, err: "rules"},
		{name: "good rules", mod: func(c *MemberConfig) {
			c.Policy = &policy.Ruleset{Input: []policy.CompiledRule{{Rule: 1, Allow: true, FromSets: []string{"any"},
				To: []netip.Prefix{netip.MustParsePrefix("192.168.254.170/32")}}}, Sets: map[string][]netip.Prefix{"any": {netip.MustParsePrefix("192.168.254.0/24")}}}
		}},
		{name: "escape in a tag", mod: peer(func(p *Peer) { p.NodeID, p.Tags = "1111111111", []string{"web\x1b[2J"} }), dropped: "tag"},
		{name: "escape in a hostname", mod: peer(func(p *Peer) { p.NodeID, p.Hostname = "1111111111", "db\x1b[31m" }), dropped: "hostname"},
		{name: "newline in a hostname", mod: peer(func(p *Peer) { p.NodeID, p.Hostname = "1111111111", "db\nendpoint=1.2.3.4:5" }), dropped: "hostname"},
		{name: "bad node ID", mod: peer(func(p *Peer) { p.NodeID = "\x1b[2J" }), dropped: `peer "\x1b[2J": node ID`},
		{name: "bad key", mod: peer(func(p *Peer) { p.NodeID, p.PublicKey = "1111111111", "x\nallowed_ip=0.0.0.0/0" }), dropped: "public key"},
		{name: "zoned endpoint", mod: peer(func(p *Peer) {
			p.NodeID = "1111111111"
			p.Endpoints = []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("fe80::1").WithZone("x\nallowed_ip=0.0.0.0/0"), 5)}
		}), dropped: "endpoint"},
		{name: "address outside", mod: peer(func(p *Peer) { p.NodeID, p.Addresses = "1111111111", []netip.Addr{netip.MustParseAddr("8.8.8.8")} }), dropped: "not in the network"},
		{name: "IPv6 allowed IP", mod: peer(func(p *Peer) { p.NodeID, p.AllowedIPs = "1111111111", []netip.Prefix{netip.MustParsePrefix("::/0")} }), dropped: "allowed IP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := goodConfig()
			tc.mod(&c)
			out, dropped, err := CheckConfig(c)
			if (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
			if err != nil {
				if strings.ContainsFunc(err.Error(), unicode.IsControl) {
					t.Errorf("the error carries a control character: %q", err)
				}
				return
			}
			if tc.dropped == "" {
				if len(dropped) != 0 || len(out.Peers) != len(c.Peers) {
					t.Errorf("dropped %q", dropped)
				}
				return
			}
			if len(dropped) != 1 || !strings.Contains(dropped[0], tc.dropped) || len(out.Peers) != len(c.Peers)-1 || out.Peers[0].NodeID != "9788637428" {
				t.Errorf("dropped %q, kept %d of %d; want the bad one (%q) out", dropped, len(out.Peers), len(c.Peers), tc.dropped)
			}
			if strings.ContainsFunc(dropped[0], unicode.IsControl) {
				t.Errorf("the note carries a control character: %q", dropped[0])
			}
		})
	}
}

// FuzzCheckConfig: whatever a controller answers, what CheckConfig passes
// carries no unprintable text and no zoned endpoint, and its notes are
// safe to log.
func FuzzCheckConfig(f *testing.F) {
	b, _ := json.Marshal(goodConfig())
	f.Add(b)
	f.Add([]byte(`{"network_id":"0123456789abcdef","status":"OK","cidr":"10.0.0.0/8","mtu":1420,"peers":[{"node_id":"1111111111","hostname":"a\u001b","public_key":"x","addresses":["10.0.0.1"],"endpoints":["[fe80::1%x]:5"]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c MemberConfig
		if json.Unmarshal(b, &c) != nil {
			return
		}
		out, dropped, err := CheckConfig(c)
		if err != nil {
			if strings.ContainsFunc(err.Error(), func(r rune) bool { return unicode.IsControl(r) }) {
				t.Fatalf("error with a control character: %q", err)
			}
			return
		}
		for _, d := range dropped {
			if strings.ContainsFunc(d, unicode.IsControl) {
				t.Fatalf("note with a control character: %q", d)
			}
		}
		if strings.ContainsFunc(out.Name, func(r rune) bool { return !unicode.IsPrint(r) }) {
			t.Fatalf("name %q passed", out.Name)
		}
		for _, p := range out.Peers {
			if strings.ContainsFunc(p.Hostname+p.NodeID+p.PublicKey, func(r rune) bool { return !unicode.IsPrint(r) }) {
				t.Fatalf("peer %+v passed", p)
			}
			for _, ep := range p.Endpoints {
				if ep.Addr().Zone() != "" {
					t.Fatalf("zoned endpoint %v passed", ep)
				}
			}
		}
	})
}
