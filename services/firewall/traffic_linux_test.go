package firewall

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatenet/gate/services/nstest"
	"golang.org/x/sys/unix"
)

// Real traffic through the rules: the test's namespace is the node, the
// namespaces nstest.New makes are its neighbours, linked by veth pairs.
// Sockets are opened in a neighbour by a locked thread switched into it
// (see inNS), so the whole test is one process and every wait is bounded.

const dialTimeout = 2 * time.Second

// inNS runs fn on a thread switched into namespace ns ("" is the test's
// own). Sockets keep the namespace they were created in, so a listener or
// connection fn makes can be used from any goroutine afterwards. If the
// thread cannot be switched back it stays locked and dies with its
// goroutine, rather than going back to the scheduler in the wrong place.
func inNS(ns string, fn func() error) error {
	if ns == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()))
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns back from %s: %w", ns, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// serve listens on addr in namespace ns and answers every connection with
// the address it came from, as the server sees it.
func serve(t *testing.T, ns, addr string) {
	t.Helper()
	var ln net.Listener
	if err := inNS(ns, func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatalf("listen on %s in %q: %v", addr, ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(dialTimeout))
			io.WriteString(c, c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap().String())
			c.Close()
		}
	}()
}

// ask connects from namespace ns to addr and returns the source address
// the server saw.
func ask(ns, addr string) (string, error) { return askFrom(ns, "", addr) }

// askFrom is ask from source address src ("": the one the route gives).
func askFrom(ns, src, addr string) (string, error) {
	d := net.Dialer{Timeout: dialTimeout}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	var c net.Conn
	err := inNS(ns, func() (err error) {
		c, err = d.Dial("tcp", addr)
		return err
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(dialTimeout))
	b, err := io.ReadAll(c)
	if err != nil {
		return "", err
	}
	if len(b) == 0 {
		return "", errors.New("connection closed without an answer")
	}
	return string(b), nil
}

func mustReach(t *testing.T, from, addr, wantPeer string) {
	t.Helper()
	got, err := ask(from, addr)
	if err != nil {
		t.Errorf("from %q to %s: %v; want it to connect", from, addr, err)
		return
	}
	if wantPeer != "" && got != wantPeer {
		t.Errorf("from %q to %s: server saw %s, want %s", from, addr, got, wantPeer)
	}
}

func mustNotReach(t *testing.T, from, addr string) {
	t.Helper()
	if got, err := ask(from, addr); err == nil {
		t.Errorf("from %q to %s: connected (server saw %s); want it dropped", from, addr, got)
	}
}

// ip runs `ip ARGS` in namespace ns ("" is the test's own).
func ip(t *testing.T, ns string, args ...string) {
	t.Helper()
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	nstest.Run(t, "ip", args...)
}

func sysctl(t *testing.T, ns string, kv ...string) {
	t.Helper()
	for _, s := range kv {
		if ns == "" {
			nstest.Run(t, "sysctl", "-qw", s)
		} else {
			nstest.In(t, ns, "sysctl", "-qw", s)
		}
	}
}

// link makes a veth pair between the node (name local, address localAddr)
// and a new namespace (eth0, address peerAddr), and returns the namespace.
func link(t *testing.T, local, localAddr, peerAddr string) string {
	t.Helper()
	ns := nstest.New(t)
	nstest.Veth(t, local, "eth0", ns)
	ip(t, "", "addr", "add", localAddr, "dev", local)
	ip(t, ns, "addr", "add", peerAddr, "dev", "eth0")
	return ns
}

func TestStrictInput(t *testing.T) {
	c := newConn(t)
	peer := link(t, "fwin0", "10.99.1.1/24", "10.99.1.2/24")
	ip(t, "", "addr", "add", "fd99:1::1/64", "dev", "fwin0", "nodad")
	ip(t, peer, "addr", "add", "fd99:1::2/64", "dev", "eth0", "nodad")
	serve(t, "", "10.99.1.1:2222")
	serve(t, "", "10.99.1.1:3333")
	serve(t, "", "[fd99:1::1]:2222")
	serve(t, peer, "10.99.1.2:4444")

	// Without rules both ports answer: what fails later is the firewall.
	mustReach(t, peer, "10.99.1.1:3333", "10.99.1.2")

	if err := Apply(c, Ruleset{Strict: true, AllowTCP: []uint16{2222}, AllowUDP: []uint16{51820}}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	mustReach(t, peer, "10.99.1.1:2222", "10.99.1.2")
	mustNotReach(t, peer, "10.99.1.1:3333")
	// The node's own connections out still get their answers back.
	mustReach(t, "", "10.99.1.2:4444", "10.99.1.1")
	// Echo requests are accepted (rate-limited).
	nstest.In(t, peer, "ping", "-c", "1", "-W", "2", "10.99.1.1")
	// IPv6 works at all only if neighbour discovery gets through: the
	// neighbour entries are flushed so that it has to.
	ip(t, "", "neigh", "flush", "dev", "fwin0")
	ip(t, peer, "neigh", "flush", "dev", "eth0")
	mustReach(t, peer, "[fd99:1::1]:2222", "fd99:1::2")
	nstest.In(t, peer, "ping", "-6", "-c", "1", "-W", "2", "fd99:1::1")
}

// TestGuard: an overlay address answers only through the overlay, even
// when the firewall is otherwise lenient. A neighbour on a shared network
// that routes the overlay address to us must get nothing.
func TestGuard(t *testing.T) {
	c := newConn(t)
	outside := link(t, "fwg0", "10.99.2.1/24", "10.99.2.2/24")
	ip(t, outside, "route", "add", "192.168.254.0/24", "via", "10.99.2.1")
	overlay := link(t, "gtguard0", "192.168.254.11/24", "192.168.254.170/24")
	serve(t, "", "192.168.254.11:5555")
	serve(t, "", "10.99.2.1:5555")

	// Linux answers for any local address on any interface: this is the
	// hole the guard closes.
	mustReach(t, outside, "192.168.254.11:5555", "10.99.2.2")

	err := Apply(c, Ruleset{Overlays: []Overlay{{
		Iface: "gtguard0", Addrs: addrs("192.168.254.11"), Prefixes: pfx("192.168.254.0/24"),
	}}})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	mustNotReach(t, outside, "192.168.254.11:5555")
	mustReach(t, overlay, "192.168.254.11:5555", "192.168.254.170")
	mustReach(t, outside, "10.99.2.1:5555", "10.99.2.2") // not strict: the rest is open
}

// TestAttackGuardForwardsNothingFromOverlay: an ordinary host (guard mode)
// with forwarding on for reasons of its own (Docker, Kubernetes, libvirt)
// must not become a gateway nobody configured. A member that routes a
// subnet behind this host into the tunnel (its own AllowedIPs are its
// business) gets nothing forwarded there; the host's own forwarding
// between its other interfaces goes on.
func TestAttackGuardForwardsNothingFromOverlay(t *testing.T) {
	c := newConn(t)
	sysctl(t, "", "net.ipv4.ip_forward=1")
	overlay := link(t, "gtgfw0", "192.168.254.11/24", "192.168.254.170/24")
	bridge := link(t, "fwbr0", "172.17.0.1/16", "172.17.0.2/16") // a container bridge
	lan := link(t, "fwlan0", "10.99.7.1/24", "10.99.7.2/24")
	ip(t, overlay, "route", "add", "172.17.0.0/16", "via", "192.168.254.11")
	ip(t, bridge, "route", "add", "default", "via", "172.17.0.1")
	ip(t, lan, "route", "add", "172.17.0.0/16", "via", "10.99.7.1")
	serve(t, bridge, "172.17.0.2:6666")

	// Without rules the overlay reaches the bridge: the hole.
	mustReach(t, overlay, "172.17.0.2:6666", "192.168.254.170")

	err := Apply(c, Ruleset{Overlays: []Overlay{{
		Iface: "gtgfw0", Addrs: addrs("192.168.254.11"), Prefixes: pfx("192.168.254.0/24"),
	}}})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	mustNotReach(t, overlay, "172.17.0.2:6666")
	mustReach(t, lan, "172.17.0.2:6666", "10.99.7.2") // the host's own forwarding
}

// TestMasqueradeLAN is a DigitalOcean-style gateway: the LAN drops foreign
// sources (here: has no route back to the overlay), so overlay -> LAN
// traffic leaves with the gateway's LAN address. LAN -> overlay keeps its
// source, and nothing from elsewhere is forwarded into the overlay.
func TestMasqueradeLAN(t *testing.T) {
	c := newConn(t)
	sysctl(t, "", "net.ipv4.ip_forward=1")
	overlay := link(t, "gtdo0", "192.168.253.11/24", "192.168.253.170/24")
	ip(t, overlay, "route", "add", "172.18.0.0/16", "via", "192.168.253.11")
	lan := link(t, "fwlan0", "172.18.0.1/16", "172.18.10.105/16")
	outside := link(t, "fwout0", "10.99.3.1/24", "10.99.3.2/24")
	ip(t, outside, "route", "add", "192.168.253.0/24", "via", "10.99.3.1")
	serve(t, lan, "172.18.10.105:6666")
	serve(t, overlay, "192.168.253.170:6667")

	if err := Apply(c, Ruleset{
		Strict:   true,
		AllowUDP: []uint16{51820},
		Overlays: []Overlay{{
			Iface: "gtdo0", Addrs: addrs("192.168.253.11"), Prefixes: pfx("192.168.253.0/24"),
			Gateway: &Gateway{Serve: pfx("172.18.0.0/16"), LAN: "fwlan0", MasqueradeLAN: true},
		}},
	}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	mustReach(t, overlay, "172.18.10.105:6666", "172.18.0.1")
	mustNotReach(t, outside, "192.168.253.170:6667")
	ip(t, lan, "route", "add", "192.168.253.0/24", "via", "172.18.0.1") // the VPC route table's job
	mustReach(t, lan, "192.168.253.170:6667", "172.18.10.105")
}

// TestMasqueradeInternetOneNIC is the seed's AWS NAT instance: one NIC
// faces both the VPC and the internet. The private subnet reaches the
// internet masqueraded; traffic between the subnet and the overlay, both
// ways, keeps its addresses even though it leaves by that same NIC.
func TestMasqueradeInternetOneNIC(t *testing.T) {
	c := newConn(t)
	// A one-NIC router sends ICMP redirects for what it forwards out the
	// NIC it came in by; hosts that follow one bypass the gate and its NAT
	// mid-connection. AWS's NAT AMI turns them off; so does this test, to
	// keep it deterministic (it is netcfg's job, not the firewall's).
	sysctl(t, "", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.default.send_redirects=0")

	// The VPC: a switch with the gate, a private host and "the internet".
	vpc := nstest.New(t)
	ip(t, vpc, "link", "add", "br0", "type", "bridge")
	ip(t, vpc, "link", "set", "br0", "up")
	nstest.Veth(t, "fweth0", "gate", vpc)
	ip(t, "", "addr", "add", "172.19.0.10/16", "dev", "fweth0")
	ip(t, "", "route", "add", "203.0.113.0/24", "dev", "fweth0")
	ip(t, vpc, "link", "set", "gate", "master", "br0")
	host := func(port, addr, route string, via ...string) string {
		ns := nstest.New(t)
		ip(t, vpc, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
		ip(t, vpc, "link", "set", port, "master", "br0", "up")
		ip(t, ns, "link", "set", "eth0", "up")
		ip(t, ns, "addr", "add", addr, "dev", "eth0")
		ip(t, ns, append([]string{"route", "add", route}, via...)...)
		return ns
	}
	private := host("private", "172.19.10.105/16", "default", "via", "172.19.0.10")
	internet := host("internet", "203.0.113.5/24", "172.19.0.0/16", "dev", "eth0")

	overlay := link(t, "gtnat0", "192.168.252.11/24", "192.168.252.170/24")
	ip(t, overlay, "route", "add", "172.19.0.0/16", "via", "192.168.252.11")

	serve(t, internet, "203.0.113.5:7777")
	serve(t, overlay, "192.168.252.170:7778")
	serve(t, private, "172.19.10.105:7779")

	if err := Apply(c, Ruleset{
		Strict:   true,
		AllowUDP: []uint16{51820},
		Overlays: []Overlay{{
			Iface: "gtnat0", Addrs: addrs("192.168.252.11"), Prefixes: pfx("192.168.252.0/24"),
			Gateway: &Gateway{Serve: pfx("172.19.0.0/16"), LAN: "fweth0", WAN: "fweth0", MasqueradeInternet: true},
		}},
	}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	mustReach(t, private, "203.0.113.5:7777", "172.19.0.10")
	mustReach(t, private, "192.168.252.170:7778", "172.19.10.105")
	mustReach(t, overlay, "172.19.10.105:7779", "192.168.252.170")
	// The internet cannot come in through the gate to the overlay.
	ip(t, internet, "route", "add", "192.168.252.0/24", "via", "172.19.0.10")
	if got, err := ask(internet, "192.168.252.170:7778"); err == nil {
		t.Errorf("internet reached the overlay through the gate (server saw %s)", strings.TrimSpace(got))
	}
}

// TestAttackGatewayNoMetadata: a gateway that serves 0.0.0.0/0 and ::/0
// and masquerades forwards a member's traffic to any host on its LAN,
// but never to the cloud's metadata service (169.254.169.254, AWS's
// fd00:ec2::254), where the gateway's user-data (join tokens, a
// database password) is to be read; nor does it answer the member on a
// link-local address of its own. The metadata service here is a host in
// the test's own LAN namespace: nothing is sent to a real one.
func TestAttackGatewayNoMetadata(t *testing.T) {
	c := newConn(t)
	sysctl(t, "", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	overlay := link(t, "gtmeta0", "192.168.251.11/24", "192.168.251.170/24")
	ip(t, "", "addr", "add", "fd99:251::11/64", "dev", "gtmeta0", "nodad")
	ip(t, overlay, "addr", "add", "fd99:251::170/64", "dev", "eth0", "nodad")
	ip(t, overlay, "route", "add", "default", "via", "192.168.251.11")
	ip(t, overlay, "-6", "route", "add", "default", "via", "fd99:251::11")
	lan := link(t, "fwmeta0", "172.20.0.1/16", "172.20.0.5/16")
	ip(t, "", "addr", "add", "fd99:20::1/64", "dev", "fwmeta0", "nodad")
	ip(t, lan, "addr", "add", "fd99:20::5/64", "dev", "eth0", "nodad")
	// The LAN host is the metadata service too, on-link from the gateway
	// as on a cloud; and the gateway has a link-local address of its own
	// (on the overlay's link: one on the LAN's would be masquerading's
	// source for 169.254.169.254, which the LAN host has no route back to).
	ip(t, lan, "addr", "add", "169.254.169.254/32", "dev", "eth0")
	ip(t, lan, "addr", "add", "fd00:ec2::254/128", "dev", "eth0", "nodad")
	ip(t, "", "route", "add", "169.254.169.254/32", "dev", "fwmeta0")
	ip(t, "", "route", "add", "fd00:ec2::254/128", "dev", "fwmeta0")
	ip(t, "", "addr", "add", "169.254.42.1/32", "dev", "gtmeta0")
	ip(t, lan, "route", "add", "192.168.251.0/24", "via", "172.20.0.1") // before masquerading, the replies' way back
	ip(t, lan, "-6", "route", "add", "fd99:251::/64", "via", "fd99:20::1")
	serve(t, lan, "172.20.0.5:8080")
	serve(t, lan, "[fd99:20::5]:8080")
	serve(t, lan, "169.254.169.254:80")
	serve(t, lan, "[fd00:ec2::254]:80")
	serve(t, "", "169.254.42.1:80")
	waitDAD(t, "", overlay, lan)

	// Without rules the member reads the metadata service through the
	// gateway: the hole.
	mustReach(t, overlay, "169.254.169.254:80", "192.168.251.170")
	mustReach(t, overlay, "[fd00:ec2::254]:80", "fd99:251::170")
	mustReach(t, overlay, "169.254.42.1:80", "192.168.251.170")

	if err := Apply(c, Ruleset{
		Strict:   true,
		AllowTCP: []uint16{80}, // even an open port on the gateway
		Overlays: []Overlay{{
			Iface: "gtmeta0", Addrs: addrs("192.168.251.11", "fd99:251::11"), Prefixes: pfx("192.168.251.0/24", "fd99:251::/64"),
			Gateway: &Gateway{Serve: pfx("0.0.0.0/0", "::/0"), LAN: "fwmeta0", WAN: "fwmeta0", MasqueradeLAN: true, MasqueradeInternet: true},
		}},
	}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if !pings(overlay, "172.20.0.5") {
		t.Errorf("the member's ping to a LAN host is not forwarded")
	}
	mustReach(t, overlay, "172.20.0.5:8080", "172.20.0.1")
	mustReach(t, overlay, "[fd99:20::5]:8080", "fd99:20::1")
	// Each of these waits for its timeout: all at once.
	var wg sync.WaitGroup
	for _, addr := range []string{"169.254.169.254", "fd00:ec2::254"} {
		wg.Go(func() {
			if pings(overlay, addr) {
				t.Errorf("the member's ping to %s is forwarded", addr)
			}
		})
	}
	for _, addr := range []string{"169.254.169.254:80", "[fd00:ec2::254]:80", "169.254.42.1:80"} {
		wg.Go(func() { mustNotReach(t, overlay, addr) })
	}
	wg.Wait()
	// The gateway itself still reads its metadata service.
	mustReach(t, "", "169.254.169.254:80", "")
}

// waitDAD waits until no IPv6 address in namespaces nss ("" is the test's
// own) is tentative: until the kernel's link-local addresses pass
// duplicate address detection, a router's neighbour solicitations lack a
// source and forwarded IPv6 goes nowhere.
func waitDAD(t *testing.T, nss ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, ns := range nss {
		args := []string{"-6", "addr", "show", "tentative"}
		if ns != "" {
			args = append([]string{"-n", ns}, args...)
		}
		for strings.TrimSpace(nstest.Run(t, "ip", args...)) != "" {
			if time.Now().After(deadline) {
				t.Fatalf("IPv6 addresses in %q still tentative after 5 s", ns)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
