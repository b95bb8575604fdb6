package daemon

// NIC management, for the appliance only (gate up --manage-nics): every
// physical NIC is brought up and configured by DHCP, unless a static
// setting names it. The settings are layered with services/nodeconfig:
// the preseed file < interfaces.json in the state directory < the kernel
// command line. The DHCP clients (services/dhcp) only report leases; what
// the kernel gets is decided here, as desired state, and applied by the
// reconciler.

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/gatenet/gate/services/dhcp"
	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/netcfg"
	"github.com/gatenet/gate/services/nodeconfig"
	"github.com/gatenet/gate/services/reconciler"
)

// InterfacesFile is the state directory's file of static NIC settings: a
// JSON object of nodeconfig.Interface by NIC name, e.g.
// {"eth1": {"address": "172.16.1.10/24", "gateway": "172.16.1.1"}}.
const InterfacesFile = "interfaces.json"

// wanMetric is the metric of the WAN's default route; other NICs' default
// routes follow it (101, 102, ...), so the kernel prefers the WAN's.
const wanMetric = 100

// nic is one managed NIC.
type nic struct {
	name  string
	index int
	mac   string
	up    bool // carrier (IFF_LOWER_UP)
	admin bool // IFF_UP

	static *nodeconfig.Interface // nil: DHCP
	client *dhcp.Client
	cancel context.CancelFunc // stops client
	done   chan struct{}      // closed when client has stopped
	lease  *dhcp.Lease
}

// stop stops n's client without waiting for it; its late updates are
// ignored, since they no longer come from n.client.
func (n *nic) stop() {
	if n.cancel != nil {
		n.cancel()
	}
	n.client, n.cancel, n.lease = nil, nil, nil
}

// nics is the daemon's NIC manager.
type nics struct {
	logf     func(string, ...any)
	only     []string // manage only these NICs; empty: every physical one
	hostname string
	onChange func()

	mu   sync.Mutex
	ctx  context.Context    // the watch's, for clients started later
	cfg  *nodeconfig.Config // effective static settings (interfaces, wan)
	nics map[string]*nic
}

// has reports whether name is a NIC under management.
func (m *nics) has(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.nics[name] != nil
}

// reload takes new static settings: NICs whose setting changed are
// configured again (DHCP started or stopped), the rest are left alone.
func (m *nics) reload(cfg *nodeconfig.Config) {
	m.mu.Lock()
	m.cfg = cfg
	for _, n := range m.nics {
		if m.ctx != nil && !reflect.DeepEqual(m.staticFor(n), n.static) {
			m.configureLocked(m.ctx, n)
		}
	}
	m.mu.Unlock()
	m.onChange()
}

// physical reports whether a link is one of the machine's NICs that Gate
// manages: not loopback, not Gate's own links, and Ethernet (a real
// device, or a veth in tests).
func physical(l netlink.Link, only []string) bool {
	a := l.Attrs()
	if len(only) > 0 {
		return slices.Contains(only, a.Name)
	}
	if a.Flags&net.FlagLoopback != 0 || strings.HasPrefix(a.Name, "gate") {
		return false
	}
	switch l.Type() {
	case "device", "veth":
		return a.EncapType == "ether" || a.EncapType == ""
	}
	return false
}

// watch follows the machine's links until ctx is done: a new NIC gets a
// DHCP client (or its static settings), a vanished one is dropped, a
// carrier change reaches the NIC's client.
func (m *nics) watch(ctx context.Context) error {
	m.mu.Lock()
	m.ctx = ctx
	m.mu.Unlock()
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	errs := make(chan error, 1)
	err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{
		ListExisting: true,
		ErrorCallback: func(err error) {
			select {
			case errs <- err:
			default:
			}
		},
	})
	if err != nil {
		return fmt.Errorf("watching links: %w", err)
	}
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				m.stopAll()
				return
			case err := <-errs:
				m.logf("watching links: %v", err)
			case u, ok := <-ch:
				if !ok {
					return
				}
				m.linkUpdate(ctx, u)
			}
		}
	}()
	return nil
}

func (m *nics) linkUpdate(ctx context.Context, u netlink.LinkUpdate) {
	if u.Link == nil || !physical(u.Link, m.only) {
		return
	}
	a := u.Link.Attrs()
	m.mu.Lock()
	n := m.nics[a.Name]
	if u.Header.Type == unix.RTM_DELLINK {
		if n != nil {
			n.stop()
			delete(m.nics, a.Name)
			m.logf("interface %s gone", a.Name)
		}
		m.mu.Unlock()
		m.onChange()
		return
	}
	carrier := a.RawFlags&unix.IFF_LOWER_UP != 0
	if n == nil {
		n = &nic{name: a.Name, index: a.Index, mac: a.HardwareAddr.String(), up: carrier, admin: a.Flags&net.FlagUp != 0}
		m.nics[a.Name] = n
		m.configureLocked(ctx, n)
		m.mu.Unlock()
		m.onChange()
		return
	}
	n.admin = a.Flags&net.FlagUp != 0
	changed := carrier != n.up
	n.up = carrier
	client := n.client
	m.mu.Unlock()
	if changed {
		m.logf("interface %s: carrier %s", a.Name, map[bool]string{true: "up", false: "down"}[carrier])
		if client != nil {
			client.SetLink(carrier)
		}
		m.onChange()
	}
}

// configureLocked (re)starts n's DHCP client, or sets its static
// settings.
func (m *nics) configureLocked(ctx context.Context, n *nic) {
	n.stop()
	n.static = m.staticFor(n)
	if n.static != nil {
		m.logf("interface %s (%s): static %s via %s", n.name, n.mac, n.static.Address, orNone(n.static.Gateway))
		return
	}
	m.logf("interface %s (%s): DHCP", n.name, n.mac)
	cctx, cancel := context.WithCancel(ctx)
	var c *dhcp.Client
	c = dhcp.New(dhcp.Config{
		Iface:    n.name,
		Hostname: m.hostname,
		Logf:     m.logf,
		OnUpdate: func(u dhcp.Update) {
			m.mu.Lock()
			mine := m.nics[n.name] == n && n.client == c
			if mine {
				n.lease = u.Lease
			}
			m.mu.Unlock()
			if mine {
				m.onChange()
			}
		},
	})
	done := make(chan struct{})
	n.client, n.cancel, n.done = c, cancel, done
	go func() {
		defer close(done)
		// The NIC may still be down: the reconciler brings it up on its
		// first pass. Until then the client's sends fail and it retries.
		if err := c.Run(cctx); err != nil {
			m.logf("interface %s: %v", n.name, err)
		}
	}()
	if !n.up {
		c.SetLink(false)
	}
}

// staticFor returns n's static settings, or nil for DHCP. A setting
// naming a MAC matches the NIC with that MAC, whatever its kernel name.
func (m *nics) staticFor(n *nic) *nodeconfig.Interface {
	if m.cfg == nil {
		return nil
	}
	for _, name := range m.cfg.InterfaceNames() {
		s := m.cfg.Interfaces[name]
		if s.MAC != "" && strings.EqualFold(s.MAC, n.mac) || s.MAC == "" && name == n.name {
			if s.DHCP || !s.Address.IsValid() {
				return nil
			}
			return &s
		}
	}
	return nil
}

// stopAll stops every client and waits for them.
func (m *nics) stopAll() {
	m.mu.Lock()
	var dones []chan struct{}
	for _, n := range m.nics {
		if n.done != nil {
			dones = append(dones, n.done)
		}
		n.stop()
	}
	m.mu.Unlock()
	for _, d := range dones {
		<-d
	}
}

// ordered returns the NICs in the order that picks the WAN: the one the
// settings name first, then by interface index (the order the kernel found
// them).
func (m *nics) ordered() []*nic {
	out := make([]*nic, 0, len(m.nics))
	for _, n := range m.nics {
		out = append(out, n)
	}
	wan := ""
	if m.cfg != nil {
		wan = m.cfg.WAN
	}
	slices.SortFunc(out, func(a, b *nic) int {
		if (a.name == wan) != (b.name == wan) {
			if a.name == wan {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.index, b.index)
	})
	return out
}

// noDefaultRoute reports, once every managed NIC has its settings (a
// static setting or a DHCP lease), that none of them gives a default
// route, and says why for each: then no route to anything beyond the
// NICs' own subnets (a cloud's metadata service) will come. QEMU's user
// networking with restrict=on, for one, leases an address without a
// router. It reports false while any NIC is still waiting for a lease.
func (m *nics) noDefaultRoute() (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.nics) == 0 {
		return "", false
	}
	var why []string
	for _, n := range m.ordered() {
		switch {
		case n.static != nil && n.static.Gateway.IsValid(), n.lease != nil && n.lease.Router.IsValid():
			return "", false
		case n.static != nil:
			why = append(why, n.name+": static, without a gateway")
		case n.lease != nil:
			why = append(why, n.name+": DHCP lease without a router")
		default:
			return "", false // still waiting for a lease
		}
	}
	return strings.Join(why, "; "), true
}

// desired is the NICs' part of the reconciler's desired state: every
// managed NIC (so that it is up, even before it has an address), its
// address and default route from its lease or static settings, and the
// DNS servers, the WAN's first. The first NIC (in ordered's order) with a
// default route is the WAN: its route gets the lowest metric.
func (m *nics) desired() ([]reconciler.Interface, *netcfg.Resolver) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []reconciler.Interface
	res := &netcfg.Resolver{}
	for i, n := range m.ordered() {
		ri := reconciler.Interface{Name: n.name}
		var dns []netip.Addr
		switch {
		case n.static != nil:
			ri.Addrs = []netip.Prefix{n.static.Address}
			ri.Gateway = n.static.Gateway
			dns = n.static.DNS
		case n.lease != nil:
			ri.Addrs = []netip.Prefix{n.lease.Addr}
			ri.Gateway, ri.MTU = n.lease.Router, n.lease.MTU
			dns = n.lease.DNS
			if n.lease.Domain != "" && !slices.Contains(res.Search, n.lease.Domain) {
				res.Search = append(res.Search, n.lease.Domain)
			}
		}
		// The metric follows the NIC's rank, whether or not it has a
		// route yet, so that a lease arriving later never asks for a
		// metric another NIC's default route holds (the kernel refuses
		// two default routes with one metric).
		ri.Metric = wanMetric + i
		res.Servers = append(res.Servers, dns...)
		out = append(out, ri)
	}
	return out, res
}

// status is what GET /v1/interfaces reports.
func (m *nics) status(kernel reconciler.Status) []localapi.Interface {
	wan := kernel.WAN
	want, _ := m.desired()
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []localapi.Interface
	for _, n := range m.ordered() {
		li := localapi.Interface{Name: n.name, MAC: n.mac, Link: "up", Mode: "dhcp", WAN: n.name == wan}
		switch {
		case !n.admin:
			li.Link = "admin-down"
		case !n.up:
			li.Link = "down"
		}
		if obs, ok := kernel.NICs[n.name]; ok {
			li.Addresses = obs.Addrs
			li.DefaultRoute, li.Gateway = obs.DefaultRoute, obs.Gateway
		}
		for _, w := range want {
			if w.Name == n.name && !li.Gateway.IsValid() {
				li.Gateway = w.Gateway
			}
		}
		if n.static != nil {
			li.Mode, li.DNS = "static", n.static.DNS
		} else if n.client != nil {
			st := n.client.Status()
			d := &localapi.DHCP{State: string(st.State), LastError: st.LastError}
			if l := st.Lease; l != nil {
				d.Server, d.Domain, d.Obtained, d.Renew, d.Rebind, d.Expiry = l.Server, l.Domain, l.Obtained, l.Renew(), l.Rebind(), l.Expiry()
				d.Lifetime = l.Lifetime.String()
				li.DNS = l.DNS
			}
			li.DHCP = d
		}
		if err := kernel.Interfaces[n.name]; err != nil {
			li.Error = err.Error()
		}
		out = append(out, li)
	}
	return out
}

func orNone(a netip.Addr) string {
	if !a.IsValid() {
		return "none"
	}
	return a.String()
}

// nicConfig merges the static NIC settings: preseed < the state
// directory's interfaces.json < the kernel command line. An invalid merge
// is an error (the caller keeps DHCP everywhere and says why).
func nicConfig(preseed *nodeconfig.Layer, local map[string]nodeconfig.Interface, cmdline string) (*nodeconfig.Config, error) {
	layers := []*nodeconfig.Layer{preseed}
	if len(local) > 0 {
		layers = append(layers, nodeconfig.NewLayer(nodeconfig.SourceLocal, InterfacesFile, &nodeconfig.Config{Interfaces: local}))
	}
	if strings.Contains(cmdline, "gate.") {
		l, err := nodeconfig.ParseCmdline(cmdline)
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	e, err := nodeconfig.Merge(layers...)
	if err != nil {
		return nil, err
	}
	return e.Config, nil
}
