package dhcp

import (
	"context"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gatenet/gate/services/nstest"
)

func TestMain(m *testing.M) { nstest.Main(m) }

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
// arrive on the channel. dnsmasq serves nstest.StartDHCP's defaults but
// for two DNS servers, 10.77.0.53 and 10.77.0.54, and T1 and T2 of t1 and
// t2 seconds. The test plays the reconciler: a renewal is answered by
// unicast to the leased address, so it puts the address on the NIC.
func setup(t *testing.T, iface string, t1, t2 int) (*nstest.DHCPServer, *Client, chan Update) {
	srv := nstest.New(t)
	nstest.Veth(t, iface, iface+"s", srv)
	nstest.In(t, srv, "ip", "addr", "add", "10.77.0.1/24", "dev", iface+"s")
	s := nstest.StartDHCP(t, srv, iface+"s", "--dhcp-option=option:dns-server,10.77.0.53,10.77.0.54",
		"--dhcp-option=58,"+strconv.Itoa(t1), "--dhcp-option=59,"+strconv.Itoa(t2))
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
	s.Restart(t)
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
	s.Restart(t, "--dhcp-range=10.77.0.100,10.77.0.110,255.255.255.0,2m", "--dhcp-authoritative")
	u := next(t, updates, "nak", 15*time.Second)
	if u.Lease != nil {
		t.Errorf("after a NAK the lease must go, got %s", u.Lease)
	}
	u = next(t, updates, "bound", 15*time.Second)
	if u.Lease.Addr == l.Addr || !netip.MustParsePrefix("10.77.0.96/27").Contains(u.Lease.Addr.Addr()) {
		t.Errorf("new lease %s, want one from the new range", u.Lease.Addr)
	}
}
