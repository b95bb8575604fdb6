package control

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestApplyDelta(t *testing.T) {
	pfx := netip.MustParsePrefix
	peer := func(id, addr, ep string) Peer {
		a := netip.MustParseAddr(addr)
		return Peer{NodeID: id, Hostname: "h" + id, PublicKey: "k" + id, Addresses: []netip.Addr{a},
			AllowedIPs: []netip.Prefix{netip.PrefixFrom(a, 32)}, Endpoints: []netip.AddrPort{netip.MustParseAddrPort(ep)}}
	}
	a := peer("aaaaaaaaaa", "10.0.0.2", "1.1.1.1:51820")
	b := peer("bbbbbbbbbb", "10.0.0.3", "2.2.2.2:51820")
	c := peer("cccccccccc", "10.0.0.4", "3.3.3.3:51820")
	b2 := peer("bbbbbbbbbb", "10.0.0.3", "9.9.9.9:51820")
	bMoved := peer("bbbbbbbbbb", "10.0.0.9", "2.2.2.2:51820")
	withRoute := b
	withRoute.AllowedIPs = append(clonePrefixes(withRoute.AllowedIPs), pfx("172.16.0.0/16"))
	cfg := func(rev uint64, peers ...Peer) MemberConfig {
		return MemberConfig{NetworkID: "0123456789abcdef", Name: "n", Status: StatusOK, NodeID: "ssssssssss",
			CIDR: pfx("10.0.0.0/24"), MTU: 1420, Addresses: []netip.Prefix{pfx("10.0.0.1/24")}, Routes: []Route{},
			Revision: rev, Peers: append([]Peer{}, peers...)}
	}
	delta := func(since, rev uint64, removed []string, peers ...Peer) MemberConfig {
		d := cfg(rev, peers...)
		d.Delta, d.Since, d.RemovedPeers = true, since, removed
		return d
	}
	for _, tc := range []struct {
		name    string
		base, d MemberConfig
		want    MemberConfig
		wantErr string
	}{
		{"full replaces", cfg(3, a), cfg(5, b, c), cfg(5, b, c), ""},
		{"empty delta moves the revision", cfg(3, a, b), delta(3, 4, nil), cfg(4, a, b), ""},
		{"added peer lands in order", cfg(3, a, c), delta(3, 4, nil, b), cfg(4, a, b, c), ""},
		{"changed peer replaced in place", cfg(3, a, b, c), delta(3, 4, nil, b2), cfg(4, a, b2, c), ""},
		{"changed address reorders", cfg(3, a, b, c), delta(3, 4, nil, bMoved), cfg(4, a, c, bMoved), ""},
		{"removed", cfg(3, a, b, c), delta(3, 4, []string{"bbbbbbbbbb"}), cfg(4, a, c), ""},
		{"removed and unknown removal", cfg(3, a, b), delta(3, 4, []string{"aaaaaaaaaa", "zzzzzzzzzz"}), cfg(4, b), ""},
		{"route moves to a peer's allowed IPs", cfg(3, a, b), delta(3, 6, nil, withRoute), cfg(6, a, withRoute), ""},
		{"own fields come from the delta", cfg(3, a), func() MemberConfig {
			d := delta(3, 4, nil)
			d.Name, d.MTU, d.Keepalive = "renamed", 1380, 25
			d.Routes = []Route{{Dest: pfx("172.16.0.0/16"), Via: netip.MustParseAddr("10.0.0.3")}}
			return d
		}(), func() MemberConfig {
			w := cfg(4, a)
			w.Name, w.MTU, w.Keepalive = "renamed", 1380, 25
			w.Routes = []Route{{Dest: pfx("172.16.0.0/16"), Via: netip.MustParseAddr("10.0.0.3")}}
			return w
		}(), ""},
		{"wrong base revision", cfg(2, a), delta(3, 4, nil, b), MemberConfig{}, "against revision 3; this node holds revision 2"},
		{"other network", func() MemberConfig { c := cfg(3, a); c.NetworkID = "fedcba9876543210"; return c }(), delta(3, 4, nil), MemberConfig{}, "does not apply"},
		{"base is a delta", delta(2, 3, nil), delta(3, 4, nil), MemberConfig{}, "itself a delta"},
	} {
		got, err := ApplyDelta(tc.base, tc.d)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

func clonePrefixes(p []netip.Prefix) []netip.Prefix { return append([]netip.Prefix{}, p...) }
