package daemon

// The node's configuration document, wired: services/intent holds its
// layers and says what is in force; the daemon applies it. Static NIC
// settings go to the NIC manager (publish), the hostname to the kernel
// (appliance only), a controller runs in this process when the document
// asks (controller.go), and the document's networks are joined through the
// same agent Join the local API uses.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/gatenet/gate/services/localapi"
)

// hostnameFile is read by PID 1 at boot (appliance/pid1).
const hostnameFile = "hostname"

// How long the appliance waits for a route to the metadata service (its
// NIC's DHCP lease) before it decides there is none.
const metadataRouteWait = 30 * time.Second

// publish puts what intent has in force to work: the NIC settings (the NIC
// manager reconfigures only the NICs whose settings changed) and the
// status watchers see.
func (d *Daemon) publish() {
	if d.nics != nil {
		d.nics.Reload(d.intent.NICs())
	}
	d.bump()
}

// configure loads the document (the cloud's layers, when told to look)
// and applies what is in force. It runs once per start, beside the agent.
func (d *Daemon) configure(ctx context.Context) {
	p := d.intent.Load(ctx)
	if p == nil {
		return // stopped while looking
	}
	d.applyHostname(p.Effective.Config.Hostname)
	d.runController(ctx, p.Effective.Config.Controller)
	d.intent.Join(ctx, p, d.Join, d.localControllerAddress())
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

// SetInterface implements localapi.ConfigBackend: a NIC setting made on
// the machine, proposed to intent on probation.
func (d *Daemon) SetInterface(ctx context.Context, name string, r localapi.SetInterfaceRequest) (localapi.Pending, error) {
	if d.nics == nil {
		return localapi.Pending{}, errors.New("NIC settings are managed only on the appliance (gate up --manage-nics)")
	}
	if !d.nics.Has(name) {
		return localapi.Pending{}, fmt.Errorf("interface %q: %w (not a NIC Gate manages)", name, localapi.ErrNotFound)
	}
	return d.intent.Propose(name, r)
}

// Confirm implements localapi.ConfigBackend.
func (d *Daemon) Confirm(ctx context.Context) error { return d.intent.Confirm() }

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
