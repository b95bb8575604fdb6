package reconciler

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatenet/gate/services/netcfg"
	"github.com/gatenet/gate/services/state"
	"github.com/gatenet/gate/services/tunnel"
)

// The tests here run the reconciler against the recording fake
// (fake_test.go): no root, no kernel. Their names start with TestPure, so
// that go test -run Pure runs them alone, as any user.

var (
	pfx  = netip.MustParsePrefix
	addr = netip.MustParseAddr
)

// Fixed keys, so that the recorded commands are the same every run.
var (
	nodeKey = tunnel.Key{1}
	peerKey = tunnel.Key{2}
)

func newPure(t *testing.T, opts ...Option) (*Reconciler, *fakeKernel) {
	t.Helper()
	f := newFakeKernel()
	r, err := New(t.Logf, append([]Option{WithKernel(f.kernel()), WithResync(0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r, f
}

// hostNIC gives the fake the host's own NIC, eth0, with its default route.
func hostNIC(f *fakeKernel) {
	f.hostLink("eth0", []netip.Prefix{pfx("172.16.1.10/24")}, netcfg.Route{Dst: pfx("0.0.0.0/0"), Via: addr("172.16.1.1")})
}

func seedNet() Network {
	return Network{
		ID: "d363b4e9bd3d6aa8", Iface: "gatetest", MTU: 1420, PrivateKey: nodeKey, ListenPort: 51999,
		Addrs:    []netip.Prefix{pfx("192.168.254.11/24")},
		Routes:   []netcfg.Route{{Dst: pfx("10.99.0.0/16"), Via: addr("192.168.254.170"), Metric: 5000}},
		Peers:    []tunnel.Peer{{PublicKey: peerKey.Public(), AllowedIPs: []netip.Prefix{pfx("192.168.254.170/32"), pfx("10.99.0.0/16")}}},
		Prefixes: []netip.Prefix{pfx("192.168.254.0/24"), pfx("10.99.0.0/16")},
		Gateway:  &Gateway{Serve: []netip.Prefix{pfx("172.16.0.0/16")}, MasqueradeInternet: true},
	}
}

// step is one pass: the desired state, the commands it must write, in
// order, and what its error must say ("" for none).
type step struct {
	name    string
	d       Desired
	want    []string
	wantErr string
}

func runSteps(t *testing.T, r *Reconciler, f *fakeKernel, steps []step) {
	t.Helper()
	for _, s := range steps {
		err := r.pass(s.d)
		if diff := cmp.Diff(s.want, f.take()); diff != "" {
			t.Errorf("%s: commands (-want +got):\n%s", s.name, diff)
		}
		switch {
		case s.wantErr == "" && err != nil:
			t.Errorf("%s: error %v, want none", s.name, err)
		case s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)):
			t.Errorf("%s: error %v, want one with %q", s.name, err, s.wantErr)
		}
	}
}

// TestPureGatewayLife: a gateway joins, its route changes, the gateway role
// goes and comes back, and it shuts down. The firewall comes before the
// device, forwarding after it; a pass with nothing new writes nothing; the
// host's own NIC is never written to.
func TestPureGatewayLife(t *testing.T) {
	r, f := newPure(t)
	hostNIC(f)
	n := seedNet()
	gw := Desired{Strict: true, AllowTCP: []uint16{22}, Networks: []Network{n}}
	moved := n
	moved.Routes = []netcfg.Route{{Dst: pfx("10.99.0.0/16"), Via: addr("192.168.254.171"), Metric: 5000}}
	member := moved
	member.Gateway = nil
	peer := short(peerKey.Public())

	runSteps(t, r, f, []step{
		{name: "join", d: gw, want: []string{
			"nft replace table inet gate",
			"ip link add gatetest mtu 1420 type wireguard",
			"wg set gatetest private-key (public " + short(nodeKey.Public()) + ")",
			"wg set gatetest listen-port 51999",
			"wg set gatetest peer " + peer + " allowed-ips 192.168.254.170/32,10.99.0.0/16",
			"ip link set dev gatetest up",
			"ip addr add 192.168.254.11/24 dev gatetest",
			"ip route add 10.99.0.0/16 via 192.168.254.170 dev gatetest onlink proto 241 metric 5000",
			"sysctl -w net.ipv4.ip_forward=1",
		}},
		{name: "the same again", d: gw},
		{name: "route moves", d: Desired{Strict: true, AllowTCP: []uint16{22}, Networks: []Network{moved}}, want: []string{
			"ip route replace 10.99.0.0/16 via 192.168.254.171 dev gatetest onlink proto 241 metric 5000",
		}},
		{name: "gateway role goes", d: Desired{Networks: []Network{member}}, want: []string{
			"nft replace table inet gate",
			"sysctl -w net.ipv4.ip_forward=0",
		}},
		{name: "gateway role comes back", d: Desired{Strict: true, Networks: []Network{moved}}, want: []string{
			"nft replace table inet gate",
			"sysctl -w net.ipv4.ip_forward=1",
		}},
		{name: "leave", d: Desired{}, want: []string{
			"ip route del 10.99.0.0/16 via 192.168.254.171 dev gatetest proto 241 metric 5000",
			"ip link del gatetest",
			"nft delete table inet gate",
			"sysctl -w net.ipv4.ip_forward=0",
		}},
		{name: "nothing left", d: Desired{}},
	})
	if f.table != nil || f.fwd || len(f.devices) != 0 {
		t.Errorf("after leaving: table %v, forwarding %v, devices %v", f.table, f.fwd, f.devices)
	}
	if eth0 := f.links["eth0"]; eth0 == nil || len(eth0.addrs) != 1 || len(eth0.host) != 1 {
		t.Errorf("the host's NIC changed: %+v", eth0)
	}
}

// TestPureFailingConfigure: a device that refuses its configuration holds
// back its own network's addresses and routes, and nothing else; the next
// pass finishes it. A device that leaves out peers (a *tunnel.PeerError)
// still gets its addresses and routes.
func TestPureFailingConfigure(t *testing.T) {
	r, f := newPure(t)
	a := Network{ID: "000000000000000a", Iface: "gatea", MTU: 1420, PrivateKey: nodeKey, ListenPort: 52001,
		Addrs: []netip.Prefix{pfx("10.1.0.1/24")}, Prefixes: []netip.Prefix{pfx("10.1.0.0/24")}}
	b := Network{ID: "000000000000000b", Iface: "gateb", MTU: 1420, PrivateKey: nodeKey, ListenPort: 52002,
		Addrs: []netip.Prefix{pfx("10.2.0.1/24")}, Prefixes: []netip.Prefix{pfx("10.2.0.0/24")}}
	d := Desired{Networks: []Network{a, b}}
	pub := short(nodeKey.Public())

	f.fail("wg set gatea", errors.New("no buffer space"))
	runSteps(t, r, f, []step{{name: "a fails", d: d, wantErr: "network 000000000000000a: configuring gatea", want: []string{
		"nft replace table inet gate",
		"ip link add gatea mtu 1420 type wireguard",
		"ip link add gateb mtu 1420 type wireguard",
		"wg set gateb private-key (public " + pub + ")",
		"wg set gateb listen-port 52002",
		"ip link set dev gateb up",
		"ip addr add 10.2.0.1/24 dev gateb",
	}}})
	if st := r.status; st.Networks[a.ID].Err == nil || st.Networks[b.ID].Err != nil {
		t.Errorf("statuses: a %v, b %v", st.Networks[a.ID].Err, st.Networks[b.ID].Err)
	}

	f.fail("wg set gatea", nil)
	runSteps(t, r, f, []step{{name: "a recovers", d: d, want: []string{
		"wg set gatea private-key (public " + pub + ")",
		"wg set gatea listen-port 52001",
		"ip link set dev gatea up",
		"ip addr add 10.1.0.1/24 dev gatea",
	}}})

	pe := &tunnel.PeerError{Device: "gatea", Dropped: []tunnel.DroppedPeer{{PublicKey: peerKey.Public(), Reason: "its key is the node's own"}}}
	f.fail("wg set gatea", pe)
	a.Addrs = append(a.Addrs, pfx("10.1.0.2/24"))
	runSteps(t, r, f, []step{{name: "a leaves out a peer", d: Desired{Networks: []Network{a, b}}, wantErr: "gatea", want: []string{
		"nft replace table inet gate", // the guard rules name the new address
		"ip addr add 10.1.0.2/24 dev gatea",
	}}})
	var got *tunnel.PeerError
	if !errors.As(r.status.Err, &got) {
		t.Errorf("pass error %v, want a *tunnel.PeerError", r.status.Err)
	}
}

// TestPureFailingFirewall: a table that cannot be applied does not hold
// the devices back, but forwarding stays off, since nothing would limit
// it; the next pass applies the table and then turns forwarding on.
func TestPureFailingFirewall(t *testing.T) {
	r, f := newPure(t)
	hostNIC(f)
	n := seedNet()
	n.Peers = nil
	d := Desired{Strict: true, Networks: []Network{n}}

	f.fail("nft replace", errors.New("operation not supported"))
	runSteps(t, r, f, []step{{name: "table fails", d: d, wantErr: "firewall", want: []string{
		"ip link add gatetest mtu 1420 type wireguard",
		"wg set gatetest private-key (public " + short(nodeKey.Public()) + ")",
		"wg set gatetest listen-port 51999",
		"ip link set dev gatetest up",
		"ip addr add 192.168.254.11/24 dev gatetest",
		"ip route add 10.99.0.0/16 via 192.168.254.170 dev gatetest onlink proto 241 metric 5000",
	}}})
	if f.fwd || r.status.Forwarding {
		t.Error("forwarding on without the rules that limit it")
	}

	f.fail("nft replace", nil)
	runSteps(t, r, f, []step{{name: "table applies", d: d, want: []string{
		"nft replace table inet gate",
		"sysctl -w net.ipv4.ip_forward=1",
	}}})

	// A gateway whose forwarding is on keeps it over the previous table
	// while a new one fails.
	d.AllowTCP = []uint16{22}
	f.fail("nft replace", errors.New("operation not supported"))
	runSteps(t, r, f, []step{{name: "a new table fails", d: d, wantErr: "firewall"}})
	if !f.fwd || !r.status.Forwarding {
		t.Error("forwarding turned off by a failed table")
	}
}

// TestPureFailingDefaultRoute: a gateway that cannot find its WAN gets no
// table and no forwarding; its device still comes up.
func TestPureFailingDefaultRoute(t *testing.T) {
	r, f := newPure(t)
	hostNIC(f)
	n := seedNet()
	f.fail("ip route show default", errors.New("interrupted"))
	if err := r.pass(Desired{Strict: true, Networks: []Network{n}}); err == nil || !strings.Contains(err.Error(), "default-route") {
		t.Errorf("pass error %v, want one about the default route", err)
	}
	if f.table != nil || f.fwd || f.links["gatetest"] == nil {
		t.Errorf("table %v, forwarding %v, link %v", f.table, f.fwd, f.links["gatetest"])
	}
}

// TestPureForwardingFound: a host with forwarding on keeps it on, and no
// pass writes the switch.
func TestPureForwardingFound(t *testing.T) {
	dir, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, f := newPure(t, WithState(dir))
	hostNIC(f)
	f.fwd = true
	n := seedNet()
	n.Peers, n.Routes = nil, nil
	runSteps(t, r, f, []step{
		{name: "gateway", d: Desired{Strict: true, Networks: []Network{n}}, want: []string{
			"nft replace table inet gate",
			"ip link add gatetest mtu 1420 type wireguard",
			"wg set gatetest private-key (public " + short(nodeKey.Public()) + ")",
			"wg set gatetest listen-port 51999",
			"ip link set dev gatetest up",
			"ip addr add 192.168.254.11/24 dev gatetest",
		}},
		{name: "leave", d: Desired{}, want: []string{
			"ip link del gatetest",
			"nft delete table inet gate",
		}},
	})
	if !f.fwd {
		t.Error("forwarding on before Gate, off after it")
	}
}

// TestPureInterfaces: a managed NIC gets its addresses, default route and
// resolv.conf; a NIC that leaves the list loses them; one that vanished
// from the machine is forgotten.
func TestPureInterfaces(t *testing.T) {
	r, f := newPure(t)
	f.hostLink("eth1", []netip.Prefix{pfx("fe80::1/64"), pfx("2001:db8::5/64")})
	f.links["eth1"].up = false
	f.hostLink("eth2", nil)
	nic := Interface{Name: "eth1", Addrs: []netip.Prefix{pfx("172.16.1.10/24")}, Gateway: addr("172.16.1.1"), Metric: 100}
	resolv := &netcfg.Resolver{Servers: []netip.Addr{addr("172.16.1.1")}}
	d := Desired{Interfaces: []Interface{nic, {Name: "eth2", Addrs: []netip.Prefix{pfx("10.0.0.2/8")}}}, Resolv: resolv, ResolvConf: "/etc/resolv.conf"}
	runSteps(t, r, f, []step{
		{name: "configure", d: d, want: []string{
			"ip link set dev eth1 up",
			"ip addr add 172.16.1.10/24 dev eth1",
			"ip route add 0.0.0.0/0 via 172.16.1.1 dev eth1 onlink proto 241 metric 100",
			"ip addr add 10.0.0.2/8 dev eth2",
			"write /etc/resolv.conf",
			// Nothing to guard: a table a crashed run left goes.
			"nft delete table inet gate",
		}},
		{name: "the same again", d: d},
		{name: "eth1 released", d: Desired{Interfaces: d.Interfaces[1:]}, want: []string{
			"ip route del 0.0.0.0/0 via 172.16.1.1 dev eth1 proto 241 metric 100",
			"ip addr del 172.16.1.10/24 dev eth1",
		}},
	})
	if got := f.links["eth1"].addrs; len(got) != 2 {
		t.Errorf("eth1's IPv6 addresses (the kernel's) touched: %v", got)
	}
	if !r.nics["eth2"] || r.nics["eth1"] {
		t.Errorf("managed NICs %v, want eth2 only", r.nics)
	}
	delete(f.links, "eth2")
	runSteps(t, r, f, []step{{name: "eth2 vanishes, then is released", d: Desired{}}})
	if len(r.nics) != 0 {
		t.Errorf("managed NICs %v, want none", r.nics)
	}
}

// TestPureTableReappliedOnResync: passes leave an unchanged table alone;
// the periodic pass writes it again, in case someone removed it.
func TestPureTableReappliedOnResync(t *testing.T) {
	r, f := newPure(t, WithResync(20*time.Millisecond))
	d := Desired{Strict: true}
	if err := r.pass(d); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"nft replace table inet gate"}, f.take()); diff != "" {
		t.Errorf("first pass (-want +got):\n%s", diff)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	wctx, c := context.WithTimeout(ctx, 10*time.Second)
	defer c()
	if err := r.Wait(wctx, r.Set(d)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		n := len(f.lines)
		f.mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	got := f.take()
	if len(got) < 2 || got[0] != "nft replace table inet gate" || got[len(got)-1] != "nft delete table inet gate" {
		t.Errorf("commands after a resync and a teardown: %q", got)
	}
}

// TestPureCoalesce: any number of Sets while a pass runs give exactly one
// more pass, which applies the newest desired state.
func TestPureCoalesce(t *testing.T) {
	r, f := newPure(t)
	var passes atomic.Int32
	r.OnPass(func(before, after Status) { passes.Add(1) })
	entered, release := make(chan struct{}), make(chan struct{})
	var once atomic.Bool
	f.hook = func(cmd string) {
		if strings.HasPrefix(cmd, "nft replace") && once.CompareAndSwap(false, true) {
			close(entered)
			<-release
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	r.Set(Desired{Strict: true})
	<-entered
	var gen uint64
	for i := range 100 {
		gen = r.Set(Desired{Strict: true, AllowTCP: []uint16{uint16(1000 + i)}})
	}
	close(release)
	wctx, c := context.WithTimeout(ctx, 10*time.Second)
	defer c()
	if err := r.Wait(wctx, gen); err != nil {
		t.Fatal(err)
	}
	if n := passes.Load(); n != 2 {
		t.Errorf("%d passes, want 2", n)
	}
	if len(r.trigger.c) != 0 {
		t.Error("a pass still pending")
	}
	if diff := cmp.Diff([]string{"nft replace table inet gate", "nft replace table inet gate"}, f.take()); diff != "" {
		t.Errorf("commands (-want +got):\n%s", diff)
	}
	if got := f.table.AllowTCP; len(got) != 1 || got[0] != 1099 {
		t.Errorf("table allows %v, want the last Set's [1099]", got)
	}
}

// TestPureTeardownOnStop: Run removes what Gate made when its context ends.
func TestPureTeardownOnStop(t *testing.T) {
	r, f := newPure(t)
	hostNIC(f)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	wctx, c := context.WithTimeout(ctx, 10*time.Second)
	defer c()
	if err := r.Wait(wctx, r.Set(Desired{Strict: true, Networks: []Network{seedNet()}})); err != nil {
		t.Fatal(err)
	}
	f.take()
	cancel()
	<-done
	want := []string{
		"ip route del 10.99.0.0/16 via 192.168.254.170 dev gatetest proto 241 metric 5000",
		"ip link del gatetest",
		"nft delete table inet gate",
		"sysctl -w net.ipv4.ip_forward=0",
	}
	if diff := cmp.Diff(want, f.take()); diff != "" {
		t.Errorf("teardown (-want +got):\n%s", diff)
	}
	if len(f.links) != 1 || f.table != nil || f.fwd {
		t.Errorf("left: links %v, table %v, forwarding %v", f.links, f.table, f.fwd)
	}
}

// TestPureStatus: Status has the devices' state as the device reports it.
func TestPureStatus(t *testing.T) {
	r, f := newPure(t)
	hostNIC(f)
	n := seedNet()
	if err := r.pass(Desired{Strict: true, Networks: []Network{n}}); err != nil {
		t.Fatal(err)
	}
	st := r.Status()
	ds := st.Networks[n.ID].Device
	if st.Firewall != "strict" || !st.Forwarding || ds == nil || ds.ListenPort != 51999 || len(ds.Peers) != 1 {
		t.Errorf("status = %+v, device %+v", st, ds)
	}
	f.fail("wg show", fmt.Errorf("closed"))
	if st := r.Status(); st.Networks[n.ID].Device != nil {
		t.Errorf("device status %+v from a device that cannot say", st.Networks[n.ID].Device)
	}
}

// TestPureLinkEvent: a link change pokes the loop, with no resync: a link
// that went down lost its routes, and the pass puts them back.
func TestPureLinkEvent(t *testing.T) {
	r, f := newPure(t)
	hostNIC(f)
	var passes atomic.Int32
	passed := make(chan struct{}, 16)
	r.OnPass(func(before, after Status) { passes.Add(1); passed <- struct{}{} })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	wctx, c := context.WithTimeout(ctx, 10*time.Second)
	defer c()
	if err := r.Wait(wctx, r.Set(Desired{Strict: true, Networks: []Network{seedNet()}})); err != nil {
		t.Fatal(err)
	}
	<-passed
	f.take()

	// The link goes down and up: the kernel drops its IPv4 routes.
	f.mu.Lock()
	f.links["gatetest"].up = false
	f.links["gatetest"].routes = nil
	f.mu.Unlock()
	f.linkEvent()
	select {
	case <-passed:
	case <-wctx.Done():
		t.Fatal("no pass after a link event")
	}
	want := []string{
		"ip link set dev gatetest up",
		"ip route add 10.99.0.0/16 via 192.168.254.170 dev gatetest onlink proto 241 metric 5000",
	}
	if diff := cmp.Diff(want, f.take()); diff != "" {
		t.Errorf("after a link event (-want +got):\n%s", diff)
	}
	if n := passes.Load(); n != 2 {
		t.Errorf("%d passes, want 2", n)
	}
}

// TestPureObservedNICs: after a pass the status has each managed NIC as
// the kernel has it (addresses, whoever made them, and its default
// route's gateway) and the WAN, so that nothing else reads netlink for
// the local API; a NIC without a default route shows no gateway.
func TestPureObservedNICs(t *testing.T) {
	r, f := newPure(t)
	f.hostLink("eth1", []netip.Prefix{pfx("2001:db8::5/64")})
	f.hostLink("eth2", nil)
	d := Desired{Interfaces: []Interface{
		{Name: "eth1", Addrs: []netip.Prefix{pfx("172.16.1.10/24")}, Gateway: addr("172.16.1.1"), Metric: 100},
		{Name: "eth2", Addrs: []netip.Prefix{pfx("10.0.2.15/24")}},
	}}
	if err := r.pass(d); err != nil {
		t.Fatal(err)
	}
	st := r.Status()
	want := map[string]NIC{
		"eth1": {Addrs: []netip.Prefix{pfx("2001:db8::5/64"), pfx("172.16.1.10/24")}, DefaultRoute: true, Gateway: addr("172.16.1.1")},
		"eth2": {Addrs: []netip.Prefix{pfx("10.0.2.15/24")}},
	}
	if diff := cmp.Diff(want, st.NICs, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" || st.WAN != "eth1" {
		t.Errorf("observed NICs (-want +got):\n%s\nWAN %q, want eth1", diff, st.WAN)
	}
}
