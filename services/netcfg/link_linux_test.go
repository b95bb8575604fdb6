package netcfg

import (
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatenet/gate/services/nstest"
	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func TestMain(m *testing.M) { nstest.Main(m) }

// dummy creates a stand-in for a Gate link in the test namespace, deleted
// when t ends. It is a veth whose peer (name+"p") is up, so the link has a
// carrier and its routes are not "linkdown"; a dummy link would do, but
// kernels built without CONFIG_DUMMY (like this CI's) lack it, and veth is
// always there.
func dummy(t *testing.T, name string) {
	t.Helper()
	la := netlink.NewLinkAttrs()
	la.Name = name
	peer := name + "p"
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: peer}); err != nil {
		t.Fatalf("adding veth %s: %v", name, err)
	}
	t.Cleanup(func() { nstest.Run(t, "ip", "link", "del", name) })
	nstest.Run(t, "ip", "link", "set", peer, "up")
}

func open(t *testing.T) *Handle {
	t.Helper()
	h, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// lines returns the non-empty trimmed lines of s, sorted.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// ipAddrs returns "addr/len" of the global IPv4 and IPv6 addresses as
// ip(8) shows them, in namespace ns ("" for the test's) on link dev ("" for
// all).
func ipAddrs(t *testing.T, ns, dev string) []string {
	t.Helper()
	args := []string{"-o", "addr", "show", "scope", "global"}
	if dev != "" {
		args = append(args, "dev", dev)
	}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	out := nstest.Run(t, "ip", args...)
	var addrs []string
	for _, l := range lines(out) {
		f := strings.Fields(l)
		addrs = append(addrs, f[3])
	}
	slices.Sort(addrs)
	return addrs
}

func TestSyncAddressesAndRoutes(t *testing.T) {
	dummy(t, "gtd0")
	h := open(t)
	want := LinkConfig{
		Name:  "gtd0",
		MTU:   1420,
		Addrs: []netip.Prefix{pfx("192.168.254.170/24"), pfx("fd00:254::aa/64")},
		Routes: []Route{
			{Dst: pfx("172.16.0.0/16"), Via: addr("192.168.254.11")},
			{Dst: pfx("10.20.0.0/16")},
			{Dst: pfx("fd01::/48"), Via: addr("fd00:254::11"), Metric: 100},
		},
	}
	if err := h.Sync(want); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	link := nstest.Run(t, "ip", "-o", "link", "show", "dev", "gtd0")
	if !strings.Contains(link, "mtu 1420") || !strings.Contains(link, ",UP") {
		t.Errorf("link not up with mtu 1420: %s", link)
	}
	gotAddrs := ipAddrs(t, "", "")
	if diff := cmp.Diff([]string{"192.168.254.170/24", "fd00:254::aa/64"}, gotAddrs); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	wantRoutes := []string{
		"10.20.0.0/16 dev gtd0 scope link metric 5000",
		"172.16.0.0/16 via 192.168.254.11 dev gtd0 metric 5000 onlink",
	}
	if diff := cmp.Diff(wantRoutes, lines(nstest.Run(t, "ip", "-4", "route", "show", "proto", "241"))); diff != "" {
		t.Errorf("IPv4 routes (-want +got):\n%s", diff)
	}
	if got := nstest.Run(t, "ip", "-6", "route", "show", "proto", "241"); !strings.Contains(got, "fd01::/48 via fd00:254::11 dev gtd0 metric 100 onlink") {
		t.Errorf("IPv6 routes: %s", got)
	}

	// Observe sees what Sync made, so a second Sync has nothing to do.
	before, err := h.Observe("gtd0")
	if err != nil {
		t.Fatal(err)
	}
	if ops := PlanLink(before, want); len(ops) != 0 {
		t.Fatalf("after Sync, PlanLink = %q, want nothing", opStrings(ops))
	}
	if err := h.Sync(want); err != nil {
		t.Fatalf("second Sync: %v", err)
	}
	after, err := h.Observe("gtd0")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(opStrings(PlanLink(LinkConfig{Name: "gtd0"}, before)), opStrings(PlanLink(LinkConfig{Name: "gtd0"}, after))); diff != "" {
		t.Errorf("second Sync changed the link (-before +after):\n%s", diff)
	}

	// A route someone else added on the link, with another protocol.
	nstest.Run(t, "ip", "route", "add", "10.99.0.0/16", "dev", "gtd0", "proto", "static")

	// Change the wanted set: extras go, the hand-made route stays.
	want2 := LinkConfig{
		Name:   "gtd0",
		MTU:    1380,
		Addrs:  []netip.Prefix{pfx("192.168.254.171/24")},
		Routes: []Route{{Dst: pfx("172.16.0.0/16"), Via: addr("192.168.254.12")}},
	}
	if err := h.Sync(want2); err != nil {
		t.Fatalf("Sync want2: %v", err)
	}
	if diff := cmp.Diff([]string{"192.168.254.171/24"}, ipAddrs(t, "", "")); diff != "" {
		t.Errorf("addresses after change (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"172.16.0.0/16 via 192.168.254.12 dev gtd0 metric 5000 onlink"},
		lines(nstest.Run(t, "ip", "route", "show", "proto", "241"))); diff != "" {
		t.Errorf("Gate routes after change (-want +got):\n%s", diff)
	}
	if got := nstest.Run(t, "ip", "route", "show", "proto", "static"); !strings.Contains(got, "10.99.0.0/16 dev gtd0") {
		t.Errorf("hand-made route gone: %q", got)
	}
	if got := nstest.Run(t, "ip", "-o", "link", "show", "dev", "gtd0"); !strings.Contains(got, "mtu 1380") {
		t.Errorf("mtu not changed: %s", got)
	}

	// Leaving: RemoveRoutes takes only Gate's routes.
	if err := h.RemoveRoutes("gtd0"); err != nil {
		t.Fatalf("RemoveRoutes: %v", err)
	}
	if got := nstest.Run(t, "ip", "route", "show", "proto", "241"); strings.TrimSpace(got) != "" {
		t.Errorf("Gate routes left after RemoveRoutes: %q", got)
	}
	if got := nstest.Run(t, "ip", "route", "show", "proto", "static"); !strings.Contains(got, "10.99.0.0/16 dev gtd0") {
		t.Errorf("RemoveRoutes removed a route that is not Gate's: %q", got)
	}
	if err := h.RemoveRoutes("gtd0"); err != nil {
		t.Fatalf("RemoveRoutes again: %v", err)
	}
}

// TestSyncPrimaryAddressMoves covers the kernel quirk of promoteSecondaries:
// deleting a subnet's primary address takes the secondaries with it (when
// promote_secondaries is off) and, with no IPv4 address left, every IPv4
// route of the link too, hand-made ones included.
func TestSyncPrimaryAddressMoves(t *testing.T) {
	dummy(t, "gtd1")
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/gtd1/promote_secondaries", []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := open(t)
	routes := []Route{{Dst: pfx("172.16.0.0/16"), Via: addr("10.0.0.11")}}
	if err := h.Sync(LinkConfig{Name: "gtd1", Addrs: []netip.Prefix{pfx("10.0.0.1/24")}, Routes: routes}); err != nil {
		t.Fatal(err)
	}
	nstest.Run(t, "ip", "route", "add", "10.99.0.0/16", "dev", "gtd1", "proto", "static")
	want := LinkConfig{Name: "gtd1", Addrs: []netip.Prefix{pfx("10.0.0.2/24")}, Routes: routes}
	if err := h.Sync(want); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/conf/gtd1/promote_secondaries"); err != nil || strings.TrimSpace(string(b)) != "1" {
		t.Errorf("promote_secondaries = %q, %v; want 1", b, err)
	}
	if got := nstest.Run(t, "ip", "route", "show", "proto", "static", "dev", "gtd1"); !strings.Contains(got, "10.99.0.0/16") {
		t.Errorf("hand-made route flushed by the address change: %q", got)
	}
	if diff := cmp.Diff([]string{"10.0.0.2/24"}, ipAddrs(t, "", "gtd1")); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"172.16.0.0/16 via 10.0.0.11 metric 5000 onlink"},
		lines(nstest.Run(t, "ip", "route", "show", "proto", "241", "dev", "gtd1"))); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
}

func TestSyncErrors(t *testing.T) {
	h := open(t)
	if err := h.Sync(LinkConfig{Name: "gt-nosuch"}); err == nil || !strings.Contains(err.Error(), "gt-nosuch") {
		t.Errorf("Sync of a missing link: %v", err)
	}
	dummy(t, "gtd2")
	// An IPv4 route via an IPv6 gateway is refused; the error names the op,
	// and the other ops still happen.
	err := h.Sync(LinkConfig{Name: "gtd2", Addrs: []netip.Prefix{pfx("10.5.0.1/24")},
		Routes: []Route{{Dst: pfx("10.6.0.0/16"), Via: addr("fd00::1")}}})
	if err == nil || !strings.HasPrefix(err.Error(), "ip route add 10.6.0.0/16 via fd00::1 dev gtd2 onlink proto 241 metric 5000: ") {
		t.Errorf("Sync with a bad route: %v", err)
	}
	if diff := cmp.Diff([]string{"10.5.0.1/24"}, ipAddrs(t, "", "gtd2")); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
}

func TestOpenAt(t *testing.T) {
	ns := nstest.New(t)
	nsh, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	h, err := OpenAt(nsh)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	nstest.Run(t, "ip", "-n", ns, "link", "add", "gto0", "type", "veth", "peer", "name", "gto0p")
	nstest.Run(t, "ip", "-n", ns, "link", "set", "gto0p", "up")
	if err := h.Sync(LinkConfig{Name: "gto0", Addrs: []netip.Prefix{pfx("10.7.0.1/24")},
		Routes: []Route{{Dst: pfx("10.8.0.0/16"), Via: addr("10.7.0.2")}}}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"10.7.0.1/24"}, ipAddrs(t, ns, "")); diff != "" {
		t.Errorf("addresses in %s (-want +got):\n%s", ns, diff)
	}
	if got := nstest.Run(t, "ip", "-n", ns, "route", "show", "proto", "241"); !strings.Contains(got, "10.8.0.0/16 via 10.7.0.2 dev gto0") {
		t.Errorf("routes in %s: %q", ns, got)
	}
	if _, err := netlink.LinkByName("gto0"); err == nil {
		t.Error("gto0 visible in the test's own namespace")
	}
}

func TestLinkByDefaultRoute(t *testing.T) {
	h := open(t)
	if name, err := h.LinkByDefaultRoute(); err != nil || name != "" {
		t.Fatalf("no default route: got %q, %v", name, err)
	}
	dummy(t, "gtd3")
	dummy(t, "gtd4")
	nstest.Run(t, "ip", "link", "set", "gtd3", "up")
	nstest.Run(t, "ip", "link", "set", "gtd4", "up")
	nstest.Run(t, "ip", "route", "add", "default", "dev", "gtd3", "metric", "200")
	if name, err := h.LinkByDefaultRoute(); err != nil || name != "gtd3" {
		t.Errorf("got %q, %v; want gtd3", name, err)
	}
	nstest.Run(t, "ip", "route", "add", "default", "dev", "gtd4", "metric", "100")
	if name, err := h.LinkByDefaultRoute(); err != nil || name != "gtd4" {
		t.Errorf("got %q, %v; want gtd4 (lower metric)", name, err)
	}
}

func TestInterfaceAddrs(t *testing.T) {
	dummy(t, "gtd5")
	dummy(t, "gtd6")
	dummy(t, "gtd7") // stays down
	h := open(t)
	if err := h.Sync(LinkConfig{Name: "gtd5", Addrs: []netip.Prefix{pfx("198.51.100.5/24"), pfx("2001:db8::5/64")}}); err != nil {
		t.Fatal(err)
	}
	if err := h.Sync(LinkConfig{Name: "gtd6", Addrs: []netip.Prefix{pfx("192.168.254.6/24")}}); err != nil {
		t.Fatal(err)
	}
	nstest.Run(t, "ip", "addr", "add", "203.0.113.7/24", "dev", "gtd7")
	nstest.Run(t, "ip", "addr", "add", "169.254.9.9/16", "dev", "gtd5", "scope", "link")

	ps, err := h.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.String())
	}
	slices.Sort(got)
	// Not lo's 127.0.0.1, not the link-scope address, not the down link,
	// not the IPv6 link-locals.
	if diff := cmp.Diff([]string{"192.168.254.6/24", "198.51.100.5/24", "2001:db8::5/64"}, got); diff != "" {
		t.Errorf("InterfaceAddrs (-want +got):\n%s", diff)
	}
	as, err := h.InterfaceAddrsExcept("gtd6")
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, a := range as {
		got = append(got, a.String())
	}
	slices.Sort(got)
	if diff := cmp.Diff([]string{"198.51.100.5", "2001:db8::5"}, got); diff != "" {
		t.Errorf("InterfaceAddrsExcept(gtd6) (-want +got):\n%s", diff)
	}
}

func TestSetForwarding(t *testing.T) {
	read := func() string {
		b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	start := read()
	orig, err := SetForwarding(false)
	if err != nil {
		t.Fatal(err)
	}
	if orig != (start == "1") {
		t.Errorf("prev = %v, /proc said %s", orig, start)
	}
	if prev, err := SetForwarding(true); err != nil || prev {
		t.Fatalf("SetForwarding(true) = %v, %v; want prev false", prev, err)
	}
	if v := read(); v != "1" {
		t.Errorf("ip_forward = %s after enabling", v)
	}
	if prev, err := SetForwarding(true); err != nil || !prev {
		t.Fatalf("SetForwarding(true) again = %v, %v; want prev true", prev, err)
	}
	if prev, err := SetForwarding(false); err != nil || !prev {
		t.Fatalf("SetForwarding(false) = %v, %v; want prev true", prev, err)
	}
	if v := read(); v != "0" {
		t.Errorf("ip_forward = %s after disabling", v)
	}
	if _, err := SetForwarding(orig); err != nil {
		t.Fatal(err)
	}
}

// TestWatchLinks: a link that appears, comes up, changes its MTU or goes
// calls changed; a change of nothing WatchLinks looks at (the link's
// alias) does not.
func TestWatchLinks(t *testing.T) {
	h, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	events := make(chan struct{}, 64)
	done := make(chan struct{})
	defer close(done)
	if err := h.WatchLinks(done, func() { events <- struct{}{} }, t.Logf); err != nil {
		t.Fatal(err)
	}
	expect := func(what string, want bool) {
		t.Helper()
		select {
		case <-events:
			if !want {
				t.Errorf("%s: an event", what)
			}
		case <-time.After(300 * time.Millisecond):
			if want {
				t.Errorf("%s: no event", what)
			}
		}
		time.Sleep(50 * time.Millisecond) // the rest of a burst (a veth's two ends)
		for len(events) > 0 {
			<-events
		}
	}
	nstest.Run(t, "ip", "link", "add", "watch0", "type", "veth", "peer", "name", "watch0p")
	expect("added", true)
	nstest.Run(t, "ip", "link", "set", "watch0", "alias", "x")
	expect("alias", false)
	nstest.Run(t, "ip", "link", "set", "watch0", "up")
	expect("up", true)
	nstest.Run(t, "ip", "link", "set", "watch0", "mtu", "1400")
	expect("mtu", true)
	nstest.Run(t, "ip", "link", "del", "watch0")
	expect("deleted", true)
}
