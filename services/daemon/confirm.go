package daemon

// Commit-confirm for changes made on the machine itself: a new NIC setting
// is applied at once, on probation. Unless the operator confirms it, or the
// controllers are reachable again after it (the change evidently did not
// cut the node off), the previous setting comes back by itself when the
// time runs out. A wrong static IP typed on a remote console therefore
// never locks anyone out for longer than the countdown.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/nodeconfig"
)

// probation is a change waiting for confirmation.
type probation struct {
	localapi.Pending
	revert func() // puts the previous setting back
	done   chan struct{}
}

// SetInterface implements localapi.ConfigBackend.
func (d *Daemon) SetInterface(ctx context.Context, name string, r localapi.SetInterfaceRequest) (localapi.Pending, error) {
	if d.nics == nil {
		return localapi.Pending{}, errors.New("NIC settings are managed only on the appliance (gate up --manage-nics)")
	}
	if !d.nics.Has(name) {
		return localapi.Pending{}, fmt.Errorf("interface %q: %w (not a NIC Gate manages)", name, localapi.ErrNotFound)
	}
	want := nodeconfig.Interface{DHCP: true}
	what := name + ": DHCP"
	if !r.DHCP {
		want = nodeconfig.Interface{Address: r.Address, Gateway: r.Gateway, DNS: r.DNS}
		what = fmt.Sprintf("%s: static %s", name, r.Address)
		if r.Gateway.IsValid() {
			what += " via " + r.Gateway.String()
		}
	}
	wait := time.Duration(r.Confirm)
	if wait <= 0 {
		wait = d.opt.ConfirmTimeout
	}
	if wait <= 0 {
		wait = localapi.DefaultConfirm
	}

	// confirmMu, not mu: applying calls back into update, which takes mu.
	d.confirmMu.Lock()
	defer d.confirmMu.Unlock()
	if d.probation != nil {
		return localapi.Pending{}, fmt.Errorf("a change is waiting for confirmation (%s): confirm it or let it revert first", d.probation.What)
	}
	var old map[string]nodeconfig.Interface
	if _, err := d.state.LoadJSON(InterfacesFile, &old); err != nil {
		return localapi.Pending{}, err
	}
	oldBytes, readErr := d.state.Read(InterfacesFile)
	next := maps.Clone(old)
	if next == nil {
		next = map[string]nodeconfig.Interface{}
	}
	next[name] = want
	// The whole effective configuration must stay valid (a gateway
	// outside its subnet, an address another NIC has...), or nothing is
	// applied.
	cfg, err := nicConfig(d.preseedNICs(), next, d.opt.Cmdline)
	if err != nil {
		return localapi.Pending{}, err
	}
	if err := d.state.SaveJSON(InterfacesFile, next); err != nil {
		return localapi.Pending{}, err
	}
	d.nics.Reload(cfg)
	d.refreshProvenance()
	now := time.Now()
	p := &probation{
		Pending: localapi.Pending{What: what, Applied: now, Deadline: now.Add(wait)},
		done:    make(chan struct{}),
	}
	p.revert = func() {
		if readErr != nil { // there was no file: remove ours
			os.Remove(d.state.File(InterfacesFile))
		} else if err := d.state.Write(InterfacesFile, oldBytes); err != nil {
			d.opt.Logf("reverting %s: %v", what, err)
		}
		if cfg, err := nicConfig(d.preseedNICs(), old, d.opt.Cmdline); err == nil {
			d.nics.Reload(cfg)
		}
		d.refreshProvenance()
	}
	d.probation = p
	d.opt.Logf("applied %s; reverting in %v unless confirmed", what, wait.Round(time.Second))
	go d.watchProbation(p)
	d.bump()
	return p.Pending, nil
}

// watchProbation ends a probation: confirmed (Confirm closes done), kept
// because the controllers answered after the change, or reverted at the
// deadline.
func (d *Daemon) watchProbation(p *probation) {
	timer := time.NewTimer(time.Until(p.Deadline))
	defer timer.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-tick.C:
			if d.reachableSince(p.Applied.Add(time.Second)) {
				d.endProbation(p, "kept "+p.What+": the controllers answered after the change")
				return
			}
		case <-timer.C:
			d.confirmMu.Lock()
			current := d.probation == p
			if current {
				d.probation = nil
				p.revert()
			}
			d.confirmMu.Unlock()
			if current {
				d.opt.Logf("reverted %s: not confirmed in time", p.What)
				d.bump()
			}
			return
		}
	}
}

// reachableSince reports whether the node has networks and every one of
// them heard from its controller after t.
func (d *Daemon) reachableSince(t time.Time) bool {
	ms := d.agent.Memberships()
	if len(ms) == 0 {
		return false
	}
	for _, m := range ms {
		if !m.Online || m.LastSync.Before(t) {
			return false
		}
	}
	return true
}

func (d *Daemon) endProbation(p *probation, msg string) (ended bool) {
	d.confirmMu.Lock()
	current := d.probation == p
	if current {
		d.probation = nil
		close(p.done)
	}
	d.confirmMu.Unlock()
	if current {
		d.opt.Logf("%s", msg)
		d.bump()
	}
	return current
}

// Confirm implements localapi.ConfigBackend.
func (d *Daemon) Confirm(ctx context.Context) error {
	d.confirmMu.Lock()
	p := d.probation
	d.confirmMu.Unlock()
	if p == nil {
		return errors.New("nothing is waiting for confirmation")
	}
	// The deadline may pass between the two locks: then the change was
	// reverted, and saying it was kept would be a lie the operator finds
	// out about when the address is gone.
	if !d.endProbation(p, "confirmed "+p.What) {
		return fmt.Errorf("%s was reverted at its deadline, just before the confirmation", p.What)
	}
	return nil
}

// pending is the change on probation, for the status.
func (d *Daemon) pending() *localapi.Pending {
	d.confirmMu.Lock()
	defer d.confirmMu.Unlock()
	if d.probation == nil {
		return nil
	}
	p := d.probation.Pending
	return &p
}

// Power implements localapi.ConfigBackend: it asks PID 1 to reboot or
// power off, which stops the services and syncs the disks first. Only
// when this daemon is the appliance's (PID 1 is gate's init): a daemon on
// an ordinary host must never signal the host's init.
func (d *Daemon) Power(ctx context.Context, action string) error {
	var sig unix.Signal
	switch action {
	case "reboot":
		sig = unix.SIGTERM
	case "poweroff":
		sig = unix.SIGUSR2
	default:
		return fmt.Errorf("power action %q: want reboot or poweroff", action)
	}
	if !d.opt.ManageNICs || os.Getppid() != 1 || !gateIsInit() {
		return errors.New("reboot and power off are for the appliance only")
	}
	d.opt.Logf("%s requested through the local API", action)
	return unix.Kill(1, sig)
}

// gateIsInit reports whether PID 1 is gate's own init (/init).
func gateIsInit() bool {
	b, err := os.ReadFile("/proc/1/cmdline")
	return err == nil && bytes.HasPrefix(b, []byte("/init\x00"))
}
