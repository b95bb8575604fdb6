package netcfg

import (
	"fmt"
	"os"
	"strings"
)

// ipForward is IPv4 forwarding for all interfaces. /proc/sys/net shows the
// namespace of the process that opens it, so this is the current
// namespace's switch, whatever namespace a Handle is bound to.
const ipForward = "/proc/sys/net/ipv4/ip_forward"

// SetForwarding turns IPv4 forwarding (net.ipv4.ip_forward) on or off in
// the current network namespace and returns what it was before, so a
// caller can put it back. Only IPv4: Gate's overlays and served CIDRs are
// IPv4 today, and turning on net.ipv6.conf.all.forwarding has a side
// effect (the host stops accepting router advertisements, losing SLAAC
// addresses and default routes) that must not come with an IPv4 feature.
func SetForwarding(enable bool) (prev bool, err error) {
	b, err := os.ReadFile(ipForward)
	if err != nil {
		return false, fmt.Errorf("reading net.ipv4.ip_forward: %w", err)
	}
	prev = strings.TrimSpace(string(b)) != "0"
	if prev == enable {
		return prev, nil
	}
	v := "0\n"
	if enable {
		v = "1\n"
	}
	if err := os.WriteFile(ipForward, []byte(v), 0o644); err != nil {
		return prev, fmt.Errorf("setting net.ipv4.ip_forward=%s: %w", strings.TrimSpace(v), err)
	}
	return prev, nil
}
