package dhcp

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gatenet/gate/services/netcfg"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

// FuzzLeaseFromACK: whatever packet a server sends, leaseFromACK does not
// panic, every value of the lease it makes is within bounds (checkLease:
// the domain a canonical DNS name or empty, addresses unicast, timers
// ordered, notes and String printable), and resolv.conf made from it
// holds exactly the comment, the lease's domain and its first servers.
func FuzzLeaseFromACK(f *testing.F) {
	seed := func(mods ...dhcpv4.Modifier) {
		m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeAck),
			dhcpv4.WithYourIP(net.IPv4(10, 1, 2, 3)), dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 1, 2, 1)))}, mods...)...)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(m.ToBytes())
	}
	seed()
	seed(dhcpv4.WithOption(dhcpv4.OptDomainName(hostileDomain)), dhcpv4.WithDNS(net.IPv4(224, 0, 0, 251), net.IPv4(10, 1, 0, 53)),
		dhcpv4.WithRouter(net.IPv4bcast, net.IPv4(10, 1, 2, 1)), dhcpv4.WithGeneric(dhcpv4.OptionInterfaceMTU, []byte{0xff, 0xff}),
		dhcpv4.WithLeaseTime(0xffffffff))
	seed(dhcpv4.WithOption(dhcpv4.OptDomainName("Corp.Example.\x00")), dhcpv4.WithDNS(manyIPs(12)...), dhcpv4.WithLeaseTime(120),
		dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(5*time.Second)), dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(10*time.Second)),
		dhcpv4.WithGeneric(dhcpv4.OptionInterfaceMTU, []byte{0x23, 0x29}))
	seed(dhcpv4.WithNetmask(net.CIDRMask(32, 32)), dhcpv4.WithRouter(net.IPv4(10, 1, 0, 1)), dhcpv4.WithLeaseTime(1))
	now := time.Unix(1000, 0)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		l, err := leaseFromACK(m, now)
		if err != nil {
			printable(t, "error", err.Error())
			return
		}
		checkLease(t, l)
		if !l.Obtained.Equal(now) || !l.Expiry().After(l.Rebind()) || !l.Rebind().After(l.Renew()) || !l.Renew().After(now) {
			t.Errorf("timers: renew %v rebind %v expiry %v", l.Renew(), l.Rebind(), l.Expiry())
		}
		// resolv.conf as the daemon makes it from a lease.
		r := netcfg.Resolver{Servers: l.DNS}
		if l.Domain != "" {
			r.Search = []string{l.Domain}
		}
		want := "# Written by gate from DHCP or static NIC settings; changes are overwritten.\n"
		if l.Domain != "" {
			want += "search " + l.Domain + "\n"
		}
		for i, d := range l.DNS {
			if i < 3 {
				want += "nameserver " + d.String() + "\n"
			}
		}
		if got := string(netcfg.RenderResolvConf(r)); got != want {
			t.Errorf("resolv.conf\n%s\nwant\n%s", got, want)
		}
		if strings.Count(want, "\n") != 1+min(len(l.DNS), 3)+btoi(l.Domain != "") {
			t.Errorf("resolv.conf has other lines: %q", want)
		}
	})
}
