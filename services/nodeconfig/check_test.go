package nodeconfig_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/gatenet/gate/services/names"
	"github.com/gatenet/gate/services/nodeconfig"
)

func TestCheckInterfaceName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"eth0", true}, {"eth0.100", true}, {"br-lan", true}, {"wg_0", true}, {"enp0s31f6", true},
		{strings.Repeat("a", 15), true}, {"a", true}, {"...", true}, {"e\"x", true},
		{"", false}, {".", false}, {"..", false}, {strings.Repeat("a", 16), false},
		{"eth0/1", false}, {"eth0:1", false}, {"eth 0", false}, {"eth\t0", false}, {"eth0\n", false},
		{"\x1b[31m", false}, {"eth\x00", false}, {"eth0\x7f", false}, {"eth\u00e9", false}, {"a\u009bb", false}, {"\xff", false},
	} {
		err := nodeconfig.CheckInterfaceName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("CheckInterfaceName(%q) = %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "is not an interface name (1-15 printable ASCII characters") {
			t.Errorf("CheckInterfaceName(%q): message %q", tc.name, err)
		}
	}
}

func TestCheckHostname(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"gate-1", true}, {"aws-gate-1.example.com", true}, {"A1", true}, {"1234", true},
		{strings.Repeat("a", 63), true}, {strings.Repeat("a", 62) + ".b", true}, {strings.Repeat("a.", 32), false},
		{strings.Repeat("a", 64), false},        // a label of 64
		{strings.Repeat("a.", 31) + "bb", true}, // 64 bytes
		{strings.Repeat("a.", 32) + "b", false}, // 65 bytes: the kernel's limit
		{"", false}, {"-a", false}, {"a-", false}, {"a..b", false}, {".a", false}, {"a.", false}, {"a_b", false},
		{"a b", false}, {"a\x1b", false}, {"gat\u00e9", false}, {"xn--gat-bma", true},
	} {
		err := nodeconfig.CheckHostname(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("CheckHostname(%q) = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

// TestCheckNameserverIsResolvConfsRule: the document refuses exactly the
// servers resolv.conf would leave out.
func TestCheckNameserverIsResolvConfsRule(t *testing.T) {
	for _, s := range []string{
		"1.1.1.1", "10.0.0.2", "2001:db8::53", "fe80::1", "fe80::1%eth0", "fe80::1%\x1b[2J", "::ffff:1.1.1.1",
		"0.0.0.0", "::", "127.0.0.1", "127.0.0.53", "::1", "224.0.0.1", "ff02::1", "255.255.255.255", "169.254.169.253",
	} {
		a := netip.MustParseAddr(s)
		_, want := names.Nameserver(a)
		err := nodeconfig.CheckNameserver(a)
		if (err == nil) != want {
			t.Errorf("CheckNameserver(%q) = %v; names.Nameserver says %v", s, err, want)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\x1b") {
			t.Errorf("CheckNameserver(%q): message %q", s, err)
		}
	}
	if _, err := nodeconfig.ParseNameserver("dns.example"); err == nil || err.Error() != `"dns.example" is not an IP address` {
		t.Errorf("ParseNameserver(dns.example) = %v", err)
	}
	if a, err := nodeconfig.ParseNameserver("10.0.0.2"); err != nil || a != netip.MustParseAddr("10.0.0.2") {
		t.Errorf("ParseNameserver(10.0.0.2) = %v, %v", a, err)
	}
}
