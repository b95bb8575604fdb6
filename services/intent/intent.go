package intent

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatenet/gate/services/cloud"
	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/nodeconfig"
	"github.com/gatenet/gate/services/state"
)

// Options configure an Intent.
type Options struct {
	// State is the node's state directory: the local layer, the cloud
	// layers accepted, and what was joined once live there.
	State *state.Dir
	// Preseed is the path of a preseed document (YAML or JSON; absent is
	// fine, invalid is logged and ignored).
	Preseed string
	// Cmdline is the kernel command line; its gate.* keys are the top
	// layer ("" for none).
	Cmdline string
	// Cloud is where to look for user-data and metadata: CloudOff ("") or
	// another cloud mode.
	Cloud string
	// MetadataRetry is how a metadata service that fails to answer is
	// asked again; zero: every second or so, for 2 minutes.
	MetadataRetry Retry
	// MetadataURL replaces the metadata service's address (tests).
	MetadataURL string
	// WaitMetadataRoute, if set, returns once the node may reach the
	// metadata service, or once it never will (the appliance: its NIC's
	// DHCP lease).
	WaitMetadataRoute func(ctx context.Context)
	// ConfirmTimeout is how long a change made on the machine waits for
	// confirmation when its request does not say; 0 means
	// localapi.DefaultConfirm.
	ConfirmTimeout time.Duration
	// Reachable reports whether the node heard from all its controllers
	// after a time: a change on probation that did not cut it off is kept.
	Reachable func(since time.Time) bool
	// Publish is called whenever what is in force or its status changed:
	// the caller reads NICs and Status again. It must not call Propose.
	Publish func()
	Logf    func(format string, args ...any)
}

// Intent is a node's configuration layers as they stand, and their status.
type Intent struct {
	opt        Options
	preseed    *nodeconfig.Layer // nil without a (valid) preseed
	preseedSum string            // its sha256, to join its networks once
	cmdline    *nodeconfig.Layer
	cmdlineErr error

	mu       sync.Mutex
	cloud    []*nodeconfig.Layer // cloud layers in force
	accepted *acceptedCloud      // where they came from; nil: none
	local    map[string]nodeconfig.Interface
	status   localapi.ConfigStatus // without provenance, computed when asked

	// probation is the change waiting for confirmation (confirm.go).
	confirmMu sync.Mutex
	probation *probation
}

// New reads the layers in force: the preseed, the kernel command line, the
// local layer and the cloud layers accepted last time.
func New(opt Options) *Intent {
	if opt.Logf == nil {
		opt.Logf = func(string, ...any) {}
	}
	if opt.Publish == nil {
		opt.Publish = func() {}
	}
	opt.Cloud = cmp.Or(opt.Cloud, CloudOff)
	in := &Intent{opt: opt, status: localapi.ConfigStatus{State: localapi.ConfigPending, Source: "none"}}
	in.preseed, in.preseedSum = loadPreseed(opt.Preseed, opt.Logf)
	if strings.Contains(opt.Cmdline, "gate.") {
		in.cmdline, in.cmdlineErr = nodeconfig.ParseCmdline(opt.Cmdline)
	}
	if _, err := opt.State.LoadJSON(InterfacesFile, &in.local); err != nil {
		opt.Logf("NIC settings: %v (ignored)", err)
		in.local = nil
	}
	if opt.Cloud == CloudOff {
		in.status.Source = "none (cloud detection off)"
		return in
	}
	var a acceptedCloud
	if ok, err := opt.State.LoadJSON(cloudAcceptedFile, &a); err != nil {
		opt.Logf("config: %v (ignored)", err)
	} else if ok {
		// A newer gate may have accepted what this one no longer parses:
		// then it is dropped, and said.
		ls, _, err := cloudLayers(a.result())
		if err != nil {
			opt.Logf("config: the user-data accepted before no longer parses, ignored: %v", err)
		} else {
			in.accepted, in.cloud = &a, ls
			in.status.InstanceID = a.InstanceID
		}
	}
	return in
}

// loadPreseed reads the preseed document at path and its digest. A
// missing file is no preseed; an invalid one is logged, whole, and
// ignored.
func loadPreseed(path string, logf func(string, ...any)) (*nodeconfig.Layer, string) {
	if path == "" {
		return nil, ""
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ""
	}
	if err != nil {
		logf("preseed: %v", err)
		return nil, ""
	}
	l, err := nodeconfig.ParseLayer(nodeconfig.SourcePreseed, path, b)
	if err != nil {
		logf("preseed %s is invalid, ignored: %v", path, err)
		return nil, ""
	}
	for _, w := range l.Warnings {
		logf("preseed %s: %s", path, w)
	}
	sum := sha256.Sum256(b)
	logf("preseed %s read (%d interfaces, %d networks)", path, len(l.Config.Interfaces), len(l.Config.Networks))
	return l, hex.EncodeToString(sum[:])
}

// Layers returns the layers in force.
func (in *Intent) Layers() Layers {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.layersLocked()
}

func (in *Intent) layersLocked() Layers {
	return Layers{Preseed: in.preseed, Cloud: slices.Clone(in.cloud), Local: maps.Clone(in.local), Cmdline: in.cmdline}
}

// NICs is the NIC settings in force, for the NIC manager; nil means DHCP
// on every NIC. Cloud NIC settings that no longer fit the others are left
// out (said in the log); settings that do not validate at all leave every
// NIC to DHCP, also said.
func (in *Intent) NICs() *nodeconfig.Config {
	l := in.Layers()
	cfg, err := NICs(l)
	if err != nil && len(l.Cloud) > 0 {
		in.opt.Logf("NIC settings of the cloud: %v (left out)", err)
		l.Cloud = nil
		cfg, err = NICs(l)
	}
	if err != nil {
		in.opt.Logf("NIC settings are invalid, using DHCP on every NIC: %v", err)
		return nil
	}
	return cfg
}

// Status is the configuration's status for the local API, with where each
// value in force comes from now.
func (in *Intent) Status() *localapi.ConfigStatus {
	in.mu.Lock()
	st := in.status
	l := in.layersLocked()
	in.mu.Unlock()
	st.Errors, st.Warnings = slices.Clone(st.Errors), slices.Clone(st.Warnings)
	st.Provenance = nil
	if eff, err := Assemble(l); err == nil {
		st.Provenance = Provenance(eff)
	}
	return &st
}

// Plan is what Load found in force: the document, and the cloud source it
// accepted this time (nil when none was new).
type Plan struct {
	Effective *nodeconfig.Effective
	Fresh     *cloud.Result
	Boot      cloud.Boot
}

// Load reads the sources (the cloud's, when the mode says so), assembles
// and validates the document, and accepts it, or keeps the last good one.
// It runs once per start; the caller applies the plan's document (Join
// joins its networks).
func (in *Intent) Load(ctx context.Context) *Plan {
	mode := in.opt.Cloud
	in.mu.Lock()
	st := localapi.ConfigStatus{Source: in.status.Source}
	accepted := in.accepted
	in.mu.Unlock()
	var errs, warns []string
	var fresh *cloud.Result // a newly detected source, to accept if valid
	var freshLayers []*nodeconfig.Layer
	boot := cloud.Boot{}
	addIssues := func(err error) {
		e, w := Issues(err)
		errs, warns = append(errs, e...), append(warns, w...)
	}

	if mode != CloudOff {
		r, err := in.detect(ctx, mode)
		if ctx.Err() != nil {
			return nil
		}
		st.Source = describeSource(r)
		st.InstanceID = r.InstanceID
		warns = append(warns, r.Notes...)
		switch {
		case err != nil:
			errs = append(errs, err.Error())
		case r.Kind == cloud.None:
			if a := accepted; a != nil {
				st.Source = fmt.Sprintf("none now; keeping the user-data accepted from %s instance %s", a.Kind, a.InstanceID)
				st.InstanceID = a.InstanceID
			}
		default:
			if boot, err = cloud.CheckInstance(in.opt.State, r); err != nil {
				in.opt.Logf("config: %v", err)
			}
			st.FirstBoot = boot.First
			ls, notes, err := cloudLayers(r)
			warns = append(warns, notes...)
			if err != nil {
				addIssues(err)
			} else {
				fresh, freshLayers = r, ls
			}
		}
	}
	if in.cmdlineErr != nil {
		addIssues(in.cmdlineErr)
	}

	var eff *nodeconfig.Effective
	if len(errs) == 0 {
		l := in.Layers()
		if fresh != nil {
			l.Cloud = freshLayers
		}
		var err error
		if eff, err = Assemble(l); err != nil {
			addIssues(err)
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
		var err error
		if eff, err = Assemble(in.Layers()); err != nil {
			in.opt.Logf("config: the last good configuration is no longer valid either: %v", err)
			eff, _ = nodeconfig.Merge()
		}
	}
	st.Checked = time.Now().UTC()
	st.Errors, st.Warnings = errs, warns
	in.mu.Lock()
	if fresh != nil {
		in.accepted, in.cloud = accept(fresh), freshLayers
	}
	in.status = st
	in.mu.Unlock()
	in.logStatus(st)
	if fresh != nil {
		if err := in.opt.State.SaveJSON(cloudAcceptedFile, accept(fresh)); err != nil {
			in.opt.Logf("config: %v", err)
		}
	}
	in.opt.Publish()
	return &Plan{Effective: eff, Fresh: fresh, Boot: boot}
}

func (in *Intent) logStatus(st localapi.ConfigStatus) {
	if in.opt.Cloud == CloudOff && in.preseed == nil && len(st.Errors)+len(st.Warnings) == 0 {
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
	in.opt.Logf("config from %s%s: %s (%d errors, %d warnings)", st.Source, inst, what, len(st.Errors), len(st.Warnings))
	for _, e := range st.Errors {
		in.opt.Logf("config error: %s", e)
	}
	for _, w := range st.Warnings {
		in.opt.Logf("config warning: %s", w)
	}
}
