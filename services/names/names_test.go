package names

import (
	"net/netip"
	"strings"
	"testing"
)

func TestDNSName(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	long253 := strings.Join([]string{label63, label63, label63, strings.Repeat("b", 61)}, ".") // 63*3+61+3 = 253
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"gate.test", "gate.test", true},
		{"Corp.Example.", "corp.example", true},
		{"corp", "corp", true},
		{"a-b.c0-9.x", "a-b.c0-9.x", true},
		{"4.example", "4.example", true},
		{label63 + ".com", label63 + ".com", true},
		{long253, long253, true},
		{long253 + ".", long253, true},
		{"", "", false},
		{".", "", false},
		{"..", "", false},
		{".corp", "", false},
		{"corp..", "", false},
		{"a..b", "", false},
		{"-corp", "", false},
		{"corp-", "", false},
		{"a.-b.c", "", false},
		{"a.b-.c", "", false},
		{label63 + "a.com", "", false},
		{long253 + "b", "", false},
		{"corp\nnameserver 203.0.113.66\noptions ndots:15", "", false},
		{"corp\x00", "", false},
		{"a b", "", false},
		{"a\tb", "", false},
		{"a_b.com", "", false},
		{"a/b", "", false},
		{"é.com", "", false},
		{"xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai", true},
	}
	for _, tc := range tests {
		got, ok := DNSName(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("DNSName(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestNameserver(t *testing.T) {
	tests := []struct {
		in   netip.Addr
		want string // "" when refused
	}{
		{netip.MustParseAddr("10.0.0.2"), "10.0.0.2"},
		{netip.MustParseAddr("169.254.169.253"), "169.254.169.253"},
		{netip.MustParseAddr("2001:db8::53"), "2001:db8::53"},
		{netip.MustParseAddr("fe80::1"), "fe80::1"},
		{netip.MustParseAddr("::ffff:192.0.2.1"), "192.0.2.1"},
		{netip.Addr{}, ""},
		{netip.MustParseAddr("0.0.0.0"), ""},
		{netip.MustParseAddr("::"), ""},
		{netip.MustParseAddr("127.0.0.53"), ""},
		{netip.MustParseAddr("::1"), ""},
		{netip.MustParseAddr("224.0.0.251"), ""},
		{netip.MustParseAddr("239.1.1.1"), ""},
		{netip.MustParseAddr("ff02::fb"), ""},
		{netip.MustParseAddr("255.255.255.255"), ""},
		{netip.MustParseAddr("::ffff:255.255.255.255"), ""},
		{netip.MustParseAddr("fe80::1%eth0"), ""},
	}
	for _, tc := range tests {
		got, ok := Nameserver(tc.in)
		if ok != (tc.want != "") || ok && got.String() != tc.want {
			t.Errorf("Nameserver(%v) = %v, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}

func TestHostnameInterfaceDialHost(t *testing.T) {
	for _, tc := range []struct {
		in                  string
		host, iface, dialed bool
	}{
		{"edge-1", true, true, true},
		{"Edge-1.example", true, true, true},
		{"edge-1.", false, true, false},
		{strings.Repeat("a", 65), false, false, false}, // a label of 65
		{"eth0", true, true, true},
		{"eth0.100", true, true, true},
		{"eth0:1", false, false, false},
		{"tun/0", false, false, false},
		{"a b", false, false, false},
		{"\x1b[2J", false, false, false},
		{"..", false, false, false},
		{"192.0.2.1", true, true, true},
		{"2001:db8::1", false, false, true},
		{"fe80::1%eth0", false, false, false},
		{"", false, false, false},
	} {
		if got := Hostname(tc.in); got != tc.host {
			t.Errorf("Hostname(%q) = %v", tc.in, got)
		}
		if got := Interface(tc.in); got != tc.iface {
			t.Errorf("Interface(%q) = %v", tc.in, got)
		}
		if got := DialHost(tc.in); got != tc.dialed {
			t.Errorf("DialHost(%q) = %v", tc.in, got)
		}
	}
}

func TestTag(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"web", "web", true},
		{"Web", "web", true},
		{"DB-Primary", "db-primary", true},
		{"a", "a", true},
		{"z9", "z9", true},
		{"eu-west-1", "eu-west-1", true},
		{"a--b", "a--b", true},
		{strings.Repeat("a", 32), strings.Repeat("a", 32), true},
		{strings.Repeat("a", 33), "", false},
		{"", "", false},
		{"9web", "", false},
		{"-web", "", false},
		{"web-", "", false},
		{"we_b", "", false},
		{"we.b", "", false},
		{"web ", "", false},
		{"tag:web", "", false},
		{"w\x00", "", false},
		{"wéb", "", false},
		{"web,db", "", false},
	} {
		got, ok := Tag(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Tag(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
