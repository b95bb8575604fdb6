// Package reconciler is the one writer of a node's kernel network state.
// Every source of intent (memberships, later the console and user-data)
// produces a Desired value; the reconciler makes the kernel match it
// through services/tunnel (WireGuard devices), services/netcfg (addresses,
// routes, forwarding) and services/firewall (Gate's nftables table).
//
// It is level-triggered: Set stores the newest desired state and pokes the
// loop; pokes coalesce (at most one pass pending, no sleeping); a periodic
// resync (WithResync) repairs drift and retries what failed. Each pass is
// idempotent: a pass with nothing new writes nothing. On shutdown the same
// pass runs with an empty desired state and removes what Gate made, and
// nothing else: its own links, its own routes, its own table, and the
// forwarding switch put back as it was found.
//
// It writes through the small interfaces of a Kernel (kernel.go): WireGuard
// devices, links with their addresses and routes, the firewall table, the
// forwarding switch and files. New takes the real ones unless WithKernel
// gives others; nothing is package-level, every option is given to New.
//
// Tests come in two kinds, in one test binary. The pure tests (TestPure...)
// run the passes and the loop against a recording fake (fake_test.go) that
// renders every write as an ip, wg, nft or sysctl command, and need no
// root: go test -run Pure. The kernel tests (reconciler_linux_test.go) run
// the real writers; each starts with kernelTest. As root, TestMain puts the
// whole binary in a network namespace of its own (services/nstest), as
// make test does; not root, it runs in place, the pure tests pass and
// every kernel test fails at its first line. None skips.
package reconciler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/gatenet/gate/services/firewall"
	"github.com/gatenet/gate/services/netcfg"
	"github.com/gatenet/gate/services/policy"
	"github.com/gatenet/gate/services/state"
	"github.com/gatenet/gate/services/tunnel"
)

// Desired is the whole kernel state Gate wants.
type Desired struct {
	// Strict denies input and forwarding by default (the appliance, and
	// nodes with a gateway role). Otherwise only Gate's guard rules apply.
	Strict   bool
	AllowTCP []uint16 // input ports open in strict mode
	Networks []Network
	// Interfaces are the machine's NICs that Gate manages (the appliance
	// only; an ordinary host's NICs are never listed). A NIC that leaves
	// the list loses the IPv4 addresses and routes Gate gave it; NICs
	// never listed are not touched.
	Interfaces []Interface
	// Resolv, when set, is written to ResolvConf (the appliance's
	// /etc/resolv.conf).
	Resolv     *netcfg.Resolver
	ResolvConf string
}

// Interface is the state Gate wants on one NIC: its IPv4 addresses (from
// DHCP or static settings) and a default route through it.
type Interface struct {
	Name    string
	Addrs   []netip.Prefix // IPv4 only: IPv6 on a NIC is the kernel's (SLAAC)
	Gateway netip.Addr     // the default route's next hop; invalid: no default route
	Metric  int            // the default route's metric: lowest is the WAN
	MTU     int            // 0: leave it
}

// Network is the kernel state of one joined network.
type Network struct {
	ID         string
	Iface      string
	MTU        int
	PrivateKey tunnel.Key
	ListenPort int
	Addrs      []netip.Prefix
	Routes     []netcfg.Route
	Peers      []tunnel.Peer
	// Prefixes are the destinations behind the overlay: the network's CIDR
	// and the routes other members serve.
	Prefixes []netip.Prefix
	Gateway  *Gateway
	// Policy is the network's rules this node enforces on what it
	// receives from the overlay (services/policy); nil: none from the
	// controller, nothing filtered.
	Policy *policy.Ruleset
	// HealthPort, when set, is let in from the overlay for the health
	// questions this node answers as a gateway (services/failover).
	HealthPort uint16
}

// Gateway is a network's gateway role on this node.
type Gateway struct {
	Serve              []netip.Prefix
	LAN                string // "": the default-route interface
	MasqueradeLAN      bool
	MasqueradeInternet bool
}

// NetworkStatus is what the kernel has for one network after a pass.
type NetworkStatus struct {
	Device *tunnel.Status
	Err    error
}

// Status is the outcome of the last pass.
type Status struct {
	Networks   map[string]NetworkStatus
	Interfaces map[string]error // by NIC name: nil when the NIC matches
	// NICs is what the kernel had on each managed NIC after the pass, and
	// WAN the link of the IPv4 default route ("" for none): the NICs'
	// observed state, for the local API, so nothing else reads netlink
	// for it.
	NICs       map[string]NIC
	WAN        string
	Forwarding bool
	Firewall   string
	Err        error
	At         time.Time
}

// NIC is one managed NIC as the kernel has it.
type NIC struct {
	Addrs []netip.Prefix
	// DefaultRoute: it has an IPv4 default route, through Gateway
	// (invalid for a route without a next hop).
	DefaultRoute bool
	Gateway      netip.Addr
}

// Resync is how often the loop reconciles without being asked, unless
// WithResync says otherwise, and the longest it waits to retry a pass that
// failed.
const Resync = 30 * time.Second

// Reconciler owns the kernel state.
type Reconciler struct {
	logf    func(string, ...any)
	k       Kernel          // what it writes (kernel.go)
	devOpts []tunnel.Option // for the real kernel's devices
	resync  time.Duration   // 0: no periodic pass

	trigger trigger

	// mu guards what callers see: the desired state, the last pass's
	// outcome and its devices. A pass takes it only to read and to
	// publish, so Set, Wait and Status never wait for a pass.
	mu      sync.Mutex
	desired Desired
	gen     uint64        // generation of desired, counted by Set
	applied uint64        // generation the last pass applied
	passed  chan struct{} // closed after each pass, then replaced
	status  Status
	shown   map[string]Device // devices as of the last pass, for Status
	// onPass runs after each pass with the status before and after it.
	onPass func(before, after Status)

	// passMu guards the rest: what the passes know of the kernel.
	passMu  sync.Mutex
	devices map[string]Device // by network ID
	// fwdPrev is the forwarding switch as found before Gate turned it on;
	// nil while Gate has not touched it. With a state directory it is on
	// disk too while Gate has forwarding on (forwarding.go), so that it
	// survives a crash.
	fwdPrev *bool
	state   *state.Dir // nil: nothing survives a crash
	// fwdSwitch names the forwarding switch (netcfg.ForwardingSwitch);
	// fwdFile is what forwardingFile holds.
	fwdSwitch string
	fwdFile   fileState
	ownsNFT   bool
	// ruleset is the ruleset the table holds, as far as Gate knows; nil:
	// unknown (the next pass applies its ruleset even if it is the same).
	ruleset *firewall.Ruleset
	nics    map[string]bool // NICs Gate has configured
}

// OnPass sets a function to run (outside the lock, on the loop's
// goroutine) after each pass, with the status before and after it.
func (r *Reconciler) OnPass(f func(before, after Status)) {
	r.mu.Lock()
	r.onPass = f
	r.mu.Unlock()
}

// Option configures a Reconciler at construction.
type Option func(*Reconciler)

// WithState gives the reconciler the daemon's state directory, where it
// keeps what it must put back as found even after a crash: the forwarding
// switch (forwarding.go). Without it that is kept in memory only, and a
// run that is killed loses it.
func WithState(d *state.Dir) Option { return func(r *Reconciler) { r.state = d } }

// WithResync sets how often Run makes a pass without being asked (drift
// repair, and a retry of what failed); 0 turns the periodic pass off. The
// default is Resync.
func WithResync(d time.Duration) Option { return func(r *Reconciler) { r.resync = d } }

// New makes a reconciler. Unless WithKernel says otherwise, it opens
// netlink and nftables in the current network namespace.
func New(logf func(string, ...any), opts ...Option) (*Reconciler, error) {
	r := &Reconciler{
		logf:    logf,
		resync:  Resync,
		trigger: newTrigger(),
		passed:  make(chan struct{}),
		devices: map[string]Device{},
		nics:    map[string]bool{},
		// A table left by a crashed run is Gate's: the first pass with
		// nothing to guard removes it.
		ownsNFT: true,
	}
	for _, o := range opts {
		o(r)
	}
	k, err := openKernel(r.k, logf, r.devOpts)
	if err != nil {
		return nil, err
	}
	r.k = k
	r.loadForwardingFound()
	return r, nil
}

// Set replaces the desired state and schedules a pass. It returns the
// generation to give Wait.
func (r *Reconciler) Set(d Desired) uint64 {
	r.mu.Lock()
	r.desired = d
	r.gen++
	gen := r.gen
	r.mu.Unlock()
	r.Poke()
	return gen
}

// Wait blocks until a pass has applied generation gen (or a later one) and
// returns that pass's error.
func (r *Reconciler) Wait(ctx context.Context, gen uint64) error {
	for {
		r.mu.Lock()
		if r.applied >= gen {
			err := r.status.Err
			r.mu.Unlock()
			return err
		}
		ch := r.passed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Poke schedules a pass without changing the desired state.
func (r *Reconciler) Poke() { r.trigger.poke() }

// PolicyCounters reads from the kernel, now, what each policy rule
// matched, by overlay interface.
func (r *Reconciler) PolicyCounters() (map[string][]firewall.RuleCount, error) {
	return r.k.Firewall.Counters()
}

// Status returns the outcome of the last pass, with fresh device counters.
func (r *Reconciler) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.status
	st.Networks = map[string]NetworkStatus{}
	for id, ns := range r.status.Networks {
		if dev := r.shown[id]; dev != nil {
			if ds, err := dev.Status(); err == nil {
				ns.Device = &ds
			}
		}
		st.Networks[id] = ns
	}
	return st
}

// Run reconciles until ctx is done, then tears down everything Gate made.
//
// A pass runs when poked (Set, Poke), at most one pending: pokes that come
// while a pass runs give exactly one more pass, which takes the newest
// desired state. A failed pass is retried with backoff (1 s, doubling, up
// to Resync). A link that appears, goes, or changes its up, carrier or
// MTU pokes it too: a link that went down and up again has lost its
// routes. The periodic pass (WithResync) also re-applies the firewall
// table, which the other passes leave alone while its ruleset is the same,
// so that a table someone else changed or removed is put back.
func (r *Reconciler) Run(ctx context.Context) {
	watching := make(chan struct{})
	defer close(watching)
	if err := r.k.Links.WatchLinks(watching, r.Poke); err != nil {
		r.logf("reconcile: %v; link changes wait for the next resync", err)
	}
	var tick <-chan time.Time
	if r.resync > 0 {
		t := time.NewTicker(r.resync)
		defer t.Stop()
		tick = t.C
	}
	backoff := time.Duration(0)
	for {
		var retry <-chan time.Time
		if backoff > 0 {
			retry = time.After(backoff)
		}
		resync := false
		select {
		case <-ctx.Done():
			r.Teardown()
			return
		case <-r.trigger.c:
		case <-tick:
			resync = true
		case <-retry:
		}
		r.mu.Lock()
		d, gen, before := r.desired, r.gen, r.status
		if resync {
			r.ruleset = nil
		}
		r.mu.Unlock()
		err := r.pass(d)
		r.mu.Lock()
		after, f := r.status, r.onPass
		r.applied = gen
		close(r.passed)
		r.passed = make(chan struct{})
		r.mu.Unlock()
		if f != nil {
			f(before, after)
		}
		if err != nil {
			r.logf("reconcile: %v", err)
			backoff = min(max(backoff*2, time.Second), Resync)
		} else {
			backoff = 0
		}
	}
}

// Teardown removes everything Gate made.
func (r *Reconciler) Teardown() {
	if err := r.pass(Desired{}); err != nil {
		r.logf("teardown: %v", err)
	}
	r.k.Links.Close()
	r.k.Firewall.Close()
}

// pass makes the kernel match d once. Order matters: the firewall first (so
// a new interface is never unguarded), then devices and their addresses
// and routes, then forwarding (only once the rules that limit it exist);
// removal runs in the opposite order.
func (r *Reconciler) pass(d Desired) error {
	r.passMu.Lock()
	defer r.passMu.Unlock()
	var errs []error
	st := Status{Networks: map[string]NetworkStatus{}, Interfaces: map[string]error{}, At: time.Now()}

	wanted := map[string]bool{}
	for _, n := range d.Networks {
		wanted[n.ID] = true
	}
	// Devices no longer wanted go first, so their ports and names are free.
	for id, dev := range r.devices {
		if wanted[id] {
			continue
		}
		if err := r.k.Links.RemoveRoutes(dev.Name()); err != nil {
			errs = append(errs, fmt.Errorf("network %s: %w", id, err))
		}
		if err := dev.Close(); err != nil {
			errs = append(errs, fmt.Errorf("network %s: closing %s: %w", id, dev.Name(), err))
		}
		delete(r.devices, id)
		r.logf("removed interface %s of network %s", dev.Name(), id)
	}

	// NICs before the firewall: a gateway's WAN is the NIC with the
	// default route, which DHCP or a static setting puts there.
	errs = append(errs, r.applyInterfaces(d, &st))

	gateway := slices.ContainsFunc(d.Networks, func(n Network) bool { return n.Gateway != nil })
	fwErr := r.applyFirewall(d, &st)
	if fwErr != nil {
		errs = append(errs, fwErr)
	}
	if !gateway {
		errs = append(errs, r.setForwarding(false, &st))
	}
	for _, n := range d.Networks {
		err := r.applyNetwork(n)
		st.Networks[n.ID] = NetworkStatus{Err: err}
		if err != nil {
			errs = append(errs, fmt.Errorf("network %s: %w", n.ID, err))
		}
	}
	// Forwarding goes on only over the rules that limit it: when they
	// could not be applied it stays as it is (on, over the previous
	// table, if it was on) and the next pass tries again.
	if gateway && fwErr == nil {
		errs = append(errs, r.setForwarding(true, &st))
	} else if gateway {
		st.Forwarding = r.fwdPrev != nil
	}
	st.Err = errors.Join(errs...)
	r.mu.Lock()
	r.status = st
	r.shown = maps.Clone(r.devices)
	r.mu.Unlock()
	return st.Err
}

func (r *Reconciler) applyNetwork(n Network) error {
	dev := r.devices[n.ID]
	if dev == nil {
		var err error
		dev, err = r.k.Devices.New(n.Iface, n.MTU)
		if err != nil {
			return fmt.Errorf("creating %s: %w", n.Iface, err)
		}
		r.devices[n.ID] = dev
		r.logf("created interface %s for network %s", n.Iface, n.ID)
	}
	// Peers the device leaves out (a *tunnel.PeerError) are reported, and
	// the rest of the network is still applied: one bad peer must not hold
	// back every address and route.
	err := dev.Configure(tunnel.Config{PrivateKey: n.PrivateKey, ListenPort: n.ListenPort, Peers: n.Peers})
	var pe *tunnel.PeerError
	if err != nil && !errors.As(err, &pe) {
		return fmt.Errorf("configuring %s: %w", n.Iface, err)
	}
	return errors.Join(err, r.k.Links.Sync(netcfg.LinkConfig{Name: n.Iface, MTU: n.MTU, Addrs: n.Addrs, Routes: n.Routes}))
}

func (r *Reconciler) applyFirewall(d Desired, st *Status) error {
	rs := firewall.Ruleset{Strict: d.Strict, AllowTCP: d.AllowTCP}
	for _, n := range d.Networks {
		if n.ListenPort != 0 {
			rs.AllowUDP = append(rs.AllowUDP, uint16(n.ListenPort))
		}
		o := firewall.Overlay{Iface: n.Iface, Prefixes: n.Prefixes, Policy: n.Policy, HealthPort: n.HealthPort}
		for _, a := range n.Addrs {
			o.Addrs = append(o.Addrs, a.Addr())
		}
		if g := n.Gateway; g != nil {
			wan, err := r.k.Links.LinkByDefaultRoute()
			if err != nil {
				return fmt.Errorf("finding the default-route interface: %w", err)
			}
			lan := g.LAN
			if lan == "" {
				lan = wan
			}
			if lan == "" {
				return fmt.Errorf("network %s: gateway has no LAN interface: name one, or give the node a default route", n.ID)
			}
			o.Gateway = &firewall.Gateway{Serve: g.Serve, LAN: lan, WAN: wan, MasqueradeLAN: g.MasqueradeLAN, MasqueradeInternet: g.MasqueradeInternet}
		}
		rs.Overlays = append(rs.Overlays, o)
	}
	if !d.Strict && len(rs.Overlays) == 0 {
		st.Firewall = "none"
		if !r.ownsNFT {
			return nil
		}
		r.ruleset = nil
		if err := r.k.Firewall.Remove(); err != nil {
			return fmt.Errorf("removing firewall: %w", err)
		}
		r.ownsNFT = false
		return nil
	}
	if r.ruleset == nil || !reflect.DeepEqual(*r.ruleset, rs) {
		r.ruleset = nil
		if err := r.k.Firewall.Apply(rs); err != nil {
			return fmt.Errorf("firewall: %w", err)
		}
		r.ruleset = &rs
	}
	r.ownsNFT = true
	st.Firewall = "guard"
	if d.Strict {
		st.Firewall = "strict"
	}
	return nil
}

// applyInterfaces makes the managed NICs match d: addresses, the default
// route (protocol netcfg.RouteProtocol, so that it is told apart from
// routes others made) and resolv.conf. A NIC that left d loses what Gate
// gave it; one that vanished from the machine is forgotten.
// observeNICs records the managed NICs as the kernel has them after the
// pass, and the WAN. A NIC that cannot be read is left out (its error is
// in st.Interfaces when the pass could not sync it either).
func (r *Reconciler) observeNICs(d Desired, st *Status) {
	st.NICs = make(map[string]NIC, len(d.Interfaces))
	for _, nic := range d.Interfaces {
		lc, err := r.k.Links.Observe(nic.Name)
		if err != nil {
			continue
		}
		n := NIC{Addrs: lc.Addrs}
		for _, rt := range lc.Routes {
			if rt.Dst.Bits() == 0 && rt.Dst.Addr().Is4() {
				n.DefaultRoute, n.Gateway = true, rt.Via
			}
		}
		st.NICs[nic.Name] = n
	}
	st.WAN, _ = r.k.Links.LinkByDefaultRoute()
}

func (r *Reconciler) applyInterfaces(d Desired, st *Status) error {
	var errs []error
	wanted := map[string]bool{}
	for _, nic := range d.Interfaces {
		wanted[nic.Name] = true
		lc := netcfg.LinkConfig{Name: nic.Name, MTU: nic.MTU, Addrs: nic.Addrs, IPv4Only: true}
		if nic.Gateway.IsValid() {
			lc.Routes = []netcfg.Route{{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Via: nic.Gateway, Metric: nic.Metric}}
		}
		err := r.k.Links.Sync(lc)
		if err != nil {
			err = fmt.Errorf("interface %s: %w", nic.Name, err)
			errs = append(errs, err)
		}
		st.Interfaces[nic.Name] = err
		if !r.nics[nic.Name] {
			r.logf("managing interface %s", nic.Name)
		}
		r.nics[nic.Name] = true
	}
	for name := range r.nics {
		if wanted[name] {
			continue
		}
		err := r.k.Links.Sync(netcfg.LinkConfig{Name: name, IPv4Only: true})
		var nf *LinkNotFoundError
		if err != nil && !errors.As(err, &nf) {
			errs = append(errs, fmt.Errorf("interface %s: removing Gate's addresses and routes: %w", name, err))
			continue
		}
		delete(r.nics, name)
		r.logf("released interface %s", name)
	}
	if len(d.Interfaces) > 0 {
		r.observeNICs(d, st)
	}
	if d.Resolv != nil && d.ResolvConf != "" {
		wrote, err := r.k.Files.WriteResolvConf(d.ResolvConf, *d.Resolv)
		if err != nil {
			errs = append(errs, fmt.Errorf("resolv.conf: %w", err))
		} else if wrote {
			r.logf("wrote %s: nameservers %v, search %v", d.ResolvConf, d.Resolv.Servers, d.Resolv.Search)
		}
	}
	return errors.Join(errs...)
}
