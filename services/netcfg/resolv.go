package netcfg

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/gatenet/gate/services/state"
)

// Resolver is the DNS configuration Gate writes on the appliance.
type Resolver struct {
	Servers []netip.Addr
	Search  []string
}

// maxNameservers is glibc's and musl's MAXNS: later lines are ignored.
const maxNameservers = 3

// RenderResolvConf returns resolv.conf(5) text for r. Without servers the
// file still says who wrote it, and nothing else.
//
// Every line is Gate's own: a search entry that is not a DNS name
// (DNSName) and a server that is not a plain unicast address
// (Nameserver) are left out, whoever passed them, so that nothing a DHCP
// server or a setting says can add a line (a newline in a domain name
// once put a rogue nameserver first).
func RenderResolvConf(r Resolver) []byte {
	var b bytes.Buffer
	b.WriteString("# Written by gate from DHCP or static NIC settings; changes are overwritten.\n")
	var search []string
	for _, s := range r.Search {
		if d, ok := DNSName(s); ok && !slices.Contains(search, d) {
			search = append(search, d)
		}
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	seen := map[netip.Addr]bool{}
	n := 0
	for _, s := range r.Servers {
		s, ok := Nameserver(s)
		if !ok || seen[s] || n == maxNameservers {
			continue
		}
		seen[s] = true
		n++
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	return b.Bytes()
}

// WriteResolvConf replaces path with r's resolv.conf, atomically (a
// reader sees the old file or the new one, never a torn one) and only when
// its text changes. It reports whether it wrote.
func WriteResolvConf(path string, r Resolver) (bool, error) {
	want := RenderResolvConf(r)
	if have, err := os.ReadFile(path); err == nil && bytes.Equal(have, want) {
		return false, nil
	}
	if err := state.WriteFile(path, want, 0o644); err != nil {
		return false, err
	}
	return true, nil
}

// DNSName checks that s is a DNS name fit for resolv.conf's search line,
// or for anything else that takes a domain from outside (a DHCP server,
// a setting): letters, digits and hyphens in dot-separated labels of 1 to
// 63 characters that neither start nor end with a hyphen, at most 253
// characters in all, with an optional trailing dot. It returns the name
// lower-cased and without the trailing dot, and whether it is one.
func DNSName(s string) (string, bool) {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return "", false
	}
	b := []byte(s)
	label := 0 // length of the label so far
	for i, c := range b {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case 'A' <= c && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case c == '-':
			if label == 0 || i+1 == len(b) || b[i+1] == '.' {
				return "", false
			}
		case c == '.':
			if label == 0 {
				return "", false
			}
			label = 0
			continue
		default:
			return "", false
		}
		if label++; label > 63 {
			return "", false
		}
	}
	if label == 0 {
		return "", false // an empty last label: "a.." or "a.b.."
	}
	return string(b), true
}

// Nameserver checks that a is an address resolv.conf can name as a
// server: a plain unicast address, IPv4 or IPv6 without a zone, neither
// unspecified, loopback, multicast nor IPv4 broadcast. An IPv4-mapped
// IPv6 address is returned as IPv4.
func Nameserver(a netip.Addr) (netip.Addr, bool) {
	a = a.Unmap()
	if !a.IsValid() || a.Zone() != "" || a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() ||
		a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return netip.Addr{}, false
	}
	return a, true
}
