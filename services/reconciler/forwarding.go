package reconciler

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// forwardingFile, in the state directory, holds the forwarding switch as
// found before Gate turned it on, for as long as Gate has it on. It is
// written before the switch is flipped and removed once it is put back, so
// a run killed in between leaves it for the next run, which must not take
// the 1 the killed run left for the value found. It exists only when Gate
// changed the switch: forwarding that was already on needs no putting back.
const forwardingFile = "forwarding.found"

// forwardingFound is forwardingFile's content.
type forwardingFound struct {
	IPv4Forward bool `json:"ipv4_forward"`
	// Switch is netcfg.ForwardingSwitch when the value was found: after a
	// reboot, or in another network namespace, the record is of another
	// switch and says nothing of this one.
	Switch string `json:"switch"`
}

// loadForwardingFound takes over the value found that a run which did not
// stop left in the state directory.
func (r *Reconciler) loadForwardingFound() {
	if r.state == nil {
		return
	}
	sw, err := r.k.Forwarding.Switch()
	if err != nil {
		r.logf("IPv4 forwarding: %v; the value found will not survive a crash", err)
		r.state = nil
		return
	}
	r.fwdSwitch = sw
	var rec forwardingFound
	ok, err := r.state.LoadJSON(forwardingFile, &rec)
	if err != nil {
		// Not if but how it was found is lost; the first pass replaces
		// or removes the file.
		r.fwdFile = fileOther
		r.logf("IPv4 forwarding: dropping %s: %v", r.state.File(forwardingFile), err)
		return
	}
	if !ok {
		return
	}
	r.fwdFile = fileOther
	if rec.Switch != sw {
		r.logf("IPv4 forwarding: dropping %s: it is of another boot or namespace (%s; this is %s)", r.state.File(forwardingFile), rec.Switch, sw)
		return
	}
	prev := rec.IPv4Forward
	r.fwdPrev = &prev
	r.fwdFile = fileOurs
	r.logf("IPv4 forwarding: a run that did not stop found it %s; it is put back when the gateway role goes", onOff(prev))
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// What forwardingFile holds, as far as the reconciler knows.
type fileState int

const (
	fileAbsent fileState = iota
	fileOurs             // the record of fwdPrev
	fileOther            // unreadable, or of another switch
)

// syncForwardingFound makes forwardingFile match fwdPrev: the record while
// Gate has changed the switch, absent otherwise.
func (r *Reconciler) syncForwardingFound() error {
	if r.state == nil {
		return nil
	}
	want := r.fwdPrev != nil && !*r.fwdPrev
	switch {
	case want && r.fwdFile != fileOurs:
		if err := r.state.SaveJSON(forwardingFile, forwardingFound{IPv4Forward: *r.fwdPrev, Switch: r.fwdSwitch}); err != nil {
			return fmt.Errorf("recording the value found: %w", err)
		}
		r.fwdFile = fileOurs
	case !want && r.fwdFile != fileAbsent:
		// Not synced to disk: only a crash of the machine could bring the
		// record back, and after one it is of another boot and dropped.
		name := r.state.File(forwardingFile)
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing %s: %w", name, err)
		}
		r.fwdFile = fileAbsent
	}
	return nil
}

// setForwarding turns forwarding on for a gateway, recording first the
// value found; or puts it back as found when no network is a gateway.
func (r *Reconciler) setForwarding(on bool, st *Status) error {
	if on {
		if r.fwdPrev == nil {
			prev, err := r.k.Forwarding.Get()
			if err != nil {
				return fmt.Errorf("enabling IPv4 forwarding: %w", err)
			}
			r.fwdPrev = &prev
		}
		// Before the switch flips. Failing to record does not hold the
		// gateway role back: a clean stop still puts the switch back from
		// memory; a crash would not. Each pass tries again.
		if err := r.syncForwardingFound(); err != nil {
			r.logf("IPv4 forwarding: %v; a crash now would leave forwarding on", err)
		}
		prev, err := r.k.Forwarding.Set(true)
		if err != nil {
			return fmt.Errorf("enabling IPv4 forwarding: %w", err)
		}
		if !prev {
			r.logf("IPv4 forwarding on")
		}
		st.Forwarding = true
		return nil
	}
	if r.fwdPrev != nil {
		if !*r.fwdPrev {
			was, err := r.k.Forwarding.Set(false)
			if err != nil {
				return fmt.Errorf("restoring IPv4 forwarding: %w", err)
			}
			if was {
				r.logf("IPv4 forwarding off (as found)")
			}
		}
		r.fwdPrev = nil
	}
	// After the switch is back, or to drop a stale record.
	return r.syncForwardingFound()
}
