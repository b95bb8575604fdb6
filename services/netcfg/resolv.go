package netcfg

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/gatenet/gate/services/names"
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
		if d, ok := names.DNSName(s); ok && !slices.Contains(search, d) {
			search = append(search, d)
		}
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	seen := map[netip.Addr]bool{}
	n := 0
	for _, s := range r.Servers {
		s, ok := names.Nameserver(s)
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
