package dhcp

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatenet/gate/services/names"
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

// hostileDomain is finding 7's option 15: with newlines, it put a rogue
// nameserver (and ndots) into resolv.conf ahead of the WAN's servers.
const hostileDomain = "corp\nnameserver 203.0.113.66\noptions ndots:15"

// printable fails t when s holds a control or non-ASCII character: what
// Gate logs or shows from a lease must be safe on a terminal.
func printable(t testing.TB, what, s string) {
	t.Helper()
	for _, r := range s {
		if r < 0x20 || r >= 0x7f {
			t.Errorf("%s holds %q: %q", what, r, s)
			return
		}
	}
}

// TestAttackLeaseFromACK: every value Gate takes from an ACK is bounded;
// what is out of bounds is left out of the lease (or, for the address and
// its mask, refuses the ACK), with a note quoting it safely.
func TestAttackLeaseFromACK(t *testing.T) {
	now := time.Unix(1000, 0)
	ack := func(mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
		m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeAck),
			dhcpv4.WithYourIP(net.IPv4(10, 1, 2, 3)), dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 1, 2, 1)))}, mods...)...)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	mtu := func(v uint16) dhcpv4.Modifier {
		return dhcpv4.WithGeneric(dhcpv4.OptionInterfaceMTU, []byte{byte(v >> 8), byte(v)})
	}
	ip := net.ParseIP
	tests := []struct {
		name   string
		ack    *dhcpv4.DHCPv4
		check  func(*Lease) bool
		noted  string // a note must mention this
		refuse bool   // the ACK is refused
	}{
		{"domain with newlines", ack(dhcpv4.WithOption(dhcpv4.OptDomainName(hostileDomain))),
			func(l *Lease) bool { return l.Domain == "" }, `"corp\nnameserver 203.0.113.66\noptions ndots:15"`, false},
		{"domain with a space", ack(dhcpv4.WithOption(dhcpv4.OptDomainName("a.com b.com"))),
			func(l *Lease) bool { return l.Domain == "" }, `"a.com b.com"`, false},
		{"domain with escapes and non-ASCII", ack(dhcpv4.WithOption(dhcpv4.OptDomainName("\x1b[2Jé\u202e"))),
			func(l *Lease) bool { return l.Domain == "" }, `"\x1b[2J\u00e9\u202e"`, false},
		{"domain upper case, trailing dot and NUL", ack(dhcpv4.WithOption(dhcpv4.OptDomainName("Corp.Example.\x00"))),
			func(l *Lease) bool { return l.Domain == "corp.example" }, "", false},
		{"DNS servers not unicast", ack(dhcpv4.WithDNS(ip("224.0.0.251"), ip("255.255.255.255"), ip("127.0.0.1"), ip("0.0.0.0"), ip("10.1.0.53"), ip("10.1.0.53"))),
			func(l *Lease) bool { return slices.Equal(l.DNS, []netip.Addr{netip.MustParseAddr("10.1.0.53")}) }, "224.0.0.251", false},
		{"too many DNS servers", ack(dhcpv4.WithDNS(manyIPs(40)...)),
			func(l *Lease) bool { return len(l.DNS) == maxDNS }, "32 more DNS servers", false},
		{"many bad values, few notes", ack(dhcpv4.WithRouter(slices.Repeat([]net.IP{ip("224.0.0.1")}, 60)...), dhcpv4.WithDNS(slices.Repeat([]net.IP{ip("0.0.0.0")}, 60)...)),
			func(l *Lease) bool { return !l.Router.IsValid() && len(l.DNS) == 0 && len(l.Notes) <= maxNotes }, "more values refused", false},
		{"router broadcast", ack(dhcpv4.WithRouter(ip("255.255.255.255"))),
			func(l *Lease) bool { return !l.Router.IsValid() }, "255.255.255.255", false},
		{"router multicast, loopback, own address, subnet broadcast, then good", ack(dhcpv4.WithRouter(ip("224.0.0.1"), ip("127.0.0.1"), ip("10.1.2.3"), ip("10.1.2.255"), ip("10.1.2.0"), ip("10.1.2.1"))),
			func(l *Lease) bool { return l.Router == netip.MustParseAddr("10.1.2.1") }, "10.1.2.255", false},
		{"MTU too big", ack(mtu(65535)), func(l *Lease) bool { return l.MTU == 0 }, "65535", false},
		{"MTU too small", ack(mtu(68)), func(l *Lease) bool { return l.MTU == 0 }, "68", false},
		{"MTU jumbo", ack(mtu(9001)), func(l *Lease) bool { return l.MTU == 9001 }, "", false},
		{"server identifier broadcast", ack(dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip("255.255.255.255")))),
			func(l *Lease) bool { return !l.Server.IsValid() }, "255.255.255.255", false},
		{"server identifier multicast, siaddr good", ack(dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip("224.0.0.1"))), dhcpv4.WithServerIP(ip("10.1.2.9"))),
			func(l *Lease) bool { return l.Server == netip.MustParseAddr("10.1.2.9") }, "224.0.0.1", false},
		{"infinite lease", ack(dhcpv4.WithLeaseTime(0xffffffff)),
			func(l *Lease) bool { return l.Lifetime == maxLease && l.T1 == maxLease/2 && l.T2 == maxLease/8*7 }, "", false},
		{"infinite lease with timers", ack(dhcpv4.WithLeaseTime(0xffffffff), dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(0xffffffff*time.Second)), dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(0xfffffffe*time.Second))),
			func(l *Lease) bool { return l.Lifetime == maxLease && l.T1 == maxLease/8*7/2 && l.T2 == maxLease/8*7 }, "", false},
		{"mask /0", ack(dhcpv4.WithNetmask(net.CIDRMask(0, 32))), nil, "", true},
		{"mask /7", ack(dhcpv4.WithNetmask(net.CIDRMask(7, 32))), nil, "", true},
		{"mask not contiguous", ack(dhcpv4.WithNetmask(net.IPv4Mask(255, 0, 255, 0))), nil, "", true},
		{"mask /32", ack(dhcpv4.WithNetmask(net.CIDRMask(32, 32)), dhcpv4.WithRouter(ip("10.1.0.1"))),
			func(l *Lease) bool { return l.Addr.Bits() == 32 && l.Router == netip.MustParseAddr("10.1.0.1") }, "", false},
		{"address is the subnet's broadcast", ack(dhcpv4.WithYourIP(ip("10.1.2.255"))), nil, "", true},
		{"address is the subnet's network", ack(dhcpv4.WithYourIP(ip("10.1.2.0"))), nil, "", true},
		{"address in 0/8", ack(dhcpv4.WithYourIP(ip("0.1.2.3"))), nil, "", true},
		{"address in 240/4", ack(dhcpv4.WithYourIP(ip("240.1.2.3"))), nil, "", true},
		{"address link-local", ack(dhcpv4.WithYourIP(ip("169.254.1.2")), dhcpv4.WithNetmask(net.CIDRMask(16, 32))), nil, "", true},
		{"MTU of 3 bytes", ack(dhcpv4.WithGeneric(dhcpv4.OptionInterfaceMTU, []byte{5, 0xdc, 0})), func(l *Lease) bool { return l.MTU == 0 }, "MTU of 3 bytes", false},
		{"address multicast", ack(dhcpv4.WithYourIP(ip("224.1.2.3"))), nil, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := leaseFromACK(tc.ack, now)
			if tc.refuse {
				if err == nil {
					t.Fatalf("ACK taken as %s, want it refused", l)
				}
				printable(t, "error", err.Error())
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(l) {
				t.Errorf("lease %s (domain %q, DNS %v, router %v, MTU %d, server %v, T1 %v T2 %v lifetime %v)", l, l.Domain, l.DNS, l.Router, l.MTU, l.Server, l.T1, l.T2, l.Lifetime)
			}
			checkLease(t, l)
			notes := strings.Join(l.Notes, "; ")
			if tc.noted != "" && !strings.Contains(notes, tc.noted) {
				t.Errorf("notes %q do not mention %s", notes, tc.noted)
			}
			if tc.noted == "" && notes != "" {
				t.Errorf("unexpected notes %q", notes)
			}
		})
	}
}

func manyIPs(n int) []net.IP {
	var out []net.IP
	for i := range n {
		out = append(out, net.IPv4(10, 1, 0, byte(i+1)))
	}
	return out
}

// checkLease fails t unless l holds only what leaseFromACK may put in a
// lease: a bounded value in every field, printable notes and String.
func checkLease(t testing.TB, l *Lease) {
	t.Helper()
	a := l.Addr.Addr()
	if !l.Addr.IsValid() || !a.Is4() || l.Addr.Bits() < minPrefix || !unicast(a) {
		t.Errorf("address %s", l.Addr)
	}
	if l.Router.IsValid() && (!unicast(l.Router) || l.Router == a) {
		t.Errorf("router %s", l.Router)
	}
	if l.Server.IsValid() && !unicast(l.Server) {
		t.Errorf("server %s", l.Server)
	}
	if len(l.DNS) > maxDNS {
		t.Errorf("%d DNS servers", len(l.DNS))
	}
	for _, d := range l.DNS {
		if c, ok := names.Nameserver(d); !ok || c != d || !d.Is4() {
			t.Errorf("DNS server %s", d)
		}
	}
	if l.Domain != "" {
		if c, ok := names.DNSName(l.Domain); !ok || c != l.Domain {
			t.Errorf("domain %q", l.Domain)
		}
	}
	if l.MTU != 0 && (l.MTU < minMTU || l.MTU > maxMTU) {
		t.Errorf("MTU %d", l.MTU)
	}
	if !(0 < l.T1 && l.T1 < l.T2 && l.T2 < l.Lifetime && minLease <= l.Lifetime && l.Lifetime <= maxLease) {
		t.Errorf("timers T1 %v T2 %v lifetime %v", l.T1, l.T2, l.Lifetime)
	}
	printable(t, "String()", l.String())
	for _, n := range l.Notes {
		printable(t, "note", n)
		if len(n) > 200 {
			t.Errorf("note of %d bytes", len(n))
		}
	}
}

// TestAttackLeaseString: String re-renders typed values; a hand-made
// lease with a hostile domain does not put it on a log line.
func TestAttackLeaseString(t *testing.T) {
	l := &Lease{Addr: netip.MustParsePrefix("10.1.2.3/24"), Domain: hostileDomain, Lifetime: time.Hour}
	s := l.String()
	printable(t, "String()", s)
	if strings.Contains(s, "203.0.113.66") {
		t.Errorf("String() = %q", s)
	}
}
