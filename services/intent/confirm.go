package intent

// Commit-confirm for changes made on the machine itself: a new NIC setting
// is a proposed local layer. It is assembled with the other layers (the
// whole must stay valid, or nothing changes), persisted, and published at
// once, on probation. Unless the operator confirms it, or the controllers
// are reachable again after it (the change evidently did not cut the node
// off), the previous local layer comes back by itself when the time runs
// out. A wrong static IP typed on a remote console therefore never locks
// anyone out for longer than the countdown.

import (
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/nodeconfig"
)

// probation is a change waiting for confirmation.
type probation struct {
	localapi.Pending
	previous map[string]nodeconfig.Interface // the local layer before it
	done     chan struct{}
}

// Propose sets NIC name's settings in the local layer, on probation. The
// caller has checked that name is a NIC the node manages.
func (in *Intent) Propose(name string, r localapi.SetInterfaceRequest) (localapi.Pending, error) {
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
		wait = in.opt.ConfirmTimeout
	}
	if wait <= 0 {
		wait = localapi.DefaultConfirm
	}

	in.confirmMu.Lock()
	defer in.confirmMu.Unlock()
	if in.probation != nil {
		return localapi.Pending{}, fmt.Errorf("a change is waiting for confirmation (%s): confirm it or let it revert first", in.probation.What)
	}
	in.mu.Lock()
	l := in.layersLocked()
	in.mu.Unlock()
	previous := l.Local
	l.Local = maps.Clone(previous)
	if l.Local == nil {
		l.Local = map[string]nodeconfig.Interface{}
	}
	l.Local[name] = want
	// The NIC settings in force must stay valid whole (a gateway outside
	// its subnet, an address another NIC has...), or nothing changes.
	if _, err := NICs(l); err != nil {
		return localapi.Pending{}, err
	}
	if err := in.setLocal(l.Local); err != nil {
		return localapi.Pending{}, err
	}
	now := time.Now()
	p := &probation{
		Pending:  localapi.Pending{What: what, Applied: now, Deadline: now.Add(wait)},
		previous: previous,
		done:     make(chan struct{}),
	}
	in.probation = p
	in.opt.Logf("applied %s; reverting in %v unless confirmed", what, wait.Round(time.Second))
	go in.watchProbation(p)
	in.opt.Publish()
	return p.Pending, nil
}

// setLocal persists a local layer and puts it in force. An empty one
// removes the file.
func (in *Intent) setLocal(local map[string]nodeconfig.Interface) error {
	var err error
	if len(local) == 0 {
		err = in.opt.State.Remove(InterfacesFile)
	} else {
		err = in.opt.State.SaveJSON(InterfacesFile, local)
	}
	if err != nil {
		return err
	}
	in.mu.Lock()
	in.local = local
	in.mu.Unlock()
	return nil
}

// watchProbation ends a probation: confirmed (Confirm closes done), kept
// because the controllers answered after the change, or reverted at the
// deadline.
func (in *Intent) watchProbation(p *probation) {
	timer := time.NewTimer(time.Until(p.Deadline))
	defer timer.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-tick.C:
			if in.opt.Reachable != nil && in.opt.Reachable(p.Applied.Add(time.Second)) {
				in.endProbation(p, "kept "+p.What+": the controllers answered after the change")
				return
			}
		case <-timer.C:
			in.confirmMu.Lock()
			current := in.probation == p
			if current {
				in.probation = nil
				if err := in.setLocal(p.previous); err != nil {
					in.opt.Logf("reverting %s: %v", p.What, err)
				}
			}
			in.confirmMu.Unlock()
			if current {
				in.opt.Logf("reverted %s: not confirmed in time", p.What)
				in.opt.Publish()
			}
			return
		}
	}
}

func (in *Intent) endProbation(p *probation, msg string) (ended bool) {
	in.confirmMu.Lock()
	current := in.probation == p
	if current {
		in.probation = nil
		close(p.done)
	}
	in.confirmMu.Unlock()
	if current {
		in.opt.Logf("%s", msg)
		in.opt.Publish()
	}
	return current
}

// Confirm keeps the change on probation.
func (in *Intent) Confirm() error {
	in.confirmMu.Lock()
	p := in.probation
	in.confirmMu.Unlock()
	if p == nil {
		return errors.New("nothing is waiting for confirmation")
	}
	// The deadline may pass between the two locks: then the change was
	// reverted, and saying it was kept would be a lie the operator finds
	// out about when the address is gone.
	if !in.endProbation(p, "confirmed "+p.What) {
		return fmt.Errorf("%s was reverted at its deadline, just before the confirmation", p.What)
	}
	return nil
}

// Pending is the change on probation, nil if none.
func (in *Intent) Pending() *localapi.Pending {
	in.confirmMu.Lock()
	defer in.confirmMu.Unlock()
	if in.probation == nil {
		return nil
	}
	p := in.probation.Pending
	return &p
}
