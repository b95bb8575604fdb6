package netcfg

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
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
func RenderResolvConf(r Resolver) []byte {
	var b bytes.Buffer
	b.WriteString("# Written by gate from DHCP or static NIC settings; changes are overwritten.\n")
	if len(r.Search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(r.Search, " "))
	}
	seen := map[netip.Addr]bool{}
	n := 0
	for _, s := range r.Servers {
		if !s.IsValid() || seen[s] || n == maxNameservers {
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
