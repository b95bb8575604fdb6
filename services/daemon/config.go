package daemon

// The node's configuration document (services/nodeconfig), read from its
// layers and applied: image defaults < preseed < cloud metadata <
// user-data < console/CLI (the state directory) < kernel command line.
//
// The cloud's layers come from services/cloud, only when the daemon is
// told to look (Options.Cloud; the appliance says auto). A source is
// detected once per start, its user-data parsed, all layers merged and the
// whole validated. A valid document is applied: static NIC settings (the
// NIC manager reloads), the hostname (appliance only), a controller run
// in this process, and the networks joined through the same agent Join
// the local API uses. An invalid one is rejected whole: nothing of it is
// applied, the cloud layers accepted last time stay in force (they are
// kept in the state directory, so a reboot keeps them too), and the errors
// and warnings go to the log and to the status.
//
// Joins are actions, not state: the networks of user-data are joined once
// per instance and user-data (cloud.CheckInstance / MarkApplied), so that
// a reboot never spends a single-use token twice nor joins again a network
// an operator left; a new instance (an image or snapshot launched again)
// or edited user-data is a new first boot. The preseed's networks keep
// their own once-per-document record (preseed.go).
//
// The controller runs in-process rather than as a supervised child: it is
// a pure Go package that touches no kernel state, PID 1 already restarts
// `gate up` with backoff, and in-process the daemon knows its port at once
// (to open it in the strict firewall) and its pin (to join its own
// networks by bare ID) without a second supervision and IPC protocol. Its
// state lives in the daemon's state directory (controller/).

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/gatenet/gate/services/cloud"
	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/controller"
	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/nodeconfig"
)

// Cloud modes: where `gate up --cloud` looks for user-data and metadata.
const (
	CloudOff          = "off"          // nowhere (an ordinary host, unless told)
	CloudAuto         = "auto"         // a NoCloud seed, then the metadata service (the appliance)
	CloudNoCloud      = "nocloud"      // a NoCloud seed only
	CloudDigitalOcean = "digitalocean" // DigitalOcean's metadata service only
	CloudAWS          = "aws"          // AWS IMDSv2 only
)

// State directory files of this file.
const (
	// cloudAcceptedFile holds the cloud inputs of the last valid document,
	// so that the next start applies them before (and whether or not) the
	// source answers.
	cloudAcceptedFile = "cloud-accepted.json"
	// networksDone records the digest of networks joined from the console
	// or the kernel command line, once each.
	networksDone = "networks.applied"
	// hostnameFile is read by PID 1 at boot (appliance/pid1).
	hostnameFile = "hostname"
	// controllerDir is the state of a controller run here.
	controllerDir = "controller"
)

// How long the appliance waits for a route to the metadata service (its
// NIC's DHCP lease) before it decides there is none.
const metadataRouteWait = 30 * time.Second

// A metadata service that fails to answer (cloud.Result.Unavailable), or,
// when the configuration names the cloud, is not there yet, is asked
// again, by default with waits from 1 s doubling to 15 s, for 2 minutes in
// all (cloud-init waits 120 s for EC2's); then the last answer stands.
// Nothing listening at all is not retried: that is a machine outside a
// cloud. Options.MetadataRetry changes the schedule.
const (
	metadataRetryMin = time.Second
	metadataRetryMax = 15 * time.Second
	metadataRetryFor = 2 * time.Minute
)

// acceptedCloud is what the last valid document took from the cloud.
type acceptedCloud struct {
	Kind          cloud.Kind                      `json:"kind"`
	Where         string                          `json:"where"`
	InstanceID    string                          `json:"instance_id"`
	Hostname      string                          `json:"hostname,omitempty"`
	NetworkConfig map[string]nodeconfig.Interface `json:"network_config,omitempty"`
	UserData      []byte                          `json:"user_data,omitempty"` // may hold a join token: the file is 0600
}

func (a *acceptedCloud) result() *cloud.Result {
	return &cloud.Result{Kind: a.Kind, Where: a.Where, InstanceID: a.InstanceID, Hostname: a.Hostname, NetworkConfig: a.NetworkConfig, UserData: a.UserData}
}

func accept(r *cloud.Result) *acceptedCloud {
	return &acceptedCloud{Kind: r.Kind, Where: r.Where, InstanceID: r.InstanceID, Hostname: r.Hostname, NetworkConfig: r.NetworkConfig, UserData: r.UserData}
}

// configState is the daemon's view of its configuration document.
type configState struct {
	mu       sync.Mutex
	status   localapi.ConfigStatus
	accepted *acceptedCloud // cloud inputs in force; nil: none
	ctl      *localController
}

// localController is a controller running in this process.
type localController struct {
	want    nodeconfig.Controller
	port    uint16
	address string // gate://HOST:PORT?pin=... members (and this node) dial
	cancel  context.CancelFunc
	done    chan struct{}
}

// loadConfigState reads the cloud inputs accepted last time (when the
// daemon looks at clouds at all).
func (d *Daemon) loadConfigState() *configState {
	c := &configState{status: localapi.ConfigStatus{State: localapi.ConfigPending, Source: "none"}}
	if d.cloudMode() == CloudOff {
		c.status.Source = "none (cloud detection off)"
		return c
	}
	var a acceptedCloud
	if ok, err := d.state.LoadJSON(cloudAcceptedFile, &a); err != nil {
		d.opt.Logf("config: %v (ignored)", err)
	} else if ok {
		c.accepted = &a
		c.status.InstanceID = a.InstanceID
	}
	return c
}

func (d *Daemon) cloudMode() string { return cmp.Or(d.opt.Cloud, CloudOff) }

// CheckCloudMode says whether s is a --cloud value.
func CheckCloudMode(s string) error {
	switch s {
	case "", CloudOff, CloudAuto, CloudNoCloud, CloudDigitalOcean, CloudAWS:
		return nil
	}
	return fmt.Errorf("cloud %q: want auto, nocloud, digitalocean, aws or off", s)
}

// cloudLayers parses the layers of a cloud result: the metadata's and
// the user-data's. Notes are what was ignored.
func cloudLayers(r *cloud.Result) (layers []*nodeconfig.Layer, notes []string, err error) {
	if l := r.MetadataLayer(); l != nil {
		layers = append(layers, l)
	}
	ud, err := r.ParseUserData()
	if err != nil {
		return nil, nil, err
	}
	notes = append(notes, ud.Notes...)
	if ud.Layer != nil {
		layers = append(layers, ud.Layer)
	}
	return layers, notes, nil
}

// provenance says, for the local API, where each effective value came
// from.
func provenance(eff *nodeconfig.Effective) []string {
	var out []string
	for _, p := range eff.Provenance() {
		out = append(out, p.Path+": "+p.Name)
	}
	return out
}

// refreshProvenance recomputes where each effective value comes from after
// a layer changed (a NIC setting from the console or the CLI, applied or
// reverted), so that gate status never shows what was true at start.
func (d *Daemon) refreshProvenance() {
	base, err := d.baseLayers()
	if err != nil {
		return // the kernel command line: as at start, and said then
	}
	eff, err := nodeconfig.Merge(append(base, d.acceptedLayers()...)...)
	if err != nil {
		return // the change was checked whole before it was applied
	}
	d.conf.mu.Lock()
	d.conf.status.Provenance = provenance(eff)
	d.conf.mu.Unlock()
	d.bump()
}

// acceptedLayers are the cloud layers in force (none when they no longer
// parse, which a newer gate could cause: then they are dropped, logged).
func (d *Daemon) acceptedLayers() []*nodeconfig.Layer {
	d.conf.mu.Lock()
	a := d.conf.accepted
	d.conf.mu.Unlock()
	if a == nil {
		return nil
	}
	ls, _, err := cloudLayers(a.result())
	if err != nil {
		d.opt.Logf("config: the user-data accepted before no longer parses, ignored: %v", err)
		return nil
	}
	return ls
}

// baseLayers are the layers that are not the cloud's: the preseed, the
// state directory's settings, the kernel command line.
func (d *Daemon) baseLayers() ([]*nodeconfig.Layer, error) {
	var out []*nodeconfig.Layer
	if d.preseed != nil {
		p := *d.preseed
		p.Name, _, _ = strings.Cut(p.Name, "@") // loadPreseed adds the digest
		out = append(out, &p)
	}
	var local map[string]nodeconfig.Interface
	if _, err := d.state.LoadJSON(InterfacesFile, &local); err != nil {
		d.opt.Logf("NIC settings: %v (ignored)", err)
	} else if len(local) > 0 {
		out = append(out, nodeconfig.NewLayer(nodeconfig.SourceLocal, InterfacesFile, &nodeconfig.Config{Interfaces: local}))
	}
	if strings.Contains(d.opt.Cmdline, "gate.") {
		l, err := nodeconfig.ParseCmdline(d.opt.Cmdline)
		if err != nil {
			return out, err
		}
		out = append(out, l)
	}
	return out, nil
}

// lowerNICs is the NIC settings below the console's, as one layer: the
// preseed's and those of the cloud layers in force. nicConfig puts the
// state directory's and the kernel command line's over it.
func (d *Daemon) lowerNICs() *nodeconfig.Layer {
	var layers []*nodeconfig.Layer
	if d.preseed != nil {
		layers = append(layers, d.preseed)
	}
	if d.conf != nil {
		layers = append(layers, d.acceptedLayers()...)
	}
	if len(layers) == 0 {
		return nil
	}
	var nicOnly []*nodeconfig.Layer
	for _, l := range layers {
		nicOnly = append(nicOnly, nodeconfig.NewLayer(l.Source, l.Name, &nodeconfig.Config{Interfaces: l.Config.Interfaces, WAN: l.Config.WAN}))
	}
	e, err := nodeconfig.Merge(nicOnly...)
	if err != nil {
		d.opt.Logf("NIC settings of the preseed and cloud: %v (using the preseed's only)", err)
		if d.preseed == nil {
			return nil
		}
		return nicOnly[0]
	}
	return nodeconfig.NewLayer(nodeconfig.SourcePreseed, "preseed and cloud", &nodeconfig.Config{Interfaces: e.Config.Interfaces, WAN: e.Config.WAN})
}

// configure reads the sources, merges and validates the document, and
// applies it (or keeps the last good one). It runs once per start, beside
// the agent.
func (d *Daemon) configure(ctx context.Context) {
	c := d.conf
	mode := d.cloudMode()
	st := localapi.ConfigStatus{Source: c.status.Source}
	var errs []string
	var warns []string
	var fresh *cloud.Result // a newly detected source, to accept if valid
	var newLayers []*nodeconfig.Layer
	boot := cloud.Boot{}

	if mode != CloudOff {
		r, err := d.detect(ctx, mode)
		if ctx.Err() != nil {
			return
		}
		st.Source = describeSource(r)
		st.InstanceID = r.InstanceID
		warns = append(warns, r.Notes...)
		switch {
		case err != nil:
			errs = append(errs, err.Error())
		case r.Kind == cloud.None:
			if a := c.accepted; a != nil {
				st.Source = fmt.Sprintf("none now; keeping the user-data accepted from %s instance %s", a.Kind, a.InstanceID)
				st.InstanceID = a.InstanceID
			}
		default:
			if boot, err = cloud.CheckInstance(d.state, r); err != nil {
				d.opt.Logf("config: %v", err)
			}
			st.FirstBoot = boot.First
			ls, notes, err := cloudLayers(r)
			warns = append(warns, notes...)
			if err != nil {
				errs, warns = appendIssues(errs, warns, err)
			} else {
				fresh, newLayers = r, ls
			}
		}
	}

	base, err := d.baseLayers()
	if err != nil {
		errs, warns = appendIssues(errs, warns, err)
	}
	var eff *nodeconfig.Effective
	if len(errs) == 0 {
		cloudLs := newLayers
		if fresh == nil {
			cloudLs = d.acceptedLayers()
		}
		eff, err = nodeconfig.Merge(append(base, cloudLs...)...)
		if err != nil {
			errs, warns = appendIssues(errs, warns, err)
			eff = nil
		} else {
			warns = append(warns, issueStrings(eff.Warnings)...)
		}
	}
	st.State = localapi.ConfigApplied
	if eff == nil {
		// Rejected: what stays in force is the last good document.
		st.State = localapi.ConfigRejected
		fresh = nil
		eff, err = nodeconfig.Merge(append(base, d.acceptedLayers()...)...)
		if err != nil {
			d.opt.Logf("config: the last good configuration is no longer valid either: %v", err)
			eff, _ = nodeconfig.Merge()
		}
	}
	st.Checked = time.Now().UTC()
	st.Provenance = provenance(eff)
	st.Errors, st.Warnings = errs, warns
	c.mu.Lock()
	if fresh != nil {
		c.accepted = accept(fresh)
	}
	c.status = st
	c.mu.Unlock()
	d.logConfig(st)
	if fresh != nil {
		if err := d.state.SaveJSON(cloudAcceptedFile, accept(fresh)); err != nil {
			d.opt.Logf("config: %v", err)
		}
	}
	d.bump()

	// Apply what is in force: idempotent, on every start.
	if d.nics != nil && fresh != nil {
		d.nics.Reload(d.nicSettings())
	}
	d.applyHostname(eff.Config.Hostname)
	d.runController(ctx, eff.Config.Controller)
	d.joinNetworks(ctx, eff, fresh, boot)
}

// detect finds the cloud source for mode. Local sources (a NoCloud seed)
// are looked at at once; the metadata service only once there is a route
// to it (on the appliance, the NIC's DHCP lease), so that an absent one
// costs one short connect timeout.
func (d *Daemon) detect(ctx context.Context, mode string) (*cloud.Result, error) {
	det := cloud.Detector{Cmdline: d.opt.Cmdline, Logf: d.opt.Logf}
	if mode == CloudAuto || mode == CloudNoCloud {
		r, err := det.Detect(ctx)
		if err != nil || r.Kind != cloud.None || mode == CloudNoCloud {
			return r, err
		}
	}
	det.Metadata, det.SysBlock = true, "-"
	if d.opt.ManageNICs {
		d.waitMetadataRoute(ctx, metadataRouteWait)
	}
	want := map[string]cloud.Kind{CloudDigitalOcean: cloud.DigitalOcean, CloudAWS: cloud.AWS}[mode]
	retry := d.opt.MetadataRetry
	if retry == (Retry{}) {
		retry = Retry{Min: metadataRetryMin, Max: metadataRetryMax, For: metadataRetryFor}
	}
	deadline := time.Now().Add(retry.For)
	wait := retry.Min
	for {
		r, err := det.Detect(ctx)
		// Retried: a service that fails to answer, and, when the
		// configuration names the cloud, finding none. A service that
		// answers but is no cloud Gate knows (OpenStack's, say) is not:
		// auto finds none. Neither is finding something else (a ds= on
		// the kernel command line): that will not change.
		again := r.Unavailable || (want != "" && r.Kind == cloud.None)
		if err == nil && want != "" && r.Kind != want {
			err = fmt.Errorf("cloud %s: no %s metadata service at %s (found %s)", mode, want, cloud.MetadataURL, r.Kind)
		}
		if !again || ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return r, err
		}
		why := "it fails to answer"
		if err != nil {
			why = err.Error()
		}
		d.opt.Logf("config: metadata service: %s; asking again in %v", why, wait)
		select {
		case <-ctx.Done():
			return r, err
		case <-time.After(wait):
		}
		wait = min(2*wait, retry.Max)
	}
}

// waitMetadataRoute waits until the kernel has a route to the metadata
// service, or at most max, or until every NIC has its settings and none
// gives a default route (none will come).
func (d *Daemon) waitMetadataRoute(ctx context.Context, max time.Duration) {
	deadline := time.Now().Add(max)
	ip := net.ParseIP("169.254.169.254")
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if rs, err := netlink.RouteGet(ip); err == nil && len(rs) > 0 {
			return
		}
		if why, none := d.nics.NoDefaultRoute(); none {
			d.opt.Logf("config: no NIC has a default route (%s): no metadata service to wait for", why)
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	d.opt.Logf("config: no route to the metadata service after %v", max)
}

func describeSource(r *cloud.Result) string {
	if r == nil || r.Kind == cloud.None {
		return "none"
	}
	if r.Where == "" {
		return string(r.Kind)
	}
	return string(r.Kind) + ": " + r.Where
}

// appendIssues adds an error's issues (a *nodeconfig.Error's one by one,
// with their paths, layers and lines) to errs and warns.
func appendIssues(errs, warns []string, err error) ([]string, []string) {
	var ne *nodeconfig.Error
	if errors.As(err, &ne) {
		// A layer's own parse errors name no layer: it is ne.Source.
		origin := func(is []nodeconfig.Issue) []nodeconfig.Issue {
			out := slices.Clone(is)
			for i := range out {
				if out[i].Origin == "" && ne.Source != "configuration" {
					out[i].Origin = ne.Source
				}
			}
			return out
		}
		return append(errs, issueStrings(origin(ne.Errors))...), append(warns, issueStrings(origin(ne.Warnings))...)
	}
	return append(errs, err.Error()), warns
}

func issueStrings(is []nodeconfig.Issue) []string {
	var out []string
	for _, i := range is {
		out = append(out, i.String())
	}
	return out
}

func (d *Daemon) logConfig(st localapi.ConfigStatus) {
	if d.cloudMode() == CloudOff && d.preseed == nil && len(st.Errors)+len(st.Warnings) == 0 {
		return // an ordinary host with nothing to say
	}
	what := "applied"
	if st.State == localapi.ConfigRejected {
		what = "REJECTED, the last good configuration stays in force"
	}
	inst := ""
	if st.InstanceID != "" {
		inst = fmt.Sprintf(", instance %s", st.InstanceID)
		if st.FirstBoot {
			inst += " (first boot)"
		}
	}
	d.opt.Logf("config from %s%s: %s (%d errors, %d warnings)", st.Source, inst, what, len(st.Errors), len(st.Warnings))
	for _, e := range st.Errors {
		d.opt.Logf("config error: %s", e)
	}
	for _, w := range st.Warnings {
		d.opt.Logf("config warning: %s", w)
	}
}

// configStatus is the status's Config.
func (d *Daemon) configStatus() *localapi.ConfigStatus {
	if d.conf == nil {
		return nil
	}
	d.conf.mu.Lock()
	defer d.conf.mu.Unlock()
	st := d.conf.status
	st.Errors, st.Warnings, st.Provenance = slices.Clone(st.Errors), slices.Clone(st.Warnings), slices.Clone(st.Provenance)
	return &st
}

// applyHostname sets the kernel's host name, on the appliance only (an
// ordinary host's name is its administrator's), and records it for PID 1
// to set at the next boot before anything starts. The controller learns
// a new name at the daemon's next start.
func (d *Daemon) applyHostname(name string) {
	if name == "" || !d.opt.ManageNICs {
		return
	}
	if cur, _ := os.Hostname(); cur == name {
		return
	}
	if err := unix.Sethostname([]byte(name)); err != nil {
		d.opt.Logf("config: setting the hostname %q: %v", name, err)
		return
	}
	if err := d.state.Write(hostnameFile, []byte(name+"\n")); err != nil {
		d.opt.Logf("config: %v", err)
	}
	d.opt.Logf("config: hostname %s", name)
}

// joinNetworks joins the effective document's networks, once: the
// preseed's once per preseed document, the cloud's once per instance and
// user-data, the console's and the kernel command line's once per list.
// A join the controller cannot be reached for yet is kept and retried by
// the agent; a refused one is logged.
func (d *Daemon) joinNetworks(ctx context.Context, eff *nodeconfig.Effective, fresh *cloud.Result, boot cloud.Boot) {
	origin, ok := eff.Origin("networks")
	markCloud := func() {
		if fresh != nil && fresh.InstanceID != "" && (boot.First || boot.UserDataChanged) && ctx.Err() == nil {
			if err := cloud.MarkApplied(d.state, fresh, time.Now()); err != nil {
				d.opt.Logf("config: %v", err)
			}
		}
	}
	if !ok {
		markCloud()
		return
	}
	switch origin.Source {
	case nodeconfig.SourcePreseed:
		d.applyPreseed(ctx)
	case nodeconfig.SourceMetadata, nodeconfig.SourceUserData:
		if fresh == nil || !(boot.First || boot.UserDataChanged) {
			return // joined when this instance's user-data was applied
		}
		if boot.UserDataChanged {
			d.opt.Logf("config: the user-data of instance %s changed since it was applied; applying it", fresh.InstanceID)
		}
		d.join(ctx, origin.Name, eff.Config.Networks, fresh.InstanceID)
	default:
		sum := sha256.Sum256(nodeconfig.Format(&nodeconfig.Config{Networks: eff.Config.Networks}))
		key := hex.EncodeToString(sum[:])
		if b, err := d.state.Read(networksDone); err == nil && strings.TrimSpace(string(b)) == key {
			break
		}
		d.join(ctx, origin.Name, eff.Config.Networks, "")
		if ctx.Err() == nil {
			if err := d.state.Write(networksDone, []byte(key+"\n")); err != nil {
				d.opt.Logf("config: %v", err)
			}
		}
	}
	markCloud()
}

// join joins nets; instance is the cloud instance whose user-data asked
// for them ("" otherwise), which the controller records with the token.
func (d *Daemon) join(ctx context.Context, from string, nets []nodeconfig.Network, instance string) {
	for _, n := range nets {
		req, err := n.JoinRequest()
		if err != nil {
			d.opt.Logf("%s: %v", from, err)
			continue
		}
		req.InstanceID = instance
		if req.Controller == "" && control.CheckNetworkID(req.Join) == nil {
			// A bare network ID without a controller: this node's own.
			if a := d.localControllerAddress(); a != "" {
				req.Controller = a
			}
		}
		got, err := d.Join(ctx, req)
		if err != nil {
			d.opt.Logf("%s: joining %s: %v", from, n.NetworkID(), err)
			continue
		}
		d.opt.Logf("%s: joined %s: %s", from, got.ID, got.Status)
	}
}

// allowTCP is the strict firewall's open input ports: the operator's, and
// the controller's when one runs here.
func (d *Daemon) allowTCP() []uint16 {
	if d.conf == nil {
		return d.opt.AllowTCP
	}
	d.conf.mu.Lock()
	ctl := d.conf.ctl
	d.conf.mu.Unlock()
	if ctl == nil || slices.Contains(d.opt.AllowTCP, ctl.port) {
		return d.opt.AllowTCP
	}
	return append(slices.Clone(d.opt.AllowTCP), ctl.port)
}

// stopController stops a controller run here and waits until it has
// closed its database.
func (d *Daemon) stopController() {
	d.conf.mu.Lock()
	ctl := d.conf.ctl
	d.conf.ctl = nil
	d.conf.mu.Unlock()
	if ctl != nil {
		ctl.cancel()
		<-ctl.done
	}
}

func (d *Daemon) localControllerAddress() string {
	d.conf.mu.Lock()
	defer d.conf.mu.Unlock()
	if d.conf.ctl == nil {
		return ""
	}
	return d.conf.ctl.address
}

// runController starts, restarts or stops the controller run here so that
// it matches want (nil: none).
func (d *Daemon) runController(ctx context.Context, want *nodeconfig.Controller) {
	d.conf.mu.Lock()
	cur := d.conf.ctl
	d.conf.mu.Unlock()
	if cur != nil && want != nil && reflect.DeepEqual(cur.want, *want) {
		return
	}
	if cur != nil {
		cur.cancel()
		<-cur.done
		d.conf.mu.Lock()
		d.conf.ctl = nil
		d.conf.mu.Unlock()
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
	srv, err := controller.New(controller.Config{
		StateDir:  d.state.File(controllerDir),
		Listen:    want.Listen,
		Advertise: advertise,
		Logf:      func(f string, a ...any) { d.opt.Logf("controller: "+f, a...) },
	})
	if err != nil {
		d.opt.Logf("controller: %v", err)
		return
	}
	cctx, cancel := context.WithCancel(ctx)
	lc := &localController{want: *want, port: uint16(port), cancel: cancel, done: make(chan struct{}),
		address: control.JoinString{Controller: advertise, Pin: srv.Pin()}.ControllerAddress()}
	d.conf.mu.Lock()
	d.conf.ctl = lc
	d.conf.mu.Unlock()
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
	d.opt.Logf("controller running here: listening on %s, members dial %s (admin token in %s)", want.Listen, lc.address,
		filepath.Join(d.state.File(controllerDir), "admin-token"))
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
