package controller

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/gatenet/gate/services/control"
)

func addrs(ss ...string) map[netip.Addr]string {
	m := map[netip.Addr]string{}
	for i, s := range ss {
		m[netip.MustParseAddr(s)] = fmt.Sprintf("%010d", i)
	}
	return m
}

func TestAllocate(t *testing.T) {
	for _, tc := range []struct {
		cidr string
		used map[netip.Addr]string
		want string // "" means exhausted
	}{
		{"192.168.254.0/24", addrs(), "192.168.254.1"},
		{"192.168.254.0/24", addrs("192.168.254.1"), "192.168.254.2"},
		{"192.168.254.0/24", addrs("192.168.254.1", "192.168.254.2", "192.168.254.4"), "192.168.254.3"},
		{"192.168.254.0/24", addrs("192.168.254.11"), "192.168.254.1"},
		{"10.0.0.0/30", addrs(), "10.0.0.1"},
		{"10.0.0.0/30", addrs("10.0.0.1"), "10.0.0.2"},
		{"10.0.0.0/30", addrs("10.0.0.1", "10.0.0.2"), ""},
		{"10.0.0.8/29", addrs("10.0.0.9", "10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.0.13"), "10.0.0.14"},
		{"10.0.0.8/29", addrs("10.0.0.9", "10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.0.13", "10.0.0.14"), ""},
	} {
		got, err := allocate(netip.MustParsePrefix(tc.cidr), taken{members: tc.used})
		if tc.want == "" {
			wantErr(t, tc.cidr, err, "has no free addresses")
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("allocate(%s, %v) = %v, %v; want %s", tc.cidr, tc.used, got, err, tc.want)
		}
	}
}

// TestPoolFillAndFree fills a /28 member by member, then frees one and
// checks that exactly that address comes back, never a duplicate and never
// the network or broadcast address.
func TestPoolFillAndFree(t *testing.T) {
	cidr := netip.MustParsePrefix("10.1.2.16/28")
	var members []memberRec
	for i := range 14 {
		used := usedAddresses(members, "")
		a, err := allocate(cidr, taken{members: used})
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		if _, dup := used[a]; dup {
			t.Fatalf("member %d: %s handed out twice", i, a)
		}
		if a == cidr.Addr() || a == broadcast(cidr) || !cidr.Contains(a) {
			t.Fatalf("member %d: got unusable %s", i, a)
		}
		members = append(members, memberRec{NodeID: fmt.Sprintf("%010d", i), Address: a})
	}
	_, err := allocate(cidr, taken{members: usedAddresses(members, "")})
	wantErr(t, "full /28", err, "network 10.1.2.16/28 has no free addresses: all 14 usable addresses are assigned")

	freed := members[5].Address
	members = append(members[:5], members[6:]...)
	a, err := allocate(cidr, taken{members: usedAddresses(members, "")})
	if err != nil || a != freed {
		t.Fatalf("after freeing %s got %v, %v", freed, a, err)
	}
	// A member's own address does not count against it.
	if a, err := allocate(cidr, taken{members: usedAddresses(members, members[0].NodeID)}); err != nil || a != members[0].Address {
		t.Fatalf("skip self: got %v, %v; want %s", a, err, members[0].Address)
	}
}

func TestPickAddress(t *testing.T) {
	cidr := netip.MustParsePrefix("192.168.254.0/24")
	used := addrs("192.168.254.1", "192.168.254.170")
	for _, tc := range []struct {
		want, got, passed string
	}{
		{"", "192.168.254.2", ""},
		{"192.168.254.11", "192.168.254.11", ""},
		{"192.168.254.170", "192.168.254.2", "already assigned"},
		{"192.168.254.255", "192.168.254.2", "broadcast"},
		{"10.0.0.1", "192.168.254.2", "outside"},
	} {
		var want netip.Addr
		if tc.want != "" {
			want = netip.MustParseAddr(tc.want)
		}
		got, passed, err := pickAddress(cidr, taken{members: used}, want)
		if err != nil || got.String() != tc.got {
			t.Errorf("pickAddress(%s) = %v, %v; want %s", tc.want, got, err, tc.got)
		}
		wantErr(t, "passed over "+tc.want, passed, tc.passed)
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// TestPromisedAddresses: a route's next hop and a live token's address are
// never handed out from the pool, nor given to a member that asks for
// them; each refusal says what keeps the address.
func TestPromisedAddresses(t *testing.T) {
	cidr := netip.MustParsePrefix("10.20.0.0/29")
	routes := []control.Route{{Dest: netip.MustParsePrefix("172.16.0.0/16"), Via: netip.MustParseAddr("10.20.0.1")}}
	tokens := map[netip.Addr]string{netip.MustParseAddr("10.20.0.2"): "0123456789abcdef"}
	tk := taken{members: addrs("10.20.0.3"), promised: promises(routes, tokens)}
	if a, err := allocate(cidr, tk); err != nil || a.String() != "10.20.0.4" {
		t.Errorf("allocate = %v, %v; want 10.20.0.4, past the next hop, the token's and the member's", a, err)
	}
	for _, tc := range []struct{ addr, want string }{
		{"10.20.0.1", "requested address 10.20.0.1 is reserved: the next hop of route 172.16.0.0/16"},
		{"10.20.0.2", "requested address 10.20.0.2 is reserved: promised by join token 0123456789abcdef"},
		{"10.20.0.3", "is already assigned to member"},
	} {
		a, passedOver, err := pickAddress(cidr, tk, netip.MustParseAddr(tc.addr))
		if err != nil || a.String() != "10.20.0.4" {
			t.Errorf("pickAddress(%s) = %v, %v; want the pool's 10.20.0.4", tc.addr, a, err)
		}
		wantErr(t, tc.addr, passedOver, tc.want)
	}
	full := taken{members: addrs("10.20.0.3", "10.20.0.4", "10.20.0.5", "10.20.0.6"), promised: tk.promised}
	_, err := allocate(cidr, full)
	wantErr(t, "full", err, "all 6 usable addresses are assigned or reserved")
}
