package tui

import (
	"net/netip"
	"strings"
)

func addrs(ps []netip.Prefix) string { return prefixes(ps) }

func prefixes(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "-"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}
