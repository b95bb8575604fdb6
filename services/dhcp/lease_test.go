package dhcp

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func TestLeaseFromACK(t *testing.T) {
	now := time.Unix(1000, 0)
	ack := func(mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
		m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeAck),
			dhcpv4.WithYourIP(net.IPv4(10, 1, 2, 3)),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 1, 2, 1)))}, mods...)...)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	tests := []struct {
		name               string
		ack                *dhcpv4.DHCPv4
		addr               string
		lifetime, t1, t2   time.Duration
		wantRouter, wantNS int
	}{
		{"defaults", ack(dhcpv4.WithNetmask(net.CIDRMask(24, 32)), dhcpv4.WithLeaseTime(3600)), "10.1.2.3/24", time.Hour, 30 * time.Minute, 52*time.Minute + 30*time.Second, 0, 0},
		{"server timers", ack(dhcpv4.WithNetmask(net.CIDRMask(16, 32)), dhcpv4.WithLeaseTime(120),
			dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(5*time.Second)), dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(10*time.Second)),
			dhcpv4.WithRouter(net.IPv4(10, 1, 0, 1)), dhcpv4.WithDNS(net.IPv4(10, 1, 0, 53), net.IPv4(10, 1, 0, 53))), "10.1.2.3/16", 2 * time.Minute, 5 * time.Second, 10 * time.Second, 1, 1},
		{"T2 past the lease, T1 past T2: defaults", ack(dhcpv4.WithNetmask(net.CIDRMask(24, 32)), dhcpv4.WithLeaseTime(100),
			dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(90*time.Second)), dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(200*time.Second))), "10.1.2.3/24", 100 * time.Second, 43750 * time.Millisecond, 87500 * time.Millisecond, 0, 0},
		{"tiny lease raised, classful mask", ack(dhcpv4.WithLeaseTime(1)), "10.1.2.3/8", minLease, minLease / 2, minLease * 7 / 8, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := leaseFromACK(tc.ack, now)
			if err != nil {
				t.Fatal(err)
			}
			if l.Addr != netip.MustParsePrefix(tc.addr) || l.Lifetime != tc.lifetime || l.T1 != tc.t1 || l.T2 != tc.t2 {
				t.Errorf("got %s lease %v T1 %v T2 %v, want %s %v %v %v", l.Addr, l.Lifetime, l.T1, l.T2, tc.addr, tc.lifetime, tc.t1, tc.t2)
			}
			if got := btoi(l.Router.IsValid()); got != tc.wantRouter || len(l.DNS) != tc.wantNS {
				t.Errorf("router %v DNS %v", l.Router, l.DNS)
			}
			if l.Server != netip.MustParseAddr("10.1.2.1") || !l.Expiry().Equal(now.Add(tc.lifetime)) {
				t.Errorf("server %v expiry %v", l.Server, l.Expiry())
			}
		})
	}
	if _, err := leaseFromACK(ack(dhcpv4.WithYourIP(net.IPv4zero)), now); err == nil {
		t.Error("an ACK without an address must be refused")
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
