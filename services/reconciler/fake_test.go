package reconciler

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/gatenet/gate/services/firewall"
	"github.com/gatenet/gate/services/netcfg"
	"github.com/gatenet/gate/services/tunnel"
)

// fakeKernel is a recording fake of the Kernel (tailscale's router fakeOS):
// it keeps links, addresses, routes, devices, the table, the forwarding
// switch and files in memory, and records every write as the ip, wg, nft or
// sysctl command that would do the same, e.g.
//
//	ip link add gatetest mtu 1420 type wireguard
//	ip addr add 192.168.254.11/24 dev gatetest
//	nft replace table inet gate
//	sysctl -w net.ipv4.ip_forward=1
//
// Links plan their changes with netcfg.PlanLink, as the real Sync does,
// and rulesets are validated as firewall.Apply validates them. Any call can
// be made to fail (fail), reads included ("ip route show default",
// "sysctl net.ipv4.ip_forward"); a failed write changes nothing and is not
// recorded.
type fakeKernel struct {
	mu      sync.Mutex
	lines   []string
	fails   map[string]error // by the prefix of the command that fails
	links   map[string]*fakeLink
	devices map[string]*fakeDevice // open devices by link name
	table   *firewall.Ruleset      // nil: no table
	fwd     bool
	files   map[string]string
	// hook, if set, sees every call's command first, outside the lock.
	hook func(cmd string)
	// watchers are the WatchLinks callbacks; linkEvent calls them.
	watchers []func()
}

// fakeLink is one link: Gate's routes (proto 241) apart from the others'.
type fakeLink struct {
	up     bool
	mtu    int
	addrs  []netip.Prefix
	routes []netcfg.Route // Gate's, Metric normalised
	host   []netcfg.Route // someone else's
}

func newFakeKernel() *fakeKernel {
	return &fakeKernel{
		fails:   map[string]error{},
		links:   map[string]*fakeLink{},
		devices: map[string]*fakeDevice{},
		files:   map[string]string{},
	}
}

// kernel is f as the reconciler's Kernel.
func (f *fakeKernel) kernel() Kernel {
	return Kernel{Devices: fakeDevices{f}, Links: fakeLinks{f}, Firewall: fakeFirewall{f}, Forwarding: fakeForwarding{f}, Files: fakeFiles{f}}
}

// fail makes every call whose command starts with prefix fail with err,
// until fail(prefix, nil). A *tunnel.PeerError for a "wg set" is returned
// after applying, as the device leaves out those peers and applies the rest.
func (f *fakeKernel) fail(prefix string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.fails, prefix)
		return
	}
	f.fails[prefix] = err
}

// take returns the commands recorded since the last take.
func (f *fakeKernel) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.lines
	f.lines = nil
	return l
}

// hostLink adds a link that is not Gate's, up, with routes of its own (a
// NIC with its default route), without recording it.
func (f *fakeKernel) hostLink(name string, addrs []netip.Prefix, routes ...netcfg.Route) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.links[name] = &fakeLink{up: true, mtu: 1500, addrs: addrs, host: routes}
}

// enter runs the hook for cmd and then takes the lock; it returns the
// failure set for cmd, if any. The caller unlocks.
func (f *fakeKernel) enter(cmd string) error {
	if h := f.hookFn(); h != nil {
		h(cmd)
	}
	f.mu.Lock()
	return f.failure(cmd)
}

func (f *fakeKernel) hookFn() func(string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hook
}

func (f *fakeKernel) failure(cmd string) error {
	for p, err := range f.fails {
		if strings.HasPrefix(cmd, p) {
			return err
		}
	}
	return nil
}

// write records cmd unless it fails (the lock held).
func (f *fakeKernel) write(cmd string) error {
	if err := f.failure(cmd); err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	f.lines = append(f.lines, cmd)
	return nil
}

type fakeDevices struct{ f *fakeKernel }

func (d fakeDevices) New(name string, mtu int) (Device, error) {
	f := d.f
	cmd := fmt.Sprintf("ip link add %s mtu %d type wireguard", name, mtu)
	err := f.enter(cmd)
	defer f.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("creating TUN %s: %w", name, err)
	}
	if f.links[name] != nil {
		return nil, fmt.Errorf("creating TUN %s: %w", name, syscall.EEXIST)
	}
	if err := f.write(cmd); err != nil {
		return nil, err
	}
	f.links[name] = &fakeLink{mtu: mtu}
	dev := &fakeDevice{f: f, name: name}
	f.devices[name] = dev
	return dev, nil
}

// fakeDevice is a WireGuard device: its configuration as last applied.
type fakeDevice struct {
	f      *fakeKernel
	name   string
	cfg    tunnel.Config
	closed bool
}

func (d *fakeDevice) Name() string { return d.name }

// short names a key by the start of its base64, as wg show does not but
// as a test can read.
func short(k tunnel.Key) string { return k.String()[:8] }

func (d *fakeDevice) Configure(cfg tunnel.Config) error {
	f := d.f
	cmd := "wg set " + d.name
	err := f.enter(cmd)
	defer f.mu.Unlock()
	var pe *tunnel.PeerError
	if err != nil && !errors.As(err, &pe) {
		return fmt.Errorf("configuring %s: %w", d.name, err)
	}
	if d.closed {
		return fmt.Errorf("configuring %s: device closed", d.name)
	}
	var cmds []string
	if cfg.PrivateKey != d.cfg.PrivateKey {
		cmds = append(cmds, fmt.Sprintf("%s private-key (public %s)", cmd, short(cfg.PrivateKey.Public())))
	}
	if cfg.ListenPort != d.cfg.ListenPort && cfg.ListenPort != 0 {
		for _, o := range f.devices {
			if o != d && o.cfg.ListenPort == cfg.ListenPort {
				return fmt.Errorf("configuring %s: listen udp :%d: %w", d.name, cfg.ListenPort, syscall.EADDRINUSE)
			}
		}
		cmds = append(cmds, fmt.Sprintf("%s listen-port %d", cmd, cfg.ListenPort))
	}
	was := map[tunnel.Key]tunnel.Peer{}
	for _, p := range d.cfg.Peers {
		was[p.PublicKey] = p
	}
	wanted := map[tunnel.Key]bool{}
	for _, p := range cfg.Peers {
		wanted[p.PublicKey] = true
		if old, ok := was[p.PublicKey]; ok && reflect.DeepEqual(old, p) {
			continue
		}
		c := fmt.Sprintf("%s peer %s", cmd, short(p.PublicKey))
		if p.Endpoint.IsValid() {
			c += " endpoint " + p.Endpoint.String()
		}
		var ips []string
		for _, a := range p.AllowedIPs {
			ips = append(ips, a.String())
		}
		c += " allowed-ips " + strings.Join(ips, ",")
		if p.Keepalive != 0 {
			c += fmt.Sprintf(" persistent-keepalive %d", p.Keepalive)
		}
		cmds = append(cmds, c)
	}
	var removed []string
	for k := range was {
		if !wanted[k] {
			removed = append(removed, fmt.Sprintf("%s peer %s remove", cmd, short(k)))
		}
	}
	slices.Sort(removed)
	f.lines = append(f.lines, append(cmds, removed...)...)
	d.cfg = cfg
	d.cfg.Peers = slices.Clone(cfg.Peers)
	if pe != nil {
		return pe
	}
	return nil
}

func (d *fakeDevice) Status() (tunnel.Status, error) {
	f := d.f
	err := f.enter("wg show " + d.name)
	defer f.mu.Unlock()
	if err != nil {
		return tunnel.Status{}, fmt.Errorf("status of %s: %w", d.name, err)
	}
	if d.closed {
		return tunnel.Status{}, fmt.Errorf("status of %s: device closed", d.name)
	}
	st := tunnel.Status{ListenPort: d.cfg.ListenPort}
	if !d.cfg.PrivateKey.IsZero() {
		st.PublicKey = d.cfg.PrivateKey.Public()
	}
	for _, p := range d.cfg.Peers {
		st.Peers = append(st.Peers, tunnel.PeerStatus{PublicKey: p.PublicKey, Endpoint: p.Endpoint, AllowedIPs: p.AllowedIPs, Keepalive: p.Keepalive})
	}
	return st, nil
}

func (d *fakeDevice) Close() error {
	f := d.f
	cmd := "ip link del " + d.name
	f.enter(cmd) // closing cannot fail
	defer f.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	f.lines = append(f.lines, cmd)
	delete(f.links, d.name)
	delete(f.devices, d.name)
	return nil
}

type fakeLinks struct{ f *fakeKernel }

func (l fakeLinks) Sync(lc netcfg.LinkConfig) error {
	f := l.f
	err := f.enter("ip link show " + lc.Name)
	defer f.mu.Unlock()
	if err != nil {
		return fmt.Errorf("syncing %s: %w", lc.Name, err)
	}
	link := f.links[lc.Name]
	if link == nil {
		return &LinkNotFoundError{Name: lc.Name, Err: fmt.Errorf("syncing %s: Link not found", lc.Name)}
	}
	var errs []error
	if !link.up {
		if err := f.write(fmt.Sprintf("ip link set dev %s up", lc.Name)); err != nil {
			errs = append(errs, err)
		} else {
			link.up = true
		}
	}
	cur := netcfg.LinkConfig{Name: lc.Name, MTU: link.mtu, IPv4Only: lc.IPv4Only}
	for _, a := range link.addrs {
		if !lc.IPv4Only || a.Addr().Is4() {
			cur.Addrs = append(cur.Addrs, a)
		}
	}
	for _, r := range link.routes {
		if !lc.IPv4Only || r.Dst.Addr().Is4() {
			cur.Routes = append(cur.Routes, r)
		}
	}
	for _, op := range netcfg.PlanLink(cur, lc) {
		if err := f.write(op.String()); err != nil {
			errs = append(errs, err)
			continue
		}
		switch op.Kind {
		case netcfg.SetMTU:
			link.mtu = op.MTU
		case netcfg.AddAddr:
			link.addrs = append(link.addrs, op.Addr)
		case netcfg.DelAddr:
			link.addrs = slices.DeleteFunc(link.addrs, func(a netip.Prefix) bool { return a == op.Addr })
		case netcfg.AddRoute:
			link.routes = append(link.routes, op.Route)
		case netcfg.ReplaceRoute, netcfg.DelRoute:
			link.routes = slices.DeleteFunc(link.routes, func(r netcfg.Route) bool {
				return r.Dst == op.Route.Dst && r.Metric == op.Route.Metric
			})
			if op.Kind == netcfg.ReplaceRoute {
				link.routes = append(link.routes, op.Route)
			}
		}
	}
	return errors.Join(errs...)
}

func (l fakeLinks) RemoveRoutes(name string) error {
	f := l.f
	err := f.enter("ip route show dev " + name + " proto 241")
	defer f.mu.Unlock()
	if err != nil {
		return fmt.Errorf("removing routes of %s: %w", name, err)
	}
	link := f.links[name]
	if link == nil {
		return fmt.Errorf("removing routes of %s: Link not found", name)
	}
	var errs []error
	var kept []netcfg.Route
	for _, r := range link.routes {
		if err := f.write(netcfg.Op{Kind: netcfg.DelRoute, Link: name, Route: r}.String()); err != nil {
			errs = append(errs, err)
			kept = append(kept, r)
		}
	}
	link.routes = kept
	return errors.Join(errs...)
}

func (l fakeLinks) LinkByDefaultRoute() (string, error) {
	f := l.f
	err := f.enter("ip route show default")
	defer f.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("listing IPv4 routes: %w", err)
	}
	best, bestMetric := "", -1
	for name, link := range f.links {
		for _, r := range append(slices.Clone(link.routes), link.host...) {
			if r.Dst.Bits() == 0 && r.Dst.Addr().Is4() && (bestMetric < 0 || r.Metric < bestMetric || r.Metric == bestMetric && name < best) {
				best, bestMetric = name, r.Metric
			}
		}
	}
	return best, nil
}

func (l fakeLinks) Observe(name string) (netcfg.LinkConfig, error) {
	f := l.f
	err := f.enter("ip addr show " + name)
	defer f.mu.Unlock()
	if err != nil {
		return netcfg.LinkConfig{}, fmt.Errorf("observing %s: %w", name, err)
	}
	link := f.links[name]
	if link == nil {
		return netcfg.LinkConfig{}, fmt.Errorf("observing %s: Link not found", name)
	}
	return netcfg.LinkConfig{Name: name, MTU: link.mtu, Addrs: slices.Clone(link.addrs),
		Routes: append(slices.Clone(link.routes), link.host...)}, nil
}

func (l fakeLinks) WatchLinks(done <-chan struct{}, changed func()) error {
	l.f.mu.Lock()
	defer l.f.mu.Unlock()
	l.f.watchers = append(l.f.watchers, changed)
	return nil
}

// linkEvent tells the watchers that a link changed.
func (f *fakeKernel) linkEvent() {
	f.mu.Lock()
	ws := slices.Clone(f.watchers)
	f.mu.Unlock()
	for _, w := range ws {
		w()
	}
}

func (l fakeLinks) Close() {}

type fakeFirewall struct{ f *fakeKernel }

func (w fakeFirewall) Apply(rs firewall.Ruleset) error {
	f := w.f
	cmd := "nft replace table inet " + firewall.TableName
	err := f.enter(cmd)
	defer f.mu.Unlock()
	if err != nil {
		return fmt.Errorf("firewall: replacing table inet %s: %w", firewall.TableName, err)
	}
	if err := rs.Validate(); err != nil {
		return err
	}
	f.lines = append(f.lines, cmd)
	f.table = &rs
	return nil
}

// Counters: the fake table counts nothing; it lists each policy rule
// with zero, as the kernel would before any packet.
func (w fakeFirewall) Counters() (map[string][]firewall.RuleCount, error) {
	f := w.f
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]firewall.RuleCount{}
	if f.table == nil {
		return out, nil
	}
	for _, o := range f.table.Overlays {
		if o.Policy == nil {
			continue
		}
		for _, r := range o.Policy.Input {
			out[o.Iface] = append(out[o.Iface], firewall.RuleCount{Chain: "input", Rule: r.Rule, Allow: r.Allow})
		}
		out[o.Iface] = append(out[o.Iface], firewall.RuleCount{Chain: "input"})
	}
	return out, nil
}

func (w fakeFirewall) Remove() error {
	f := w.f
	cmd := "nft delete table inet " + firewall.TableName
	err := f.enter(cmd)
	defer f.mu.Unlock()
	if err != nil {
		return fmt.Errorf("firewall: deleting table inet %s: %w", firewall.TableName, err)
	}
	f.lines = append(f.lines, cmd)
	f.table = nil
	return nil
}

func (w fakeFirewall) Close() {}

type fakeForwarding struct{ f *fakeKernel }

func (w fakeForwarding) Get() (bool, error) {
	f := w.f
	err := f.enter("sysctl net.ipv4.ip_forward")
	defer f.mu.Unlock()
	if err != nil {
		return false, fmt.Errorf("reading net.ipv4.ip_forward: %w", err)
	}
	return f.fwd, nil
}

func (w fakeForwarding) Set(on bool) (bool, error) {
	f := w.f
	err := f.enter("sysctl net.ipv4.ip_forward")
	defer f.mu.Unlock()
	if err != nil {
		return false, fmt.Errorf("reading net.ipv4.ip_forward: %w", err)
	}
	prev := f.fwd
	if prev == on {
		return prev, nil
	}
	v := map[bool]int{false: 0, true: 1}[on]
	if err := f.write(fmt.Sprintf("sysctl -w net.ipv4.ip_forward=%d", v)); err != nil {
		return prev, err
	}
	f.fwd = on
	return prev, nil
}

func (w fakeForwarding) Switch() (string, error) { return "fake", nil }

type fakeFiles struct{ f *fakeKernel }

func (w fakeFiles) WriteResolvConf(path string, r netcfg.Resolver) (bool, error) {
	f := w.f
	cmd := "write " + path
	err := f.enter(cmd)
	defer f.mu.Unlock()
	if err != nil {
		return false, fmt.Errorf("%s: %w", cmd, err)
	}
	text := string(netcfg.RenderResolvConf(r))
	if f.files[path] == text {
		return false, nil
	}
	f.lines = append(f.lines, cmd)
	f.files[path] = text
	return true, nil
}
