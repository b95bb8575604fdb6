// Package dhcp is the appliance's DHCPv4 client: one Client per NIC, built
// on github.com/insomniacslk/dhcp's nclient4 (the library u-root's dhclient
// wraps), running the whole lease life cycle of RFC 2131 section 4.4:
// discover, offer, request, ack; renew with the server at T1 (unicast);
// rebind with any server at T2 (broadcast); drop the lease when it expires
// or a server NAKs it; start over, asking for the old address, when the
// link comes back up.
//
// It never touches the kernel's network configuration. It talks DHCP on a
// raw packet socket (which works on a NIC without an address) and reports
// each lease, renewal and loss to a callback; the daemon turns the lease
// into desired state and services/reconciler, the only writer of kernel
// state, puts the address, the default route and resolv.conf in place.
// Why: one writer means one place that decides (static settings beat
// DHCP, the WAN's default route beats the others', teardown removes
// exactly what was added), and a DHCP client that configured the kernel
// itself would race the reconciler's periodic resync, which would delete
// an address it did not know about. It also keeps this package testable
// against a real server without any kernel side effects of its own.
//
// What the client needs from the kernel is only that the address it was
// given is on the NIC by the time it renews: a renewal is answered by
// unicast to that address, and the server must resolve it with ARP.
package dhcp

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Lease is what a DHCP server gave a NIC: the parts Gate applies, and the
// timers that govern it.
type Lease struct {
	Addr     netip.Prefix // the address with the subnet's prefix length
	Router   netip.Addr   // default gateway; invalid when the server gave none
	DNS      []netip.Addr
	Domain   string // domain name (option 15), for resolv.conf's search
	Server   netip.Addr
	Obtained time.Time     // when the ACK arrived: the timers count from here
	Lifetime time.Duration // option 51
	T1       time.Duration // renew (option 58; default half the lifetime)
	T2       time.Duration // rebind (option 59; default 7/8 of the lifetime)
	MTU      int           // option 26; 0 when not given

	ack *dhcpv4.DHCPv4 // the server's ACK, which a renewal is built from
}

// Renew is when the client starts renewing with its server.
func (l *Lease) Renew() time.Time { return l.Obtained.Add(l.T1) }

// Rebind is when the client starts asking any server.
func (l *Lease) Rebind() time.Time { return l.Obtained.Add(l.T2) }

// Expiry is when the address must go.
func (l *Lease) Expiry() time.Time { return l.Obtained.Add(l.Lifetime) }

// String is a one-line summary for logs.
func (l *Lease) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", l.Addr)
	if l.Router.IsValid() {
		fmt.Fprintf(&b, " router %s", l.Router)
	}
	if len(l.DNS) > 0 {
		s := make([]string, len(l.DNS))
		for i, a := range l.DNS {
			s[i] = a.String()
		}
		fmt.Fprintf(&b, " dns %s", strings.Join(s, ","))
	}
	if l.Domain != "" {
		fmt.Fprintf(&b, " domain %s", l.Domain)
	}
	fmt.Fprintf(&b, " from %s, lease %v (renew %v, rebind %v)", l.Server, l.Lifetime, l.T1, l.T2)
	return b.String()
}

// Equal reports whether two leases configure the same thing (timers
// aside): a renewal that changes nothing needs no kernel change.
func (l *Lease) Equal(o *Lease) bool {
	if l == nil || o == nil {
		return l == o
	}
	return l.Addr == o.Addr && l.Router == o.Router && slices.Equal(l.DNS, o.DNS) && l.Domain == o.Domain && l.MTU == o.MTU
}

// minLease is the shortest lifetime the client accepts as given; shorter
// ones are raised to it, so that a broken server cannot make it spin.
const minLease = 10 * time.Second

// leaseFromACK reads a lease out of a server's ACK. It fails when the ACK
// has no usable address.
func leaseFromACK(ack *dhcpv4.DHCPv4, now time.Time) (*Lease, error) {
	addr, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
	if !ok || !addr.IsGlobalUnicast() {
		return nil, fmt.Errorf("ACK without a usable address (yiaddr %v)", ack.YourIPAddr)
	}
	bits := 32
	if m := ack.SubnetMask(); m != nil {
		ones, size := m.Size()
		if size != 32 {
			return nil, fmt.Errorf("ACK with an invalid subnet mask %v", net.IP(m))
		}
		bits = ones
	} else {
		// RFC 2131 lets a server leave the mask out; guess the classful
		// one as dhclient does.
		bits = classful(addr)
	}
	l := &Lease{Addr: netip.PrefixFrom(addr, bits), Obtained: now, Domain: ack.DomainName()}
	if s, ok := netip.AddrFromSlice(ack.ServerIdentifier().To4()); ok {
		l.Server = s
	} else if s, ok := netip.AddrFromSlice(ack.ServerIPAddr.To4()); ok {
		l.Server = s
	}
	for _, r := range ack.Router() {
		if a, ok := netip.AddrFromSlice(r.To4()); ok && !a.IsUnspecified() {
			l.Router = a
			break
		}
	}
	for _, d := range ack.DNS() {
		if a, ok := netip.AddrFromSlice(d.To4()); ok && !a.IsUnspecified() && !slices.Contains(l.DNS, a) {
			l.DNS = append(l.DNS, a)
		}
	}
	if v := ack.Options.Get(dhcpv4.OptionInterfaceMTU); len(v) == 2 {
		if mtu := int(v[0])<<8 | int(v[1]); mtu >= 576 {
			l.MTU = mtu
		}
	}
	l.Lifetime = max(ack.IPAddressLeaseTime(0), minLease)
	if ack.IPAddressLeaseTime(0) == 0 {
		l.Lifetime = time.Hour // RFC 2131 makes option 51 mandatory in an ACK; be lenient
	}
	l.T1 = ack.IPAddressRenewalTime(l.Lifetime / 2)
	l.T2 = ack.IPAddressRebindingTime(l.Lifetime * 7 / 8)
	// Keep 0 < T1 < T2 < lifetime whatever the server said (RFC 2131
	// 4.4.5 only recommends the defaults).
	if l.T2 <= 0 || l.T2 >= l.Lifetime {
		l.T2 = l.Lifetime * 7 / 8
	}
	if l.T1 <= 0 || l.T1 >= l.T2 {
		l.T1 = min(l.Lifetime/2, l.T2/2)
	}
	return l, nil
}

func classful(a netip.Addr) int {
	switch b := a.As4()[0]; {
	case b < 128:
		return 8
	case b < 192:
		return 16
	default:
		return 24
	}
}
