package nics

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"

	"github.com/gatenet/gate/services/dhcp"
	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/netcfg"
	"github.com/gatenet/gate/services/nodeconfig"
	"github.com/gatenet/gate/services/reconciler"
)

var (
	pfx  = netip.MustParsePrefix
	addr = netip.MustParseAddr
)

// manager returns a manager with cfg and the given NICs, as Watch would
// have found them (no clients: the tests set leases themselves).
func manager(cfg *nodeconfig.Config, ns ...*nic) *Manager {
	m := New(Options{Config: cfg})
	for _, n := range ns {
		if n.static == nil {
			n.static = m.staticFor(n)
		}
		m.nics[n.name] = n
	}
	return m
}

func TestPhysical(t *testing.T) {
	attrs := func(name, encap string, flags net.Flags) netlink.LinkAttrs {
		return netlink.LinkAttrs{Name: name, EncapType: encap, Flags: flags}
	}
	for _, tc := range []struct {
		link netlink.Link
		only []string
		want bool
	}{
		{&netlink.Device{LinkAttrs: attrs("eth0", "ether", 0)}, nil, true},
		{&netlink.Device{LinkAttrs: attrs("eth1", "", 0)}, nil, true},
		{&netlink.Veth{LinkAttrs: attrs("nic0", "ether", 0)}, nil, true},
		{&netlink.Device{LinkAttrs: attrs("lo", "loopback", net.FlagLoopback)}, nil, false},
		{&netlink.Device{LinkAttrs: attrs("ib0", "infiniband", 0)}, nil, false},
		{&netlink.Veth{LinkAttrs: attrs("gate0", "ether", 0)}, nil, false}, // Gate's own
		{&netlink.Dummy{LinkAttrs: attrs("dummy0", "ether", 0)}, nil, false},
		{&netlink.Bridge{LinkAttrs: attrs("br0", "ether", 0)}, nil, false},
		{&netlink.Device{LinkAttrs: attrs("eth0", "ether", 0)}, []string{"eth1"}, false},
		{&netlink.Dummy{LinkAttrs: attrs("dummy0", "ether", 0)}, []string{"dummy0"}, true}, // only names exactly
	} {
		if got := physical(tc.link, tc.only); got != tc.want {
			t.Errorf("physical(%s %s, only %q) = %v, want %v", tc.link.Type(), tc.link.Attrs().Name, tc.only, got, tc.want)
		}
	}
}

func TestStaticFor(t *testing.T) {
	cfg := &nodeconfig.Config{Interfaces: map[string]nodeconfig.Interface{
		"eth0": {Address: pfx("10.0.0.2/24")},
		"lan":  {MAC: "02:00:00:00:00:AA", Address: pfx("10.1.0.2/24"), Gateway: addr("10.1.0.1")},
		"eth2": {DHCP: true},
		"eth3": {}, // no address: DHCP
	}}
	m := New(Options{Config: cfg})
	for _, tc := range []struct {
		name, mac string
		want      *nodeconfig.Interface
	}{
		{"eth0", "02:00:00:00:00:01", &nodeconfig.Interface{Address: pfx("10.0.0.2/24")}},
		{"eth9", "02:00:00:00:00:aa", &nodeconfig.Interface{MAC: "02:00:00:00:00:AA", Address: pfx("10.1.0.2/24"), Gateway: addr("10.1.0.1")}}, // by MAC, any case
		{"lan", "02:00:00:00:00:02", nil}, // a setting with a MAC is not one by name
		{"eth2", "02:00:00:00:00:03", nil},
		{"eth3", "02:00:00:00:00:04", nil},
		{"eth4", "02:00:00:00:00:05", nil},
	} {
		got := m.staticFor(&nic{name: tc.name, mac: tc.mac})
		if diff := cmp.Diff(tc.want, got, cmpNet); diff != "" {
			t.Errorf("%s (%s): (-want +got)\n%s", tc.name, tc.mac, diff)
		}
	}
	if got := New(Options{}).staticFor(&nic{name: "eth0"}); got != nil {
		t.Errorf("no settings: %+v, want DHCP", got)
	}
}

var cmpNet = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
}

// TestDesired: static settings and leases become desired state; the WAN
// the settings name comes first, then the kernel's order; metrics follow
// the rank whether or not a NIC has a route yet; DNS servers in that
// order, search domains once.
func TestDesired(t *testing.T) {
	cfg := &nodeconfig.Config{WAN: "eth2", Interfaces: map[string]nodeconfig.Interface{
		"eth2": {Address: pfx("10.2.0.2/24"), Gateway: addr("10.2.0.1"), DNS: []netip.Addr{addr("10.2.0.53")}},
	}}
	m := manager(cfg,
		&nic{name: "eth0", index: 2, lease: &dhcp.Lease{Addr: pfx("10.0.0.5/24"), Router: addr("10.0.0.1"), DNS: []netip.Addr{addr("10.0.0.53")}, Domain: "a.test", MTU: 1400}},
		&nic{name: "eth1", index: 3}, // waiting for a lease
		&nic{name: "eth2", index: 4},
		&nic{name: "eth3", index: 5, lease: &dhcp.Lease{Addr: pfx("10.3.0.5/16"), DNS: []netip.Addr{addr("10.3.0.53")}, Domain: "a.test"}},
	)
	ifs, res := m.Desired()
	want := []reconciler.Interface{
		{Name: "eth2", Addrs: []netip.Prefix{pfx("10.2.0.2/24")}, Gateway: addr("10.2.0.1"), Metric: 100},
		{Name: "eth0", Addrs: []netip.Prefix{pfx("10.0.0.5/24")}, Gateway: addr("10.0.0.1"), Metric: 101, MTU: 1400},
		{Name: "eth1", Metric: 102},
		{Name: "eth3", Addrs: []netip.Prefix{pfx("10.3.0.5/16")}, Metric: 103},
	}
	if diff := cmp.Diff(want, ifs, cmpNet); diff != "" {
		t.Errorf("interfaces (-want +got)\n%s", diff)
	}
	wantRes := &netcfg.Resolver{Servers: []netip.Addr{addr("10.2.0.53"), addr("10.0.0.53"), addr("10.3.0.53")}, Search: []string{"a.test"}}
	if diff := cmp.Diff(wantRes, res, cmpNet); diff != "" {
		t.Errorf("resolver (-want +got)\n%s", diff)
	}

	if ifs, res := New(Options{}).Desired(); len(ifs) != 0 || len(res.Servers) != 0 || len(res.Search) != 0 {
		t.Errorf("no NICs: %+v %+v, want nothing", ifs, res)
	}
}

func TestNoDefaultRoute(t *testing.T) {
	static := func(gw string) *nodeconfig.Interface {
		s := &nodeconfig.Interface{Address: pfx("10.1.0.2/24")}
		if gw != "" {
			s.Gateway = addr(gw)
		}
		return s
	}
	lease := func(router string) *dhcp.Lease {
		l := &dhcp.Lease{Addr: pfx("10.0.0.5/24")}
		if router != "" {
			l.Router = addr(router)
		}
		return l
	}
	for _, tc := range []struct {
		what string
		nics []*nic
		why  string
		none bool
	}{
		{what: "no NIC"},
		{what: "waiting for a lease", nics: []*nic{{name: "eth0", index: 1}}},
		{what: "one waiting, one without a router", nics: []*nic{{name: "eth0", index: 1, lease: lease("")}, {name: "eth1", index: 2}}},
		{what: "a lease with a router", nics: []*nic{{name: "eth0", index: 1, lease: lease("10.0.0.1")}, {name: "eth1", index: 2}}},
		{what: "a static gateway", nics: []*nic{{name: "eth0", index: 1, lease: lease("")}, {name: "eth1", index: 2, static: static("10.1.0.1")}}},
		{what: "none of them", nics: []*nic{{name: "eth1", index: 2, static: static("")}, {name: "eth0", index: 1, lease: lease("")}},
			why: "eth0: DHCP lease without a router; eth1: static, without a gateway", none: true},
	} {
		why, none := manager(nil, tc.nics...).NoDefaultRoute()
		if why != tc.why || none != tc.none {
			t.Errorf("%s: NoDefaultRoute() = %q, %v; want %q, %v", tc.what, why, none, tc.why, tc.none)
		}
	}
}

// TestStatus: what the manager knows with what the kernel has, in WAN
// order; a gateway the kernel does not show yet is the desired one.
func TestStatus(t *testing.T) {
	cfg := &nodeconfig.Config{Interfaces: map[string]nodeconfig.Interface{
		"eth1": {Address: pfx("10.1.0.2/24"), Gateway: addr("10.1.0.1"), DNS: []netip.Addr{addr("10.1.0.53")}},
	}}
	m := manager(cfg,
		&nic{name: "eth0", index: 2, mac: "02:00:00:00:00:01", admin: true, up: true},
		&nic{name: "eth1", index: 3, mac: "02:00:00:00:00:02", admin: true, up: false},
		&nic{name: "eth2", index: 4, mac: "02:00:00:00:00:03", admin: false},
	)
	kernel := reconciler.Status{
		WAN: "eth1",
		NICs: map[string]reconciler.NIC{
			"eth0": {Addrs: []netip.Prefix{pfx("10.0.0.5/24")}},
			"eth1": {Addrs: []netip.Prefix{pfx("10.1.0.2/24")}, DefaultRoute: true, Gateway: addr("10.1.0.1")},
		},
		Interfaces: map[string]error{"eth0": nil, "eth2": errors.New("setting eth2 up: no such device")},
	}
	want := []localapi.Interface{
		{Name: "eth0", MAC: "02:00:00:00:00:01", Link: "up", Mode: "dhcp", Addresses: []netip.Prefix{pfx("10.0.0.5/24")}},
		{Name: "eth1", MAC: "02:00:00:00:00:02", Link: "down", Mode: "static", Addresses: []netip.Prefix{pfx("10.1.0.2/24")},
			Gateway: addr("10.1.0.1"), DefaultRoute: true, WAN: true, DNS: []netip.Addr{addr("10.1.0.53")}},
		{Name: "eth2", MAC: "02:00:00:00:00:03", Link: "admin-down", Mode: "dhcp", Error: "setting eth2 up: no such device"},
	}
	if diff := cmp.Diff(want, m.Status(kernel), cmpNet); diff != "" {
		t.Errorf("status (-want +got)\n%s", diff)
	}

	// Before the reconciler's pass: the gateway the NIC is meant to have.
	got := m.Status(reconciler.Status{})
	if len(got) != 3 || got[1].Gateway != addr("10.1.0.1") || got[1].DefaultRoute || got[1].WAN || len(got[1].Addresses) != 0 {
		t.Errorf("status before a pass: %+v", got)
	}
}

// TestReloadBeforeWatch: settings taken before Watch configure nothing
// yet (there are no NICs), are the ones Watch uses, and say so.
func TestReloadBeforeWatch(t *testing.T) {
	changes := 0
	m := New(Options{OnChange: func() { changes++ }})
	cfg := &nodeconfig.Config{WAN: "eth1"}
	m.Reload(cfg)
	if changes != 1 || m.cfg != cfg || len(m.nics) != 0 || m.Has("eth1") {
		t.Errorf("after Reload: %d changes, cfg %+v, NICs %v", changes, m.cfg, m.nics)
	}
}
