// Package daemon is `gate up`: the node daemon that ties the memberships
// (services/agent), the kernel state (services/reconciler) and the local API
// (services/localapi) together. It makes the node's keys on first start,
// keeps them in the state directory (0600) and never sends a private key
// anywhere: the controller learns only public keys.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/gatenet/gate/services/agent"
	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/desired"
	"github.com/gatenet/gate/services/failover"
	"github.com/gatenet/gate/services/intent"
	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/logring"
	"github.com/gatenet/gate/services/netcfg"
	"github.com/gatenet/gate/services/nics"
	"github.com/gatenet/gate/services/reconciler"
	"github.com/gatenet/gate/services/state"
	"github.com/gatenet/gate/services/tunnel"
)

// Options configure the daemon.
type Options struct {
	StateDir string
	Socket   string
	Firewall string   // desired.FirewallAuto, desired.FirewallStrict or desired.FirewallGuard
	AllowTCP []uint16 // input ports open when the firewall is strict
	Hostname string
	Version  string
	Logf     func(format string, args ...any)
	// Log holds the daemon's recent log lines for the local API; the
	// caller makes Logf write to it too. Nil: a ring of its own, fed by
	// nothing.
	Log *logring.Ring

	// ManageNICs makes the daemon manage the machine's NICs (the
	// appliance; see services/nics): each physical NIC is brought up and
	// configured by DHCP unless static settings name it. Off (an ordinary
	// host), NICs are never touched.
	ManageNICs bool
	// NICs, with ManageNICs, limits management to these NICs; empty:
	// every physical NIC.
	NICs []string
	// ResolvConf, with ManageNICs, is where the NICs' DNS servers are
	// written; default /etc/resolv.conf.
	ResolvConf string
	// Preseed is the path of a preseed document (services/nodeconfig,
	// YAML or JSON; absent is fine): its interfaces are static NIC
	// settings (under those of the state directory), and its networks
	// are joined once.
	Preseed string
	// ConfirmTimeout is how long a change made on the machine (a NIC
	// setting) waits for confirmation before it reverts, when the request
	// does not say; 0 means localapi.DefaultConfirm.
	ConfirmTimeout time.Duration
	// Cmdline is the kernel command line, whose gate.iface.* and gate.wan
	// keys override NIC settings (recovery); "" for none.
	Cmdline string
	// Cloud says where to look for user-data and metadata
	// (services/intent): intent.CloudOff (""), CloudAuto, CloudNoCloud,
	// CloudDigitalOcean or CloudAWS.
	Cloud string
	// Devices are options for every WireGuard device the daemon makes
	// (tunnel.WithBuffers).
	Devices []tunnel.Option
	// MetadataRetry is how a metadata service that fails to answer is
	// asked again; zero: every second or so, for 2 minutes.
	MetadataRetry intent.Retry
}

// Daemon is a running node daemon.
type Daemon struct {
	opt     Options
	started time.Time
	id      control.Identity
	key     tunnel.Key
	agent   *agent.Agent
	rec     *reconciler.Reconciler
	nl      *netcfg.Handle // reads only: own addresses for endpoint reports

	nics   *nics.Manager  // nil unless ManageNICs
	intent *intent.Intent // the configuration document's layers (config.go)
	state  *state.Dir

	ctlMu sync.Mutex
	ctl   *localController // a controller run here (controller.go); nil: none
	// held are the ports other programs on this host hold open
	// (HoldPort), each with the number of holds.
	held map[localapi.HoldRequest]int

	mu     sync.Mutex
	picker *desired.Picker
	// fo picks the gateway of each route with several, and answers
	// members' questions when this node is one (services/failover).
	fo *failover.Service
	// updateMu makes updates one at a time, from reading the memberships
	// to handing the result to the reconciler: two at once could hand it
	// over in the wrong order, the older last (a failover undone).
	updateMu sync.Mutex
	notes    []string      // what desired last left out, logged when it changes
	rev      uint64        // state revision for watchers: memberships or kernel changed
	revCh    chan struct{} // closed when rev moves, then replaced
}

// Run runs the daemon until ctx is done, then removes the kernel state it
// made. The memberships stay on disk for the next start.
func Run(ctx context.Context, opt Options) error {
	d, err := New(opt)
	if err != nil {
		return err
	}
	return d.Run(ctx)
}

// New prepares a daemon: state, keys, reconciler and agent.
func New(opt Options) (*Daemon, error) {
	if opt.Logf == nil {
		opt.Logf = func(string, ...any) {}
	}
	switch opt.Firewall {
	case "":
		opt.Firewall = desired.FirewallAuto
	case desired.FirewallAuto, desired.FirewallStrict, desired.FirewallGuard:
	default:
		return nil, fmt.Errorf("firewall mode %q: want auto, strict or guard", opt.Firewall)
	}
	if opt.Hostname == "" {
		opt.Hostname, _ = os.Hostname()
	}
	st, err := state.Open(opt.StateDir)
	if err != nil {
		return nil, err
	}
	pemKey, err := st.LoadOrCreate("identity.key", func() ([]byte, error) {
		id, err := control.NewIdentity()
		if err != nil {
			return nil, err
		}
		return id.MarshalPEM()
	})
	if err != nil {
		return nil, err
	}
	id, err := control.ParseIdentityPEM(pemKey)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", st.File("identity.key"), err)
	}
	wgText, err := st.LoadOrCreate("wireguard.key", func() ([]byte, error) {
		k, err := tunnel.GeneratePrivateKey()
		if err != nil {
			return nil, err
		}
		return []byte(k.String() + "\n"), nil
	})
	if err != nil {
		return nil, err
	}
	key, err := tunnel.ParseKey(string(trimNL(wgText)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", st.File("wireguard.key"), err)
	}
	nl, err := netcfg.Open()
	if err != nil {
		return nil, err
	}
	rec, err := reconciler.New(opt.Logf, reconciler.WithState(st), reconciler.WithDeviceOptions(opt.Devices...))
	if err != nil {
		nl.Close()
		return nil, err
	}
	if opt.Log == nil {
		opt.Log = logring.New(1)
	}
	d := &Daemon{opt: opt, started: time.Now().UTC(), id: id, key: key, rec: rec, nl: nl, state: st, picker: desired.NewPicker(), rev: 1, revCh: make(chan struct{})}
	io := intent.Options{
		State: st, Preseed: opt.Preseed, Cmdline: opt.Cmdline, Cloud: opt.Cloud,
		MetadataRetry: opt.MetadataRetry, ConfirmTimeout: opt.ConfirmTimeout,
		Reachable: d.reachableSince, Publish: d.publish, Logf: opt.Logf,
	}
	if opt.ManageNICs {
		io.WaitMetadataRoute = func(ctx context.Context) { d.waitMetadataRoute(ctx, metadataRouteWait) }
	}
	d.intent = intent.New(io)
	if opt.ManageNICs {
		if d.opt.ResolvConf == "" {
			d.opt.ResolvConf = "/etc/resolv.conf"
		}
		d.nics = nics.New(nics.Options{Logf: opt.Logf, Only: opt.NICs, Hostname: opt.Hostname, Config: d.intent.NICs(), OnChange: func() { d.update() }})
	}
	d.agent, err = agent.New(agent.Config{
		State:     st,
		Identity:  id,
		PublicKey: key.Public().String(),
		Hostname:  opt.Hostname,
		Version:   opt.Version,
		Endpoints: d.endpoints,
		OnChange:  func() { d.update() },
		Logf:      opt.Logf,
	})
	if err != nil {
		nl.Close()
		return nil, err
	}
	d.fo = failover.New(func() { d.update() }, opt.Logf)
	d.fo.PointWith(pointAWS)
	rec.OnPass(func(before, after reconciler.Status) {
		// Conntrack may have picked up our control connections mid-stream
		// when the firewall turned strict; open new ones.
		if after.Firewall == "strict" && before.Firewall != "strict" {
			d.agent.Reconnect()
		}
		d.bump()
	})
	return d, nil
}

// Run serves until ctx is done.
func (d *Daemon) Run(ctx context.Context) error {
	ln, err := localapi.Listen(d.opt.Socket)
	if err != nil {
		return err
	}
	defer os.Remove(d.opt.Socket)
	d.opt.Logf("node %s (%s), WireGuard key %s, local API %s", d.id.NodeID(), d.opt.Version, d.key.Public(), d.opt.Socket)

	recDone := make(chan struct{})
	recCtx, stopRec := context.WithCancel(context.Background())
	go func() { defer close(recDone); d.rec.Run(recCtx) }()
	// Offline first: apply the last good configuration before the
	// controller has said anything.
	d.update()

	agentCtx, stopAgent := context.WithCancel(ctx)
	if d.nics != nil {
		if err := d.nics.Watch(agentCtx); err != nil {
			d.opt.Logf("managing NICs: %v", err)
		}
	}
	d.agent.Start(agentCtx)
	go d.watchEndpoints(agentCtx)
	go func() {
		if err := d.fo.Run(agentCtx); err != nil {
			d.opt.Logf("failover: %v", err)
		}
	}()
	go d.configure(agentCtx)

	err = localapi.Serve(ctx, ln, localapi.Handler(d))
	stopAgent()
	d.agent.Wait()
	if d.nics != nil {
		d.nics.StopAll() // no DHCP client outlives Run
	}
	d.stopController()
	stopRec()
	<-recDone
	d.nl.Close()
	d.opt.Logf("stopped; kernel state removed")
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// update recomputes the desired state from the memberships and returns its
// generation in the reconciler.
func (d *Daemon) update() uint64 {
	d.updateMu.Lock()
	defer d.updateMu.Unlock()
	ms := d.agent.Memberships()
	var ifs []reconciler.Interface
	var resolv *netcfg.Resolver
	if d.nics != nil {
		ifs, resolv = d.nics.Desired()
	}
	d.mu.Lock()
	d.fo.Set(failoverNetworks(ms))
	want, notes := desired.Compute(ms, d.key, d.opt.Firewall, d.allowTCP(), d.picker.Endpoint, d.fo.Active)
	var nicNotes []string
	want.Interfaces, nicNotes = desired.NICsApart(ifs, want.Networks)
	notes = append(notes, nicNotes...)
	logNotes := !slices.Equal(notes, d.notes)
	d.notes = notes
	d.mu.Unlock()
	if logNotes {
		for _, n := range notes {
			d.opt.Logf("%s", n)
		}
	}
	if d.nics != nil {
		want.Resolv, want.ResolvConf = resolv, d.opt.ResolvConf
	}
	gen := d.rec.Set(want)
	d.bump()
	return gen
}

// bump tells watchers that something changed.
func (d *Daemon) bump() {
	d.mu.Lock()
	d.rev++
	close(d.revCh)
	d.revCh = make(chan struct{})
	d.mu.Unlock()
}

// watchEndpoints tries a peer's next endpoint while it stays silent.
func (d *Daemon) watchEndpoints(ctx context.Context) {
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := d.rec.Status()
		changed := false
		d.mu.Lock()
		for _, m := range d.agent.Memberships() {
			if m.Config == nil {
				continue
			}
			ns := st.Networks[m.ID]
			hs := func(pub string) time.Time {
				if ns.Device == nil {
					return time.Time{}
				}
				for _, p := range ns.Device.Peers {
					if p.PublicKey.String() == pub {
						return p.LastHandshake
					}
				}
				return time.Time{}
			}
			if d.picker.Advance(m.Config.Peers, hs) {
				changed = true
			}
		}
		d.mu.Unlock()
		if changed {
			d.update()
		}
	}
}

// endpoints are the node's own addresses, outside Gate's interfaces, that
// peers may reach it on.
func (d *Daemon) endpoints() []netip.Addr {
	var skip []string
	for _, m := range d.agent.Memberships() {
		skip = append(skip, m.Iface)
	}
	addrs, err := d.nl.InterfaceAddrsExcept(skip...)
	if err != nil {
		d.opt.Logf("listing own addresses: %v", err)
		return nil
	}
	return slices.DeleteFunc(addrs, func(a netip.Addr) bool { return a.IsLinkLocalUnicast() || a.IsLoopback() })
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
