package netcfg

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/gatenet/gate/services/names"
)

// checkResolvConf fails t unless text is what RenderResolvConf may write:
// the comment line, at most one search line of valid DNS names, and at
// most three nameserver lines of plain addresses, nothing else.
func checkResolvConf(t testing.TB, text []byte) {
	t.Helper()
	lines := strings.Split(string(text), "\n")
	if lines[len(lines)-1] != "" {
		t.Fatalf("resolv.conf does not end in a newline: %q", text)
	}
	lines = lines[:len(lines)-1]
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "# Written by gate ") {
		t.Fatalf("resolv.conf without its comment line: %q", text)
	}
	search, ns := 0, 0
	for _, line := range lines[1:] {
		kind, rest, _ := strings.Cut(line, " ")
		switch kind {
		case "search":
			search++
			for _, d := range strings.Split(rest, " ") {
				if c, ok := names.DNSName(d); !ok || c != d {
					t.Errorf("search entry %q is not a canonical DNS name in %q", d, text)
				}
			}
		case "nameserver":
			ns++
			a, err := netip.ParseAddr(rest)
			if c, ok := names.Nameserver(a); err != nil || !ok || c.String() != rest {
				t.Errorf("nameserver %q is not a plain unicast address in %q", rest, text)
			}
		default:
			t.Errorf("line %q is neither search nor nameserver in %q", line, text)
		}
	}
	if search > 1 || ns > maxNameservers {
		t.Errorf("%d search lines and %d nameservers in %q", search, ns, text)
	}
}

// TestAttackRenderResolvConf: whatever a caller passes, RenderResolvConf
// writes no line but its own (finding 7: a DHCP domain name with newlines
// put a rogue nameserver ahead of the WAN's).
func TestAttackRenderResolvConf(t *testing.T) {
	tests := []struct {
		name string
		r    Resolver
		want string
	}{
		{"newline in search", Resolver{
			Search:  []string{"corp\nnameserver 203.0.113.66\noptions ndots:15", "gate.test"},
			Servers: []netip.Addr{addr("10.0.0.2")},
		}, "search gate.test\nnameserver 10.0.0.2\n"},
		{"space and tab in search", Resolver{Search: []string{"a.com b.com", "x\ty", "ok.example"}},
			"search ok.example\n"},
		{"only bad search", Resolver{Search: []string{"", ".", "-a.com", "a..b", "\x00", "c\rnameserver 1.1.1.1"},
			Servers: []netip.Addr{addr("10.0.0.2")}}, "nameserver 10.0.0.2\n"},
		{"search upper case and trailing dot, deduplicated", Resolver{Search: []string{"Corp.Example.", "corp.example"}},
			"search corp.example\n"},
		{"zone with a newline", Resolver{Servers: []netip.Addr{
			addr("fe80::1").WithZone("eth0\nnameserver 203.0.113.66"), addr("10.0.0.2")}},
			"nameserver 10.0.0.2\n"},
		{"unusable servers", Resolver{Servers: []netip.Addr{
			{}, addr("0.0.0.0"), addr("::"), addr("224.0.0.251"), addr("ff02::fb"), addr("255.255.255.255"),
			addr("127.0.0.1"), addr("::1"), addr("10.0.0.2"), addr("2001:db8::53")}},
			"nameserver 10.0.0.2\nnameserver 2001:db8::53\n"},
		{"mapped address written as IPv4, deduplicated", Resolver{Servers: []netip.Addr{
			addr("::ffff:10.0.0.2"), addr("10.0.0.2"), addr("::ffff:224.0.0.1")}},
			"nameserver 10.0.0.2\n"},
		{"at most three, in order", Resolver{Servers: []netip.Addr{
			addr("10.0.0.1"), addr("10.0.0.2"), addr("169.254.169.253"), addr("10.0.0.4")}},
			"nameserver 10.0.0.1\nnameserver 10.0.0.2\nnameserver 169.254.169.253\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := RenderResolvConf(tc.r)
			want := "# Written by gate from DHCP or static NIC settings; changes are overwritten.\n" + tc.want
			if string(got) != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
			checkResolvConf(t, got)
		})
	}
}

// FuzzSearchLine: a name names.DNSName accepts is canonical (accepted
// again as itself) and holds nothing but lower-case letters, digits,
// hyphens and dots; so a search line built from accepted names is one
// line.
func FuzzSearchLine(f *testing.F) {
	for _, s := range []string{"gate.test", "Corp.Example.", "corp\nnameserver 203.0.113.66", "-a", "a..b", strings.Repeat("a.", 127), "xn--p1ai."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := names.DNSName(s)
		if !ok {
			if c != "" {
				t.Fatalf("DNSName(%q) refused but returned %q", s, c)
			}
			return
		}
		if c2, ok2 := names.DNSName(c); !ok2 || c2 != c {
			t.Fatalf("DNSName(%q) = %q, which is not canonical (%q, %v)", s, c, c2, ok2)
		}
		if len(c) == 0 || len(c) > 253 || !strings.EqualFold(strings.TrimSuffix(s, "."), c) {
			t.Fatalf("DNSName(%q) = %q", s, c)
		}
		for _, r := range c {
			if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '.') {
				t.Fatalf("DNSName(%q) = %q holds %q", s, c, r)
			}
		}
		for _, l := range strings.Split(c, ".") {
			if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
				t.Fatalf("DNSName(%q) = %q has label %q", s, c, l)
			}
		}
		checkResolvConf(t, RenderResolvConf(Resolver{Search: []string{s, c}, Servers: []netip.Addr{addr("10.0.0.2")}}))
	})
}
