package daemon

// A controller run in this process, when the configuration document asks
// for one (controller: listen ...). It runs in-process rather than as a
// supervised child: it is a pure Go package that touches no kernel state,
// PID 1 already restarts `gate up` with backoff, and in-process the daemon
// knows its port at once (to open it in the strict firewall) and its pin
// (to join its own networks by bare ID) without a second supervision and
// IPC protocol. Its state lives in the daemon's state directory
// (controller/): its key, its admin token and, unless the document names
// a PostgreSQL database (controller.db), its SQLite database.

import (
	"cmp"
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/controller"
	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/nodeconfig"
)

// controllerDir is the state of a controller run here.
const controllerDir = "controller"

// localController is a controller running in this process.
type localController struct {
	want    nodeconfig.Controller
	port    uint16
	address string // gate://HOST:PORT?pin=... members (and this node) dial
	cancel  context.CancelFunc
	done    chan struct{}
}

// allowTCP is the strict firewall's open input ports: the operator's, the
// controller's when one runs here, and those held open by a controller
// beside this daemon (HoldPort).
func (d *Daemon) allowTCP() []uint16 {
	var out []uint16
	for _, p := range d.inputOpen() {
		if !slices.Contains(out, p.Port) {
			out = append(out, p.Port)
		}
	}
	return out
}

// inputOpen is each port the strict firewall opens, and why.
func (d *Daemon) inputOpen() []localapi.OpenPort {
	var out []localapi.OpenPort
	for _, p := range d.opt.AllowTCP {
		out = append(out, localapi.OpenPort{Proto: "tcp", Port: p, Why: "--allow-input"})
	}
	d.ctlMu.Lock()
	defer d.ctlMu.Unlock()
	if d.ctl != nil {
		out = append(out, localapi.OpenPort{Proto: "tcp", Port: d.ctl.port, Why: "the controller run by this daemon"})
		if w := d.ctl.want.Web; w != nil && !w.Loopback() {
			_, p, _ := net.SplitHostPort(w.Listen)
			port, _ := strconv.ParseUint(p, 10, 16)
			out = append(out, localapi.OpenPort{Proto: "tcp", Port: uint16(port), Why: "the web console of the controller run by this daemon"})
		}
	}
	for h := range d.held {
		out = append(out, localapi.OpenPort{Proto: "tcp", Port: h.Port, Why: "the controller beside this daemon (gate controller)"})
	}
	slices.SortFunc(out, func(a, b localapi.OpenPort) int { return cmp.Compare(a.Port, b.Port) })
	return out
}

// HoldPort implements localapi.PortsBackend: a controller run beside this
// daemon holds its port open in the strict firewall while it runs.
func (d *Daemon) HoldPort(r localapi.HoldRequest) (func(), error) {
	d.ctlMu.Lock()
	if d.held == nil {
		d.held = map[localapi.HoldRequest]int{}
	}
	first := d.held[r] == 0
	d.held[r]++
	d.ctlMu.Unlock()
	if first {
		d.opt.Logf("input tcp/%d open for the controller beside this daemon", r.Port)
		d.update()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			d.ctlMu.Lock()
			d.held[r]--
			last := d.held[r] == 0
			if last {
				delete(d.held, r)
			}
			d.ctlMu.Unlock()
			if last {
				d.opt.Logf("input tcp/%d closed: the controller beside this daemon is gone", r.Port)
				d.update()
			}
		})
	}, nil
}

// stopController stops a controller run here and waits until it has
// closed its database.
func (d *Daemon) stopController() {
	d.ctlMu.Lock()
	ctl := d.ctl
	d.ctl = nil
	d.ctlMu.Unlock()
	if ctl != nil {
		ctl.cancel()
		<-ctl.done
	}
}

func (d *Daemon) localControllerAddress() string {
	d.ctlMu.Lock()
	defer d.ctlMu.Unlock()
	if d.ctl == nil {
		return ""
	}
	return d.ctl.address
}

// runController starts, restarts or stops the controller run here so that
// it matches want (nil: none).
func (d *Daemon) runController(ctx context.Context, want *nodeconfig.Controller) {
	d.ctlMu.Lock()
	cur := d.ctl
	d.ctlMu.Unlock()
	if cur != nil && want != nil && reflect.DeepEqual(cur.want, *want) {
		return
	}
	if cur != nil {
		d.stopController()
		d.update()
	}
	if want == nil {
		return
	}
	_, portStr, _ := net.SplitHostPort(want.Listen)
	port, _ := strconv.ParseUint(portStr, 10, 16)
	advertise := want.Advertise
	if advertise == "" {
		host, _, _ := net.SplitHostPort(want.Listen)
		if a, err := netip.ParseAddr(host); err == nil && !a.IsUnspecified() {
			advertise = want.Listen
		} else if a := d.waitWANAddress(ctx, time.Minute); a.IsValid() {
			advertise = net.JoinHostPort(a.String(), portStr)
		} else {
			d.opt.Logf("controller: no address to advertise (no WAN address yet); set controller.advertise")
			return
		}
	}
	srv, err := d.newController(ctx, controller.Config{
		StateDir:  d.state.File(controllerDir),
		DB:        want.DB,
		Listen:    want.Listen,
		Advertise: advertise,
		Web:       webConfig(want.Web),
		Logf:      func(f string, a ...any) { d.opt.Logf("controller: "+f, a...) },
	})
	if err != nil {
		if ctx.Err() == nil {
			d.opt.Logf("controller: %v", err)
		}
		return
	}
	cctx, cancel := context.WithCancel(ctx)
	lc := &localController{want: *want, port: uint16(port), cancel: cancel, done: make(chan struct{}),
		address: control.JoinString{Controller: advertise, Pin: srv.Pin()}.ControllerAddress()}
	d.ctlMu.Lock()
	d.ctl = lc
	d.ctlMu.Unlock()
	// Open its port first: in the strict firewall nothing else could
	// reach it.
	d.update()
	go func() {
		defer close(lc.done)
		defer srv.Close()
		if err := srv.Serve(cctx); err != nil && cctx.Err() == nil {
			d.opt.Logf("controller: %v", err)
		}
	}()
	db := "SQLite in " + d.state.File(controllerDir)
	if want.DB != "" {
		db = nodeconfig.RedactDB(want.DB)
	}
	d.opt.Logf("controller running here: listening on %s, members dial %s, database %s (admin token in %s)", want.Listen, lc.address,
		db, filepath.Join(d.state.File(controllerDir), "admin-token"))
}

// dbRetryFor is how long a controller on PostgreSQL is tried again when
// its database does not answer: at boot the route to it, or the server
// itself, may not be up yet.
const dbRetryFor = 2 * time.Minute

// newController makes the controller run here. One on PostgreSQL is
// tried again, waiting from 1 s doubling to 15 s, for dbRetryFor, each
// failure logged (the controller's errors name the database without its
// password); one on SQLite in the state directory fails at once.
func (d *Daemon) newController(ctx context.Context, cfg controller.Config) (*controller.Server, error) {
	deadline := time.Now().Add(dbRetryFor)
	for wait := time.Second; ; wait = min(2*wait, 15*time.Second) {
		srv, err := controller.New(cfg)
		if err == nil || cfg.DB == "" || time.Now().Add(wait).After(deadline) {
			return srv, err
		}
		d.opt.Logf("controller: %v; trying again in %v", err, wait)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// waitWANAddress returns the IPv4 address of the NIC with the default
// route, waiting for one at most max.
func (d *Daemon) waitWANAddress(ctx context.Context, max time.Duration) netip.Addr {
	deadline := time.Now().Add(max)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if st := d.rec.Status(); st.WAN != "" {
			for _, p := range st.NICs[st.WAN].Addrs {
				if p.Addr().Is4() {
					return p.Addr()
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	return netip.Addr{}
}

// webConfig is the controller's web console as the document asks for it.
func webConfig(w *nodeconfig.ControllerWeb) controller.WebConfig {
	if w == nil {
		return controller.WebConfig{}
	}
	return controller.WebConfig{Listen: w.Listen, CertFile: w.Cert, KeyFile: w.Key}
}
