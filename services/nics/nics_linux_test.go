package nics

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatenet/gate/services/netcfg"
	"github.com/gatenet/gate/services/nodeconfig"
	"github.com/gatenet/gate/services/nstest"
	"github.com/gatenet/gate/services/reconciler"
)

func TestMain(m *testing.M) { nstest.Main(m) }

func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logger is t.Logf until the test is over: the manager's goroutines may
// still log while they stop.
type logger struct {
	t    *testing.T
	mu   sync.Mutex
	over bool
}

func (l *logger) logf(f string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.over {
		l.t.Logf(f, a...)
	}
}

func (l *logger) stop() {
	l.mu.Lock()
	l.over = true
	l.mu.Unlock()
}

// TestWatch: the manager in a namespace, without a reconciler. nic0 gets
// a lease from a real dnsmasq, nic1 has static settings; links that are
// not physical NICs are left alone. Carrier, new settings and a vanished
// NIC reach the desired state and the status, OnChange says so each time,
// and the manager never writes to the kernel: the leased address and the
// default routes are only desired.
func TestWatch(t *testing.T) {
	srv := nstest.New(t)
	nstest.Veth(t, "nic0", "srv0", srv)
	nstest.In(t, srv, "ip", "addr", "add", "10.77.0.1/24", "dev", "srv0")
	nstest.StartDHCP(t, srv, "srv0")
	other := nstest.New(t)
	nstest.Veth(t, "nic1", "peer1", other)
	nstest.Veth(t, "gate9", "peer9", other) // Gate's own
	nstest.Run(t, "ip", "link", "add", "br9", "type", "bridge")
	t.Cleanup(func() { exec.Command("ip", "link", "del", "br9").Run() })

	nic1 := nodeconfig.Interface{Address: netip.MustParsePrefix("10.88.0.10/24"), Gateway: netip.MustParseAddr("10.88.0.1"), DNS: []netip.Addr{netip.MustParseAddr("10.88.0.53")}}
	settings := &nodeconfig.Config{Interfaces: map[string]nodeconfig.Interface{"nic1": nic1}}
	logs := &logger{t: t}
	var changes atomic.Int64
	m := New(Options{Logf: logs.logf, Hostname: "appliance", Config: settings, OnChange: func() { changes.Add(1) }})
	ctx, cancel := context.WithCancel(context.Background())
	defer logs.stop()
	defer m.StopAll()
	defer cancel()
	if err := m.Watch(ctx); err != nil {
		t.Fatal(err)
	}

	eventually(t, "nic0 leased", func() error {
		st := m.Status(reconciler.Status{})
		if len(st) != 2 || st[0].Name != "nic0" || st[1].Name != "nic1" {
			return fmt.Errorf("status %+v, want nic0 and nic1", st)
		}
		if st[0].DHCP == nil || st[0].DHCP.State != "bound" {
			return fmt.Errorf("nic0 %+v", st[0])
		}
		return nil
	})
	for name, want := range map[string]bool{"nic0": true, "nic1": true, "gate9": false, "br9": false, "lo": false} {
		if m.Has(name) != want {
			t.Errorf("Has(%s) = %v, want %v", name, !want, want)
		}
	}
	ifs, res := m.Desired()
	if len(ifs) != 2 || len(ifs[0].Addrs) != 1 {
		t.Fatalf("desired %+v", ifs)
	}
	lease := ifs[0].Addrs[0]
	if a := lease.Addr().As4(); lease.Bits() != 24 || a[0] != 10 || a[1] != 77 || a[3] < 50 || a[3] > 60 {
		t.Errorf("nic0 leased %s, want 10.77.0.50-60/24", lease)
	}
	want := []reconciler.Interface{
		{Name: "nic0", Addrs: []netip.Prefix{lease}, Gateway: netip.MustParseAddr("10.77.0.1"), Metric: 100},
		{Name: "nic1", Addrs: []netip.Prefix{nic1.Address}, Gateway: nic1.Gateway, Metric: 101},
	}
	if diff := cmp.Diff(want, ifs, cmpNet); diff != "" {
		t.Errorf("desired (-want +got)\n%s", diff)
	}
	wantRes := &netcfg.Resolver{Servers: []netip.Addr{netip.MustParseAddr("10.77.0.53"), netip.MustParseAddr("10.88.0.53")}, Search: []string{"gate.test"}}
	if diff := cmp.Diff(wantRes, res, cmpNet); diff != "" {
		t.Errorf("resolver (-want +got)\n%s", diff)
	}
	st := m.Status(reconciler.Status{})
	if st[0].Mode != "dhcp" || st[0].Link != "up" || st[0].Gateway != netip.MustParseAddr("10.77.0.1") || st[0].DHCP.Domain != "gate.test" ||
		!slices.Equal(st[0].DNS, []netip.Addr{netip.MustParseAddr("10.77.0.53")}) {
		t.Errorf("nic0 status %+v", st[0])
	}
	if st[1].Mode != "static" || st[1].DHCP != nil || st[1].Gateway != nic1.Gateway {
		t.Errorf("nic1 status %+v", st[1])
	}
	if why, none := m.NoDefaultRoute(); none {
		t.Errorf("NoDefaultRoute() = %q, true; nic0 has a router", why)
	}
	// Only desired: the kernel has none of it.
	for _, dev := range []string{"nic0", "nic1"} {
		if out := nstest.Run(t, "ip", "-4", "addr", "show", "dev", dev); strings.Contains(out, "inet ") {
			t.Errorf("the manager wrote an address to %s:\n%s", dev, out)
		}
	}
	if out := nstest.Run(t, "ip", "-4", "route", "show", "default"); out != "" {
		t.Errorf("the manager wrote a default route: %s", out)
	}

	// Carrier down and up again, from the other end.
	link := func(want string) func() error {
		return func() error {
			if st := m.Status(reconciler.Status{}); len(st) != 2 || st[1].Link != want {
				return fmt.Errorf("nic1 %+v, want link %s", st, want)
			}
			return nil
		}
	}
	before := changes.Load()
	nstest.Run(t, "ip", "-n", other, "link", "set", "peer1", "down")
	eventually(t, "nic1 without carrier", link("down"))
	nstest.Run(t, "ip", "-n", other, "link", "set", "peer1", "up")
	eventually(t, "nic1 with carrier", link("up"))
	nstest.Run(t, "ip", "link", "set", "nic1", "down")
	eventually(t, "nic1 down", link("admin-down"))
	nstest.Run(t, "ip", "link", "set", "nic1", "up")
	eventually(t, "nic1 up", link("up"))
	if changes.Load() < before+2 {
		t.Errorf("%d OnChange calls for two carrier changes", changes.Load()-before)
	}

	// nic0 turns static: its client stops, its lease is gone.
	static0 := nodeconfig.Interface{Address: netip.MustParsePrefix("10.77.0.200/24")}
	before = changes.Load()
	m.Reload(&nodeconfig.Config{Interfaces: map[string]nodeconfig.Interface{"nic0": static0, "nic1": nic1}})
	if changes.Load() == before {
		t.Error("Reload did not call OnChange")
	}
	ifs, _ = m.Desired()
	if len(ifs) != 2 || !slices.Equal(ifs[0].Addrs, []netip.Prefix{static0.Address}) || ifs[0].Gateway.IsValid() {
		t.Errorf("nic0 static: desired %+v", ifs)
	}
	if st := m.Status(reconciler.Status{}); st[0].Mode != "static" || st[0].DHCP != nil {
		t.Errorf("nic0 static: status %+v", st[0])
	}
	// Back to DHCP (nic1 too: nil is DHCP everywhere).
	m.Reload(nil)
	eventually(t, "nic0 and nic1 on DHCP, nic0 leased again", func() error {
		st := m.Status(reconciler.Status{})
		if len(st) != 2 || st[0].DHCP == nil || st[0].DHCP.State != "bound" || st[1].DHCP == nil {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	if why, none := m.NoDefaultRoute(); none {
		t.Errorf("NoDefaultRoute() = %q, true; nic0 has a router", why)
	}

	// nic1 vanishes.
	before = changes.Load()
	nstest.Run(t, "ip", "link", "del", "nic1")
	eventually(t, "nic1 gone", func() error {
		if m.Has("nic1") {
			return fmt.Errorf("still managed")
		}
		return nil
	})
	if changes.Load() == before {
		t.Error("no OnChange for a vanished NIC")
	}
	if ifs, _ := m.Desired(); len(ifs) != 1 || ifs[0].Name != "nic0" || ifs[0].Metric != 100 {
		t.Errorf("after nic1 went: desired %+v", ifs)
	}

	// Stopped: no client runs, none starts.
	cancel()
	m.StopAll()
	if st := m.Status(reconciler.Status{}); len(st) != 1 || st[0].DHCP != nil {
		t.Errorf("after stop: status %+v, want nic0 without a client", st)
	}
	m.Reload(&nodeconfig.Config{Interfaces: map[string]nodeconfig.Interface{"nic0": static0}})
	m.Reload(nil) // nic0 static, then DHCP again: a client would start
	if st := m.Status(reconciler.Status{}); len(st) != 1 || st[0].Mode != "dhcp" || st[0].DHCP != nil {
		t.Errorf("a Reload after stop started a client: %+v", st)
	}
}
