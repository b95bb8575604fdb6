package dhcp

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatenet/gate/services/nstest"
)

func TestMain(m *testing.M) { nstest.Main(m) }

// Server is a dnsmasq serving DHCP in a namespace the test made.
type Server struct {
	NS, Iface string
	Log       string // dnsmasq's log file (--log-dhcp)
	Leases    string
	cmd       *exec.Cmd
}

// StartServer runs dnsmasq (DHCP only, no DNS) on iface in namespace ns,
// which must have 10.77.0.1/24 on iface. The lease is 2 minutes (dnsmasq's
// minimum) with T1 and T2 at t1 and t2 seconds (options 58, 59), so that
// renewals and rebinds happen within seconds.
func StartServer(t *testing.T, ns, iface string, t1, t2 int, extra ...string) *Server {
	t.Helper()
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		t.Fatal("dnsmasq not found: install dnsmasq-base (make deps)")
	}
	dir := t.TempDir()
	s := &Server{NS: ns, Iface: iface, Log: filepath.Join(dir, "dnsmasq.log"), Leases: filepath.Join(dir, "leases")}
	s.start(t, t1, t2, extra...)
	return s
}

func (s *Server) start(t *testing.T, t1, t2 int, extra ...string) {
	t.Helper()
	rng := "--dhcp-range=10.77.0.50,10.77.0.60,255.255.255.0,2m"
	for _, e := range extra {
		if strings.HasPrefix(e, "--dhcp-range=") {
			rng = ""
		}
	}
	args := []string{"netns", "exec", s.NS, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
		"--port=0", "--interface=" + s.Iface, "--bind-interfaces", "--no-ping",
		"--dhcp-option=option:router,10.77.0.1",
		"--dhcp-option=option:dns-server,10.77.0.53,10.77.0.54",
		"--dhcp-option=option:domain-name,gate.test",
		"--dhcp-option=58," + strconv.Itoa(t1), "--dhcp-option=59," + strconv.Itoa(t2),
		"--dhcp-leasefile=" + s.Leases, "--log-dhcp", "--log-facility=" + s.Log,
		"--pid-file=" + s.Leases + ".pid",
	}
	if rng != "" {
		args = append(args, rng)
	}
	args = append(args, extra...)
	s.cmd = exec.Command("ip", args...)
	out, err := os.Create(s.Log + ".out")
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = out, out
	before := s.Count("DHCP, sockets bound")
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting dnsmasq: %v", err)
	}
	t.Cleanup(s.Stop)
	for i := 0; s.Count("DHCP, sockets bound") == before; i++ {
		if i == 100 {
			b, _ := os.ReadFile(s.Log + ".out")
			t.Fatalf("dnsmasq did not start within 5 s: %s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the server (it may be started again with restart).
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Count returns how many log lines contain all of words.
func (s *Server) Count(words ...string) int {
	b, _ := os.ReadFile(s.Log)
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if !slices.ContainsFunc(words, func(w string) bool { return !strings.Contains(line, w) }) {
			n++
		}
	}
	return n
}

// next waits for an update with the given event.
func next(t *testing.T, ch <-chan Update, event string, within time.Duration) Update {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case u := <-ch:
			if u.Event == event {
				return u
			}
			t.Logf("update %s (%s) while waiting for %s", u.Event, u.State, event)
		case <-deadline:
			t.Fatalf("no %q within %v", event, within)
		}
	}
}

// setup makes a namespace with dnsmasq on 10.77.0.1/24, a veth pair named
// iface (here) and iface+"s" (there), and a client on iface whose updates
// arrive on the channel. The test plays the reconciler: a renewal is
// answered by unicast to the leased address, so it puts the address on
// the NIC.
func setup(t *testing.T, iface string, t1, t2 int) (*Server, *Client, chan Update) {
	srv := nstest.New(t)
	nstest.Veth(t, iface, iface+"s", srv)
	nstest.In(t, srv, "ip", "addr", "add", "10.77.0.1/24", "dev", iface+"s")
	s := StartServer(t, srv, iface+"s", t1, t2)
	updates := make(chan Update, 32)
	c := New(Config{
		Iface:    iface,
		Hostname: "gate-test",
		Logf:     t.Logf,
		OnUpdate: func(u Update) {
			if u.Lease != nil {
				exec.Command("ip", "addr", "flush", "dev", iface).Run()
				nstest.Run(t, "ip", "addr", "replace", u.Lease.Addr.String(), "dev", iface)
			} else {
				exec.Command("ip", "addr", "flush", "dev", iface).Run()
			}
			updates <- u
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, c, updates
}

// TestLeaseLifeCycle runs the whole life cycle against a real dnsmasq in
// another namespace: lease, renewal at T1, link bounce, server gone
// (renewing, then rebinding at T2), server back (rebound).
func TestLeaseLifeCycle(t *testing.T) {
	t.Parallel()
	s, c, updates := setup(t, "dh0", 3, 6)
	start := time.Now()
	u := next(t, updates, "bound", 15*time.Second)
	t.Logf("lease after %v: %s", time.Since(start).Round(time.Millisecond), u.Lease)
	l := u.Lease
	if !netip.MustParsePrefix("10.77.0.0/24").Contains(l.Addr.Addr()) || l.Addr.Bits() != 24 {
		t.Errorf("address %s, want one of 10.77.0.50-60/24", l.Addr)
	}
	if l.Router != netip.MustParseAddr("10.77.0.1") {
		t.Errorf("router %s, want 10.77.0.1", l.Router)
	}
	if want := []netip.Addr{netip.MustParseAddr("10.77.0.53"), netip.MustParseAddr("10.77.0.54")}; !slices.Equal(l.DNS, want) {
		t.Errorf("DNS %v, want %v", l.DNS, want)
	}
	if l.Domain != "gate.test" || l.Server != netip.MustParseAddr("10.77.0.1") {
		t.Errorf("domain %q server %s, want gate.test 10.77.0.1", l.Domain, l.Server)
	}
	if l.T1 != 3*time.Second || l.T2 != 6*time.Second || l.Lifetime != 2*time.Minute {
		t.Errorf("timers T1 %v T2 %v lease %v, want 3s 6s 2m0s", l.T1, l.T2, l.Lifetime)
	}
	if got := c.Status(); got.State != StateBound || got.Lease == nil || got.Lease.Addr != l.Addr {
		t.Errorf("status %+v, want bound with %s", got, l.Addr)
	}

	// Renewal at T1, unicast to the server, which sees a second REQUEST.
	u = next(t, updates, "renewed", 10*time.Second)
	if u.Lease.Addr != l.Addr {
		t.Errorf("renewal changed the address %s -> %s", l.Addr, u.Lease.Addr)
	}
	if got := u.Lease.Obtained.Sub(l.Obtained); got < 2500*time.Millisecond || got > 6*time.Second {
		t.Errorf("renewed %v after the lease, want about T1 (3s)", got)
	}
	if n := s.Count("DHCPACK(dh0s)", l.Addr.Addr().String()); n < 2 {
		t.Errorf("dnsmasq logged %d ACKs for %s, want the lease and its renewal", n, l.Addr.Addr())
	}

	// A link bounce starts over, asking for (and getting) the old address.
	nstest.Run(t, "ip", "link", "set", "dh0", "down")
	c.SetLink(false)
	next(t, updates, "link-down", 5*time.Second)
	if st := c.Status(); st.State != StateLinkDown || st.Lease == nil {
		t.Errorf("status after link down %+v, want link-down still holding the lease", st)
	}
	nstest.Run(t, "ip", "link", "set", "dh0", "up")
	c.SetLink(true)
	u = next(t, updates, "bound", 15*time.Second)
	if u.Lease.Addr != l.Addr {
		t.Errorf("after a link bounce got %s, want the old address %s", u.Lease.Addr, l.Addr)
	}

	// The server goes: renewing fails until T2, then the client
	// broadcasts (rebinding); a server that comes back answers that.
	s.Stop()
	held := u.Lease
	waitState(t, c, StateRenewing, held.Renew().Add(3*time.Second))
	waitState(t, c, StateRebinding, held.Rebind().Add(3*time.Second))
	if st := c.Status(); st.Lease == nil || st.Lease.Addr != l.Addr {
		t.Errorf("while rebinding the lease must stay until expiry, got %+v", st)
	}
	s.start(t, 3, 6)
	u = next(t, updates, "rebound", 15*time.Second)
	if u.Lease.Addr != l.Addr {
		t.Errorf("rebound to %s, want %s", u.Lease.Addr, l.Addr)
	}
}

func waitState(t *testing.T, c *Client, want State, by time.Time) {
	t.Helper()
	for time.Now().Before(by) {
		if c.Status().State == want {
			t.Logf("state %s (last error: %s)", want, c.Status().LastError)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no state %s by %v; status %+v", want, by.Format(time.TimeOnly), c.Status())
}

// TestExpiry: with the server gone for good, the lease is dropped at its
// expiry (2 minutes: dnsmasq's shortest, and it ignores option 51), not
// before, and the client goes back to discovering.
func TestExpiry(t *testing.T) {
	t.Parallel()
	s, c, updates := setup(t, "dh1", 2, 4)
	l := next(t, updates, "bound", 15*time.Second).Lease
	s.Stop()
	u := next(t, updates, "expired", l.Lifetime+10*time.Second)
	if u.Lease != nil || u.State != StateInit {
		t.Errorf("expiry reported %+v, want no lease, state init", u)
	}
	if now := time.Now(); now.Before(l.Expiry()) || now.After(l.Expiry().Add(3*time.Second)) {
		t.Errorf("dropped at %v, lease expired at %v", now.Format(time.TimeOnly), l.Expiry().Format(time.TimeOnly))
	}
	if st := c.Status(); st.Lease != nil {
		t.Errorf("status still holds %s", st.Lease)
	}
}

// TestNAK: a server that no longer serves the address NAKs the renewal;
// the client drops the lease and takes a new one.
func TestNAK(t *testing.T) {
	t.Parallel()
	s, _, updates := setup(t, "dh2", 2, 4)
	l := next(t, updates, "bound", 15*time.Second).Lease
	s.Stop()
	s.start(t, 2, 4, "--dhcp-range=10.77.0.100,10.77.0.110,255.255.255.0,2m", "--dhcp-authoritative")
	u := next(t, updates, "nak", 15*time.Second)
	if u.Lease != nil {
		t.Errorf("after a NAK the lease must go, got %s", u.Lease)
	}
	u = next(t, updates, "bound", 15*time.Second)
	if u.Lease.Addr == l.Addr || !netip.MustParsePrefix("10.77.0.96/27").Contains(u.Lease.Addr.Addr()) {
		t.Errorf("new lease %s, want one from the new range", u.Lease.Addr)
	}
}
