package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatenet/gate/services/intent"
	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/nstest"
)

func defaultRoutes(t *testing.T) []string {
	var out []string
	for _, r := range ipJSON(t, "-4", "route", "show", "default") {
		out = append(out, fmt.Sprintf("via %v dev %v proto %v metric %v", r["gateway"], r["dev"], r["protocol"], r["metric"]))
	}
	slices.Sort(out)
	return out
}

// TestManageNICs: the appliance's NIC management in a namespace. nic0
// gets its address, default route (the WAN's) and DNS from a real dnsmasq
// and renews; nic1 has static settings in the state directory; a NAK
// moves nic0 to a new address; stopping the daemon removes what it
// added. An ordinary daemon (no --manage-nics) touches no NIC.
func TestManageNICs(t *testing.T) {
	srv := nstest.New(t)
	nstest.Veth(t, "nic0", "srv0", srv)
	nstest.In(t, srv, "ip", "addr", "add", "10.77.0.1/24", "dev", "srv0")
	other := nstest.New(t)
	nstest.Veth(t, "nic1", "peer1", other)
	// Down: the daemon must bring them up.
	nstest.Run(t, "ip", "link", "set", "nic0", "down")
	nstest.Run(t, "ip", "link", "set", "nic1", "down")
	dhcp := nstest.StartDHCP(t, srv, "srv0")

	dir := t.TempDir()
	h := &harness{t: t, dir: dir}
	// An ordinary host: NICs untouched, none listed.
	h.startDaemon()
	time.Sleep(500 * time.Millisecond)
	if nics, err := h.local().Interfaces(context.Background()); err != nil || len(nics) != 0 {
		t.Errorf("ordinary daemon lists NICs %v (%v), want none", nics, err)
	}
	if up, addrs := linkAddrs(t, "nic0"); !up || len(addrs) != 0 || ipJSON(t, "link", "show", "nic0")[0]["operstate"] != "DOWN" {
		t.Errorf("ordinary daemon touched nic0: addresses %v", addrs)
	}
	h.stopDaemon()

	stateDir := filepath.Join(dir, "node")
	if err := os.WriteFile(filepath.Join(stateDir, intent.InterfacesFile), []byte(`{"nic1": {"address": "10.88.0.10/24", "gateway": "10.88.0.1", "dns": ["10.88.0.53"]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	resolv := filepath.Join(dir, "resolv.conf")
	d, err := New(Options{StateDir: stateDir, Socket: h.socket, Hostname: "appliance", Version: "test", Logf: t.Logf,
		ManageNICs: true, ResolvConf: resolv})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()

	var nic0 localapi.Interface
	h.eventually("nic0 leased and applied", func() error {
		nics, err := h.local().Interfaces(context.Background())
		if err != nil {
			return err
		}
		if len(nics) != 2 || nics[0].Name != "nic0" || nics[1].Name != "nic1" {
			return fmt.Errorf("NICs %+v, want nic0 and nic1 only", nics)
		}
		nic0 = nics[0]
		if len(nic0.Addresses) == 0 || !nic0.DefaultRoute || nic0.DHCP == nil || nic0.DHCP.State != "bound" {
			return fmt.Errorf("nic0 %+v", nic0)
		}
		return nil
	})
	t.Logf("nic0 bound and applied %v after start", time.Since(start).Round(time.Millisecond))
	lease := nic0.Addresses[0]
	if !netip.MustParsePrefix("10.77.0.0/24").Contains(lease.Addr()) || lease.Bits() != 24 {
		t.Errorf("nic0 address %s, want 10.77.0.50-60/24", lease)
	}
	if !nic0.WAN || nic0.Mode != "dhcp" || nic0.Gateway != netip.MustParseAddr("10.77.0.1") || nic0.Link != "up" {
		t.Errorf("nic0 %+v, want the WAN, by DHCP, via 10.77.0.1, link up", nic0)
	}
	if _, addrs := linkAddrs(t, "nic0"); !slices.Contains(addrs, lease.String()) {
		t.Errorf("kernel: nic0 has %v, want %s", addrs, lease)
	}
	want := []string{"via 10.77.0.1 dev nic0 proto 241 metric 100", "via 10.88.0.1 dev nic1 proto 241 metric 101"}
	h.eventually("default routes", func() error {
		if got := defaultRoutes(t); !slices.Equal(got, want) {
			return fmt.Errorf("default routes %q, want %q", got, want)
		}
		return nil
	})
	if _, addrs := linkAddrs(t, "nic1"); !slices.Equal(addrs, []string{"10.88.0.10/24"}) {
		t.Errorf("nic1 (static) has %v", addrs)
	}
	wantResolv := "search gate.test\nnameserver 10.77.0.53\nnameserver 10.88.0.53\n"
	h.eventually("resolv.conf", func() error {
		b, _ := os.ReadFile(resolv)
		if !strings.HasSuffix(string(b), wantResolv) {
			return fmt.Errorf("resolv.conf %q, want it to end %q", b, wantResolv)
		}
		return nil
	})
	if fi, err := os.Stat(resolv); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("resolv.conf mode %v (%v), want 0644", fi.Mode(), err)
	}

	// The renewal at T1 reaches the server (a second ACK) and the API.
	h.eventually("renewal", func() error {
		if n := dhcp.Count("DHCPACK(srv0)", lease.Addr().String()); n < 2 {
			return fmt.Errorf("%d ACKs in dnsmasq's log", n)
		}
		nics, _ := h.local().Interfaces(context.Background())
		if len(nics) == 0 || nics[0].DHCP == nil || !nics[0].DHCP.Obtained.After(nic0.DHCP.Obtained) {
			return fmt.Errorf("the API shows no renewal")
		}
		return nil
	})

	// The server changes its range and NAKs the renewal: the old address
	// goes, a new one comes, the default route stays.
	dhcp.Stop()
	nstest.StartDHCP(t, srv, "srv0", "--dhcp-range=10.77.0.100,10.77.0.110,255.255.255.0,2m", "--dhcp-authoritative")
	h.eventually("new address after a NAK", func() error {
		_, addrs := linkAddrs(t, "nic0")
		if len(addrs) != 1 {
			return fmt.Errorf("nic0 has %v", addrs)
		}
		if a := netip.MustParsePrefix(addrs[0]).Addr().As4(); a[3] < 100 || a[3] > 110 {
			return fmt.Errorf("nic0 has %v", addrs)
		}
		return nil
	})
	if got := defaultRoutes(t); !slices.Equal(got, want) {
		t.Errorf("default routes after the NAK %q, want %q", got, want)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("daemon: %v", err)
	}
	done <- nil
	for _, nic := range []string{"nic0", "nic1"} {
		if _, addrs := linkAddrs(t, nic); len(addrs) != 0 {
			t.Errorf("after stop %s still has %v", nic, addrs)
		}
	}
	if got := defaultRoutes(t); len(got) != 0 {
		t.Errorf("after stop default routes %q remain", got)
	}
}

// TestNoRouterNoMetadataWait: a lease without a router (what QEMU's user
// networking with restrict=on gives: `make run`) is a NIC that can never
// reach a cloud's metadata service. The daemon used to wait 30 s for a
// route to it anyway; now it stops waiting once every NIC has its lease
// and none gives a default route, and says so. The NIC's status shows no
// gateway, as the console does.
func TestNoRouterNoMetadataWait(t *testing.T) {
	srv := nstest.New(t)
	nstest.Veth(t, "nic7", "srv7", srv)
	nstest.In(t, srv, "ip", "addr", "add", "10.77.0.1/24", "dev", "srv7")
	nstest.StartDHCP(t, srv, "srv7", "--dhcp-option=3") // no router

	dir := t.TempDir()
	h := &harness{t: t, dir: dir, socket: filepath.Join(dir, "gate.sock")}
	logs := &logLines{t: t}
	d, err := New(Options{StateDir: filepath.Join(dir, "node"), Socket: h.socket, Hostname: "appliance", Version: "test", Logf: logs.logf,
		ManageNICs: true, NICs: []string{"nic7"}, ResolvConf: filepath.Join(dir, "resolv.conf"), Cloud: intent.CloudAuto})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	h.eventually("the metadata wait ended for want of a default route", func() error {
		if logs.count("no NIC has a default route (nic7: DHCP lease without a router)") == 0 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	if n := logs.count("no route to the metadata service after"); n != 0 {
		t.Errorf("the daemon waited out the metadata route")
	}
	nics, err := h.local().Interfaces(context.Background())
	if err != nil || len(nics) != 1 || nics[0].DHCP == nil || nics[0].DHCP.State != "bound" || nics[0].Gateway.IsValid() {
		t.Errorf("nic7: %+v, %v; want a lease without a router", nics, err)
	}
}
