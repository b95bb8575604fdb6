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
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatenet/gate/services/names"
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
	// Notes say what the ACK offered that was left out of the lease,
	// each value quoted so that it is safe on a log line.
	Notes []string

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
		// A lease from leaseFromACK holds a valid name; one made by hand
		// may not, and a log line must not carry it raw.
		if d, ok := names.DNSName(l.Domain); ok {
			fmt.Fprintf(&b, " domain %s", d)
		} else {
			b.WriteString(" domain (invalid)")
		}
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

// Bounds on what Gate takes from an ACK. A DHCP server is anyone on the
// NIC's link, so every value is checked where the packet becomes a Lease:
// what is out of bounds is left out (with a note), and an ACK whose
// address or mask is unusable is refused.
const (
	// minLease is the shortest lifetime the client accepts as given;
	// shorter ones are raised to it, so that a broken server cannot make
	// it spin. maxLease is the longest: an infinite lease (0xffffffff
	// s) is held for a year and renewed at half of it. (Unbounded, 7/8
	// of it overflowed time.Duration into negative timers: a renewal
	// storm.)
	minLease = 10 * time.Second
	maxLease = 365 * 24 * time.Hour
	// maxDNS is how many DNS servers a lease keeps; resolv.conf takes 3.
	maxDNS = 8
	// minPrefix is the shortest prefix a lease may give its address: a
	// /0 or /1 would make the link the route to much of the Internet.
	minPrefix = 8
	// minMTU (RFC 791's 576, as dhclient) and maxMTU (jumbo frames)
	// bound option 26.
	minMTU = 576
	maxMTU = 9216
	// maxNoted is how much of a refused value a note quotes, maxNotes
	// how many notes a lease keeps.
	maxNoted = 64
	maxNotes = 8
)

// unicast reports whether a is an IPv4 address a host or router may have:
// not unspecified or in 0.0.0.0/8, loopback, multicast, reserved
// (240.0.0.0/4, which holds the broadcast address).
func unicast(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	b := a.As4()[0]
	return b != 0 && b != 127 && b < 224
}

// usableHost reports whether a may be a host on p's subnet: unicast, and
// (for prefixes up to /30) neither the subnet's network nor its broadcast
// address.
func usableHost(a netip.Addr, p netip.Prefix) bool {
	if !unicast(a) {
		return false
	}
	if p.Bits() <= 30 && p.Contains(a) {
		n := p.Masked().Addr().As4()
		bc := [4]byte{}
		mask := net.CIDRMask(p.Bits(), 32)
		for i := range bc {
			bc[i] = n[i] | ^mask[i]
		}
		return a != p.Masked().Addr() && a != netip.AddrFrom4(bc)
	}
	return true
}

// quote renders a value from a packet for a log line: in double quotes,
// with control and non-ASCII characters escaped, cut at maxNoted bytes.
func quote(s string) string {
	if len(s) > maxNoted {
		return strconv.QuoteToASCII(s[:maxNoted]) + "..."
	}
	return strconv.QuoteToASCII(s)
}

// maxError is how long an error kept for Status may be.
const maxError = 512

// escape makes s safe to show: control and non-ASCII characters escaped
// as in Go strings (\n, \x1b, \u202e), cut at maxError bytes.
func escape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if b.Len() >= maxError {
			b.WriteString("...")
			break
		}
		if c >= 0x20 && c < 0x7f {
			b.WriteRune(c)
			continue
		}
		q := strconv.QuoteRuneToASCII(c) // '\n', '\x1b', '\u202e'
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

// ip4 reads an IPv4 address from an option's or a field's bytes.
func ip4(ip net.IP) (netip.Addr, bool) {
	return netip.AddrFromSlice(ip.To4())
}

// leaseFromACK reads a lease out of a server's ACK, bounding every value
// (see the constants above). It fails when the ACK has no usable address
// or mask.
func leaseFromACK(ack *dhcpv4.DHCPv4, now time.Time) (*Lease, error) {
	addr, ok := ip4(ack.YourIPAddr)
	if !ok || !unicast(addr) || addr.IsLinkLocalUnicast() {
		return nil, fmt.Errorf("ACK without a usable address (yiaddr %v)", ack.YourIPAddr)
	}
	var bits int
	if m := ack.SubnetMask(); m != nil {
		ones, size := m.Size()
		if size != 32 || ones < minPrefix {
			return nil, fmt.Errorf("ACK with an unusable subnet mask %v", net.IP(m))
		}
		bits = ones
	} else {
		// RFC 2131 lets a server leave the mask out; guess the classful
		// one as dhclient does.
		bits = classful(addr)
	}
	l := &Lease{Addr: netip.PrefixFrom(addr, bits), Obtained: now}
	if !usableHost(addr, l.Addr) {
		return nil, fmt.Errorf("ACK with an address that is not a host on its subnet (%s)", l.Addr)
	}
	refused := 0
	note := func(format string, args ...any) {
		if refused++; len(l.Notes) < maxNotes-1 {
			l.Notes = append(l.Notes, fmt.Sprintf(format, args...))
		}
	}

	if v := ack.Options.Get(dhcpv4.OptionDomainName); v != nil {
		// Some servers end the name with a NUL (RFC 2132 says not to).
		raw := strings.TrimRight(string(v), "\x00")
		if d, ok := names.DNSName(raw); ok {
			l.Domain = d
		} else {
			note("domain name %s is not a DNS name: ignored", quote(string(v)))
		}
	}

	if s, ok := ip4(ack.ServerIdentifier()); ok && unicast(s) {
		l.Server = s
	} else {
		if ack.ServerIdentifier() != nil {
			note("server identifier %s is not a unicast address: ignored", ack.ServerIdentifier())
		}
		if s, ok := ip4(ack.ServerIPAddr); ok && unicast(s) {
			l.Server = s
		}
	}

	for _, r := range ack.Router() {
		a, ok := ip4(r)
		if ok && usableHost(a, l.Addr) && a != addr {
			l.Router = a
			break
		}
		note("router %v is not a usable gateway: ignored", r)
	}

	extra := 0
	for _, d := range ack.DNS() {
		a, ok := ip4(d)
		if ok {
			a, ok = names.Nameserver(a)
		}
		switch {
		case !ok || !unicast(a):
			note("DNS server %v is not a unicast address: ignored", d)
		case slices.Contains(l.DNS, a):
		case len(l.DNS) == maxDNS:
			extra++
		default:
			l.DNS = append(l.DNS, a)
		}
	}
	if extra > 0 {
		note("%d more DNS servers than %d: ignored", extra, maxDNS)
	}

	if v := ack.Options.Get(dhcpv4.OptionInterfaceMTU); v != nil {
		if len(v) == 2 && int(binary.BigEndian.Uint16(v)) >= minMTU && int(binary.BigEndian.Uint16(v)) <= maxMTU {
			l.MTU = int(binary.BigEndian.Uint16(v))
		} else {
			note("MTU %s is not one of %d to %d: ignored", mtuText(v), minMTU, maxMTU)
		}
	}

	l.Lifetime = ack.IPAddressLeaseTime(0)
	switch {
	case l.Lifetime == 0:
		l.Lifetime = time.Hour // RFC 2131 makes option 51 mandatory in an ACK; be lenient
	case l.Lifetime < minLease:
		l.Lifetime = minLease
	case l.Lifetime > maxLease:
		l.Lifetime = maxLease
	}
	l.T1 = ack.IPAddressRenewalTime(l.Lifetime / 2)
	l.T2 = ack.IPAddressRebindingTime(l.Lifetime / 8 * 7)
	// Keep 0 < T1 < T2 < lifetime whatever the server said (RFC 2131
	// 4.4.5 only recommends the defaults).
	if l.T2 <= 0 || l.T2 >= l.Lifetime {
		l.T2 = l.Lifetime / 8 * 7
	}
	if l.T1 <= 0 || l.T1 >= l.T2 {
		l.T1 = min(l.Lifetime/2, l.T2/2)
	}
	if len(l.Notes) < refused {
		l.Notes = append(l.Notes, fmt.Sprintf("%d more values refused", refused-len(l.Notes)))
	}
	return l, nil
}

// mtuText renders option 26's bytes: the number when there are two.
func mtuText(v []byte) string {
	if len(v) == 2 {
		return strconv.Itoa(int(binary.BigEndian.Uint16(v)))
	}
	return fmt.Sprintf("of %d bytes", len(v))
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
