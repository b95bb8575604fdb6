package reconciler

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gatenet/gate/services/netcfg"
	"github.com/gatenet/gate/services/nstest"
	"github.com/gatenet/gate/services/state"
	"github.com/gatenet/gate/services/tunnel"
)

func run(t *testing.T, name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

func forwarding(t *testing.T) string {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestReconcileAndTeardown drives the reconciler through the life of a
// gateway: join, a route change, the gateway role going, and shutdown,
// checking the kernel after each step, and that what Gate did not make
// survives.
func TestReconcileAndTeardown(t *testing.T) {
	kernelTest(t)
	// Something of the host's own: a veth with an address and a route, and
	// an nftables table. Gate must leave them alone.
	nstest.Run(t, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
	nstest.Run(t, "ip", "link", "set", "eth0", "up")
	nstest.Run(t, "ip", "link", "set", "eth0p", "up")
	nstest.Run(t, "ip", "addr", "add", "172.16.1.10/24", "dev", "eth0")
	nstest.Run(t, "ip", "route", "add", "default", "via", "172.16.1.1")
	nstest.Run(t, "nft", "add", "table", "ip", "host")
	if forwarding(t) != "0" {
		t.Fatal("test namespace starts with forwarding on")
	}

	r, err := New(t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	wait := func(d Desired) {
		t.Helper()
		wctx, c := context.WithTimeout(ctx, 20*time.Second)
		defer c()
		if err := r.Wait(wctx, r.Set(d)); err != nil {
			t.Fatalf("pass: %v", err)
		}
	}

	key, _ := tunnel.GeneratePrivateKey()
	peer, _ := tunnel.GeneratePrivateKey()
	pfx := netip.MustParsePrefix
	n := Network{
		ID: "d363b4e9bd3d6aa8", Iface: "gatetest", MTU: 1420, PrivateKey: key, ListenPort: 51999,
		Addrs:    []netip.Prefix{pfx("192.168.254.11/24")},
		Routes:   []netcfg.Route{{Dst: pfx("10.99.0.0/16"), Via: netip.MustParseAddr("192.168.254.170"), Metric: 5000}},
		Peers:    []tunnel.Peer{{PublicKey: peer.Public(), AllowedIPs: []netip.Prefix{pfx("192.168.254.170/32"), pfx("10.99.0.0/16")}}},
		Prefixes: []netip.Prefix{pfx("192.168.254.0/24"), pfx("10.99.0.0/16")},
		Gateway:  &Gateway{Serve: []netip.Prefix{pfx("172.16.0.0/16")}, MasqueradeInternet: true},
	}
	wait(Desired{Strict: true, AllowTCP: []uint16{22}, Networks: []Network{n}})

	if out, _ := run(t, "ip", "addr", "show", "dev", "gatetest"); !strings.Contains(out, "192.168.254.11/24") || !strings.Contains(out, "mtu 1420") {
		t.Errorf("link:\n%s", out)
	}
	if out, _ := run(t, "ip", "route", "show", "proto", "241"); !strings.Contains(out, "10.99.0.0/16 via 192.168.254.170 dev gatetest") {
		t.Errorf("routes:\n%s", out)
	}
	out, err := run(t, "nft", "list", "table", "inet", "gate")
	for _, want := range []string{"policy drop", `oifname "eth0" ip saddr { 172.16.0.0/16 }`, "udp dport { 51999 } accept", "tcp dport { 22 } accept", "masquerade"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("nft table lacks %q (%v):\n%s", want, err, out)
		}
	}
	if forwarding(t) != "1" {
		t.Error("gateway did not turn forwarding on")
	}
	st := r.Status()
	if st.Firewall != "strict" || !st.Forwarding || st.Networks[n.ID].Device == nil || st.Networks[n.ID].Device.ListenPort != 51999 {
		t.Errorf("status = %+v", st)
	}

	// Same desired state again: nothing to do, nothing breaks.
	wait(Desired{Strict: true, AllowTCP: []uint16{22}, Networks: []Network{n}})

	// The route goes, the gateway role goes: forwarding back as found.
	n.Routes, n.Gateway = nil, nil
	wait(Desired{Networks: []Network{n}})
	if out, _ := run(t, "ip", "route", "show", "proto", "241"); strings.TrimSpace(out) != "" {
		t.Errorf("stale routes:\n%s", out)
	}
	if forwarding(t) != "0" {
		t.Error("forwarding not put back")
	}
	if out, _ := run(t, "nft", "list", "table", "inet", "gate"); !strings.Contains(out, "policy accept") {
		t.Errorf("guard table expected:\n%s", out)
	}

	// Shutdown removes what Gate made, and nothing else.
	cancel()
	<-done
	if _, err := run(t, "ip", "link", "show", "gatetest"); err == nil {
		t.Error("interface left behind")
	}
	if _, err := run(t, "nft", "list", "table", "inet", "gate"); err == nil {
		t.Error("table left behind")
	}
	if _, err := run(t, "nft", "list", "table", "ip", "host"); err != nil {
		t.Error("the host's own table is gone")
	}
	if out, _ := run(t, "ip", "route", "show", "default"); !strings.Contains(out, "172.16.1.1") {
		t.Errorf("the host's default route is gone: %q", out)
	}
}

// TestBadNetworkDoesNotStopOthers: one network that cannot be created (its
// port is taken) reports an error; the other still comes up.
func TestBadNetworkDoesNotStopOthers(t *testing.T) {
	kernelTest(t)
	r, err := New(t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	key, _ := tunnel.GeneratePrivateKey()
	pfx := netip.MustParsePrefix
	good := Network{ID: "0000000000000001", Iface: "gategood", MTU: 1420, PrivateKey: key, ListenPort: 52001,
		Addrs: []netip.Prefix{pfx("10.1.0.1/24")}, Prefixes: []netip.Prefix{pfx("10.1.0.0/24")}}
	bad := Network{ID: "0000000000000002", Iface: "gatebad", MTU: 1420, PrivateKey: key, ListenPort: 52001,
		Addrs: []netip.Prefix{pfx("10.2.0.1/24")}, Prefixes: []netip.Prefix{pfx("10.2.0.0/24")}}
	wctx, c := context.WithTimeout(ctx, 20*time.Second)
	defer c()
	err = r.Wait(wctx, r.Set(Desired{Networks: []Network{good, bad}}))
	if err == nil || !strings.Contains(err.Error(), bad.ID) {
		t.Fatalf("pass error = %v, want one naming network %s", err, bad.ID)
	}
	st := r.Status()
	if st.Networks[good.ID].Err != nil || st.Networks[bad.ID].Err == nil {
		t.Errorf("statuses: good %v, bad %v", st.Networks[good.ID].Err, st.Networks[bad.ID].Err)
	}
	if out, _ := run(t, "ip", "addr", "show", "dev", "gategood"); !strings.Contains(out, "10.1.0.1/24") {
		t.Errorf("good network not up:\n%s", out)
	}
}

// TestAttackDuplicateKeyDropsOnlyThosePeers: a member that takes another's
// WireGuard key (or the node's own) used to make the device refuse the
// whole configuration, so no address or route of the network applied
// anywhere. Now those peers are left out and reported; everything else
// applies.
func TestAttackDuplicateKeyDropsOnlyThosePeers(t *testing.T) {
	kernelTest(t)
	r, err := New(t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	key, _ := tunnel.GeneratePrivateKey()
	victim, _ := tunnel.GeneratePrivateKey()
	good, _ := tunnel.GeneratePrivateKey()
	pfx := netip.MustParsePrefix
	n := Network{ID: "0000000000000003", Iface: "gatedup", MTU: 1420, PrivateKey: key, ListenPort: 52003,
		Addrs:    []netip.Prefix{pfx("10.3.0.1/24")},
		Routes:   []netcfg.Route{{Dst: pfx("10.33.0.0/16"), Via: netip.MustParseAddr("10.3.0.3"), Metric: 5000}},
		Prefixes: []netip.Prefix{pfx("10.3.0.0/24"), pfx("10.33.0.0/16")},
		Peers: []tunnel.Peer{
			{PublicKey: victim.Public(), AllowedIPs: []netip.Prefix{pfx("10.3.0.2/32")}},
			{PublicKey: good.Public(), AllowedIPs: []netip.Prefix{pfx("10.3.0.3/32"), pfx("10.33.0.0/16")}},
			{PublicKey: victim.Public(), AllowedIPs: []netip.Prefix{pfx("10.3.0.4/32")}}, // the copy
			{PublicKey: key.Public(), AllowedIPs: []netip.Prefix{pfx("10.3.0.5/32")}},    // the node's own key
		}}
	wctx, c := context.WithTimeout(ctx, 20*time.Second)
	defer c()
	err = r.Wait(wctx, r.Set(Desired{Networks: []Network{n}}))
	var pe *tunnel.PeerError
	if !errors.As(err, &pe) || len(pe.Dropped) != 3 {
		t.Fatalf("pass error = %v, want a PeerError naming 3 peers", err)
	}
	if out, _ := run(t, "ip", "addr", "show", "dev", "gatedup"); !strings.Contains(out, "10.3.0.1/24") {
		t.Errorf("address not applied:\n%s", out)
	}
	if out, _ := run(t, "ip", "route", "show", "10.33.0.0/16"); !strings.Contains(out, "via 10.3.0.3") {
		t.Errorf("route not applied: %q", out)
	}
}

// gatewayNet is a gateway network on a veth of the test's own, for tests
// of the forwarding switch.
func gatewayNet(t *testing.T, id, iface, lan string, port int) Network {
	t.Helper()
	nstest.Run(t, "ip", "link", "add", lan, "type", "veth", "peer", "name", lan+"p")
	t.Cleanup(func() { exec.Command("ip", "link", "del", lan).Run() })
	key, _ := tunnel.GeneratePrivateKey()
	pfx := netip.MustParsePrefix
	return Network{ID: id, Iface: iface, MTU: 1420, PrivateKey: key, ListenPort: port,
		Addrs:    []netip.Prefix{pfx("10.4.0.1/24")},
		Prefixes: []netip.Prefix{pfx("10.4.0.0/24")},
		Gateway:  &Gateway{Serve: []netip.Prefix{pfx("172.20.0.0/16")}, LAN: lan}}
}

// crash abandons r as kill -9 would: the process's TUN devices go with it
// (the kernel removes their links), and nothing else is undone: no
// teardown, forwarding and the nftables table stay as they are.
func crash(r *Reconciler) {
	r.passMu.Lock()
	defer r.passMu.Unlock()
	for _, dev := range r.devices {
		dev.Close()
	}
	r.k.Links.Close()
	r.k.Firewall.Close()
}

// forwardingState is a state directory for a test of the forwarding
// switch, which is put back off when the test ends.
func forwardingState(t *testing.T) *state.Dir {
	t.Helper()
	t.Cleanup(func() { os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("0\n"), 0o644) })
	dir, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestForwardingFoundSurvivesCrash: forwarding was 0; a gateway turns it
// on and is killed; the next run (same state directory) takes over the
// gateway role and stops cleanly: forwarding is 0 again, and the record of
// the value found is gone. Before, the second run took the 1 the first
// left as the value it found, and a clean stop left forwarding on.
func TestForwardingFoundSurvivesCrash(t *testing.T) {
	kernelTest(t)
	if forwarding(t) != "0" {
		t.Fatal("test namespace starts with forwarding on")
	}
	dir := forwardingState(t)
	n := gatewayNet(t, "0000000000000004", "gatefwd", "fwlan0", 52004)
	d := Desired{Networks: []Network{n}}

	for _, restartAs := range []struct {
		name string
		d    Desired
	}{
		{"a gateway again", d},
		{"no longer a gateway", Desired{}},
	} {
		r1, err := New(t.Logf, WithState(dir))
		if err != nil {
			t.Fatal(err)
		}
		if err := r1.pass(d); err != nil {
			t.Fatalf("first run: %v", err)
		}
		if forwarding(t) != "1" {
			t.Fatal("gateway did not turn forwarding on")
		}
		crash(r1)

		r2, err := New(t.Logf, WithState(dir))
		if err != nil {
			t.Fatal(err)
		}
		if err := r2.pass(restartAs.d); err != nil {
			t.Fatalf("%s: second run: %v", restartAs.name, err)
		}
		r2.Teardown()
		if got := forwarding(t); got != "0" {
			t.Errorf("restarted after a crash as %s: forwarding %s after a clean stop, want 0 as found before the first run", restartAs.name, got)
			os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("0\n"), 0o644)
		}
		if ents, _ := os.ReadDir(dir.Path()); len(ents) != 0 {
			t.Errorf("restarted as %s: state directory after forwarding was put back: %v", restartAs.name, ents)
		}
	}
}

// TestForwardingFoundRecord: while Gate has forwarding on, the value it
// found is on disk (0600) and gone once it is put back; a host that had
// forwarding on gets no record and keeps it on.
func TestForwardingFoundRecord(t *testing.T) {
	kernelTest(t)
	dir := forwardingState(t)
	n := gatewayNet(t, "0000000000000005", "gatefwd2", "fwlan1", 52005)
	r, err := New(t.Logf, WithState(dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.pass(Desired{Networks: []Network{n}}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir.File(forwardingFile))
	if err != nil {
		t.Fatalf("no record of the value found: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("record mode %v, want 0600", fi.Mode().Perm())
	}
	r.Teardown()
	if _, err := os.Stat(dir.File(forwardingFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("record left after teardown: %v", err)
	}

	// Forwarding on before Gate: nothing to record, and it stays on.
	os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644)
	r, err = New(t.Logf, WithState(dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.pass(Desired{Networks: []Network{n}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir.File(forwardingFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a record although forwarding was on before Gate: %v", err)
	}
	r.Teardown()
	if forwarding(t) != "1" {
		t.Error("forwarding on before Gate, off after it")
	}
}

// TestForwardingFoundStale: a record made in another boot or another
// network namespace says nothing of this switch, nor does an unreadable
// one: it is dropped, and the value found now is the one put back.
func TestForwardingFoundStale(t *testing.T) {
	kernelTest(t)
	dir := forwardingState(t)
	// Another boot left a record of 0; this boot's host has forwarding on.
	if err := dir.Write(forwardingFile, []byte(`{"ipv4_forward":false,"switch":"boot 00000000-0000-0000-0000-000000000000, net:[1]"}`+"\n")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644)
	n := gatewayNet(t, "0000000000000006", "gatefwd3", "fwlan2", 52006)
	r, err := New(t.Logf, WithState(dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.pass(Desired{Networks: []Network{n}}); err != nil {
		t.Fatal(err)
	}
	r.Teardown()
	if forwarding(t) != "1" {
		t.Error("a stale record turned the host's forwarding off")
	}
	if _, err := os.Stat(dir.File(forwardingFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale record left: %v", err)
	}

	// An unreadable record, forwarding off: Gate's record replaces it.
	os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("0\n"), 0o644)
	if err := dir.Write(forwardingFile, []byte("{")); err != nil {
		t.Fatal(err)
	}
	r, err = New(t.Logf, WithState(dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.pass(Desired{Networks: []Network{n}}); err != nil {
		t.Fatal(err)
	}
	var rec forwardingFound
	if ok, err := dir.LoadJSON(forwardingFile, &rec); !ok || err != nil || rec.IPv4Forward {
		t.Errorf("record after a gateway pass: %+v, %v, %v; want ipv4_forward false", rec, ok, err)
	}
	r.Teardown()
	if forwarding(t) != "0" {
		t.Error("forwarding not put back")
	}
}

// TestForwardingFoundUnrecordable: a state directory that cannot take the
// record does not hold the gateway role back; a clean stop still puts the
// switch back, from memory.
func TestForwardingFoundUnrecordable(t *testing.T) {
	kernelTest(t)
	dir := forwardingState(t)
	// A non-empty directory in the way: the rename over it fails, root or not.
	if err := os.MkdirAll(dir.File(forwardingFile)+"/x", 0o700); err != nil {
		t.Fatal(err)
	}
	n := gatewayNet(t, "0000000000000007", "gatefwd4", "fwlan3", 52007)
	r, err := New(t.Logf, WithState(dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.pass(Desired{Networks: []Network{n}}); err != nil {
		t.Fatal(err)
	}
	if forwarding(t) != "1" {
		t.Error("gateway did not turn forwarding on")
	}
	r.Teardown()
	if forwarding(t) != "0" {
		t.Error("forwarding not put back")
	}
}
