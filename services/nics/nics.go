package nics

import (
	"cmp"
	"context"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/gatenet/gate/services/dhcp"
	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/netcfg"
	"github.com/gatenet/gate/services/nodeconfig"
	"github.com/gatenet/gate/services/reconciler"
)

// wanMetric is the metric of the WAN's default route; other NICs' default
// routes follow it (101, 102, ...), so the kernel prefers the WAN's.
const wanMetric = 100

// Options configure a Manager.
type Options struct {
	Logf func(format string, args ...any)
	// Only limits management to these NICs; empty: every physical NIC.
	Only []string
	// Hostname is sent in DHCP requests (option 12); "" for none.
	Hostname string
	// Config is the first static settings (Interfaces and WAN); nil: DHCP
	// on every NIC. Reload replaces them.
	Config *nodeconfig.Config
	// OnChange is called, with no lock of the manager held, whenever
	// Desired or Status may have changed: a NIC came or went, its carrier
	// changed, a lease came, changed or went, or Reload took new
	// settings. It may call back into the manager.
	OnChange func()
}

// Manager manages the machine's NICs. Its methods are safe for concurrent
// use.
type Manager struct {
	logf     func(string, ...any)
	only     []string
	hostname string
	onChange func()

	mu   sync.Mutex
	ctx  context.Context    // Watch's, for clients started later; nil before Watch
	cfg  *nodeconfig.Config // effective static settings (interfaces, wan)
	nics map[string]*nic
}

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

// New returns a manager that manages nothing until Watch.
func New(opt Options) *Manager {
	if opt.Logf == nil {
		opt.Logf = func(string, ...any) {}
	}
	if opt.OnChange == nil {
		opt.OnChange = func() {}
	}
	return &Manager{logf: opt.Logf, only: opt.Only, hostname: opt.Hostname, onChange: opt.OnChange, cfg: opt.Config, nics: map[string]*nic{}}
}

// Has reports whether name is a NIC under management.
func (m *Manager) Has(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.nics[name] != nil
}

// Reload takes new static settings (nil: DHCP everywhere): NICs whose
// setting changed are configured again (DHCP started or stopped), the rest
// are left alone. It calls OnChange.
func (m *Manager) Reload(cfg *nodeconfig.Config) {
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

// staticFor returns n's static settings, or nil for DHCP. A setting
// naming a MAC matches the NIC with that MAC, whatever its kernel name.
func (m *Manager) staticFor(n *nic) *nodeconfig.Interface {
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

// ordered returns the NICs in the order that picks the WAN: the one the
// settings name first, then by interface index (the order the kernel found
// them).
func (m *Manager) ordered() []*nic {
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

// NoDefaultRoute reports, once every managed NIC has its settings (a
// static setting or a DHCP lease), that none of them gives a default
// route, and says why for each: then no route to anything beyond the
// NICs' own subnets (a cloud's metadata service) will come. QEMU's user
// networking with restrict=on, for one, leases an address without a
// router. It reports false while any NIC is still waiting for a lease, and
// while there is no NIC.
func (m *Manager) NoDefaultRoute() (string, bool) {
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

// Desired is the NICs' part of the reconciler's desired state: every
// managed NIC (so that it is up, even before it has an address), its
// address and default route from its lease or static settings, and the
// DNS servers, the WAN's first. The first NIC (the one the settings name
// WAN, else by interface index) with a default route is the WAN: its
// route gets the lowest metric.
func (m *Manager) Desired() ([]reconciler.Interface, *netcfg.Resolver) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.desiredLocked()
}

func (m *Manager) desiredLocked() ([]reconciler.Interface, *netcfg.Resolver) {
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

// Status is what GET /v1/interfaces reports: the managed NICs in WAN
// order, with what the manager knows (mode, carrier, DHCP state and lease)
// and what kernel, the reconciler's status, observed (addresses, default
// route, the WAN, errors). A NIC without a gateway in the kernel shows the
// one it is meant to have.
func (m *Manager) Status(kernel reconciler.Status) []localapi.Interface {
	m.mu.Lock()
	defer m.mu.Unlock()
	want, _ := m.desiredLocked()
	var out []localapi.Interface
	for _, n := range m.ordered() {
		li := localapi.Interface{Name: n.name, MAC: n.mac, Link: "up", Mode: "dhcp", WAN: n.name == kernel.WAN}
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
