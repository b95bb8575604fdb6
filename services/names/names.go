// Package names holds Gate's one rule for each kind of name and server
// address it takes from outside: a DNS name (a search domain from DHCP, a
// host to dial), a host name (the node's own), a network interface name,
// and a DNS server address. Every boundary that takes one (the
// configuration document, the kernel command line, the console, the CLI,
// user-data and cloud metadata, DHCP, join strings, resolv.conf) calls
// these, so that all accept the same values and say the same thing about
// the rest. A tag, the name an admin puts on members for a network's
// policy to select them by, is one of these names too: the API, the CLI
// and the policy's rules must agree on what one is.
//
// It is pure and imports nothing of Gate's: the protocol package, the
// domain package and the kernel writers all use it. It must not grow
// policy of its own (which value is wanted where): only what a name of
// each kind is.
package names

import (
	"net/netip"
)

// MaxDNSName is the longest DNS name, in bytes, without a trailing dot.
const MaxDNSName = 253

// MaxHostname is the longest host name a node takes: the kernel's limit
// for its node name (64 bytes), well within a DNS name's 253.
const MaxHostname = 64

// MaxTag is the longest tag, in characters.
const MaxTag = 32

// DNSName reports whether s is a DNS name as RFC 1123 host names are
// written (letters, digits and hyphens in dot-separated labels of 1 to 63
// characters that neither start nor end with a hyphen, at most 253
// characters in all), allowing a trailing dot. It returns the name
// lower-cased and without the trailing dot.
func DNSName(s string) (string, bool) {
	if len(s) > 0 && s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	if s == "" || len(s) > MaxDNSName {
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

// Hostname reports whether s can be a node's host name: a DNS name (as
// DNSName, written without a trailing dot) of at most MaxHostname bytes.
// Case is kept: a host name is shown as its owner wrote it.
func Hostname(s string) bool {
	if s == "" || len(s) > MaxHostname || s[len(s)-1] == '.' {
		return false
	}
	_, ok := DNSName(s)
	return ok
}

// Interface reports whether s can name a network interface: what Linux
// accepts for a link name (the kernel's dev_valid_name: 1-15 bytes, no
// '/', ':' or white space, not "." or ".."), printable ASCII only, for a
// name is written to logs, status, the console and firewall rules.
func Interface(s string) bool {
	ok := s != "" && len(s) <= 15 && s != "." && s != ".."
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		ok = ' ' < c && c <= '~' && c != '/' && c != ':'
	}
	return ok
}

// Nameserver reports whether a can be named as a DNS server in
// resolv.conf: a plain unicast address, IPv4 or IPv6 without a zone,
// neither unspecified, loopback, multicast nor IPv4 broadcast. An
// IPv4-mapped IPv6 address is returned as IPv4.
func Nameserver(a netip.Addr) (netip.Addr, bool) {
	a = a.Unmap()
	if !a.IsValid() || a.Zone() != "" || a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() ||
		a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return netip.Addr{}, false
	}
	return a, true
}

// DialHost reports whether host is something to dial from elsewhere: an IP
// address without a zone, or a DNS name.
func DialHost(host string) bool {
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Zone() == ""
	}
	_, ok := DNSName(host)
	return ok && host[len(host)-1] != '.'
}

// Tag reports whether s can be a tag, a name on members that a network's
// policy selects them by (tag:web): 1 to MaxTag characters, lower-case
// letters, digits and hyphens, starting with a letter and not ending with
// a hyphen. Upper-case letters are taken and lowered, so that Web and web
// are one tag; it returns the tag lower-cased.
func Tag(s string) (string, bool) {
	if s == "" || len(s) > MaxTag || s[len(s)-1] == '-' {
		return "", false
	}
	b := []byte(s)
	for i, c := range b {
		switch {
		case 'A' <= c && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case 'a' <= c && c <= 'z':
		case i == 0:
			return "", false // not a letter first
		case '0' <= c && c <= '9', c == '-':
		default:
			return "", false
		}
	}
	return string(b), true
}
