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
	prev, err = Forwarding()
	if err != nil {
		return false, err
	}
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

// Forwarding reports whether IPv4 forwarding is on in the current network
// namespace.
func Forwarding() (bool, error) {
	b, err := os.ReadFile(ipForward)
	if err != nil {
		return false, fmt.Errorf("reading net.ipv4.ip_forward: %w", err)
	}
	return strings.TrimSpace(string(b)) != "0", nil
}

// ForwardingSwitch names the forwarding switch that SetForwarding and
// Forwarding reach: this boot and the current network namespace, e.g.
// "boot 5c1f…, net:[4026531840]". A value recorded with one name says
// nothing of a switch with another: a reboot resets the switch (to the
// kernel's default or the host's sysctl.conf), and another namespace has
// its own.
func ForwardingSwitch() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("reading the boot id: %w", err)
	}
	// thread-self: /proc/sys/net is the opening thread's namespace.
	ns, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		return "", fmt.Errorf("naming the network namespace: %w", err)
	}
	return "boot " + strings.TrimSpace(string(b)) + ", " + ns, nil
}
