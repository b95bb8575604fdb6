package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/gatenet/gate/services/daemon"
	"github.com/gatenet/gate/services/localapi"
)

// nicFlags are `gate up`'s flags for the appliance's NIC management.
type nicFlags struct {
	manage  *bool
	only    *string
	resolv  *string
	preseed *string
	confirm *time.Duration
}

func addNICFlags(fs *flag.FlagSet) nicFlags {
	return nicFlags{
		manage:  fs.Bool("manage-nics", false, "manage this machine's NICs (the appliance; PID 1 sets it): DHCP on every physical NIC unless static settings name it, default route, resolv.conf"),
		only:    fs.String("nics", "", "with --manage-nics: only these NICs (comma-separated); default: every physical NIC"),
		resolv:  fs.String("resolv-conf", "/etc/resolv.conf", "with --manage-nics: where the NICs' DNS servers are written"),
		preseed: fs.String("preseed", "", "preseed document (YAML or JSON, gate's node configuration): static NIC settings, networks joined once"),
		confirm: fs.Duration("confirm-timeout", localapi.DefaultConfirm, "with --manage-nics: how long a NIC change waits for confirmation before it reverts"),
	}
}

// apply sets the daemon's NIC options. With --manage-nics, the kernel
// command line's gate.iface.* keys override NIC settings.
func (f nicFlags) apply(o *daemon.Options) {
	o.ManageNICs, o.ResolvConf, o.Preseed, o.ConfirmTimeout = *f.manage, *f.resolv, *f.preseed, *f.confirm
	for _, n := range strings.Split(*f.only, ",") {
		if n = strings.TrimSpace(n); n != "" {
			o.NICs = append(o.NICs, n)
		}
	}
	if o.ManageNICs {
		if b, err := os.ReadFile("/proc/cmdline"); err == nil {
			o.Cmdline = string(b)
		}
	}
}

func runInterfaces(e *env, args []string) error {
	c := newLocalCmd("interfaces", true)
	if _, err := c.args(args, 0, "no arguments"); err != nil {
		return err
	}
	var nics []localapi.Interface
	if err := c.call(10*time.Second, func(ctx context.Context, cl *localapi.Client) (err error) {
		nics, err = cl.Interfaces(ctx)
		return err
	}); err != nil {
		return err
	}
	if c.wantJSON() {
		return printJSON(e.stdout, nics)
	}
	if len(nics) == 0 {
		fmt.Fprintln(e.stdout, "no NICs managed by gate here (the appliance manages them: gate up --manage-nics)")
		return nil
	}
	tw := table(e.stdout)
	fmt.Fprintln(tw, "NAME\tMAC\tLINK\tMODE\tADDRESSES\tGATEWAY\tWAN\tDNS\tLEASE")
	for _, n := range nics {
		wan := ""
		if n.WAN {
			wan = "WAN"
		}
		lease := "-"
		if d := n.DHCP; d != nil {
			lease = d.State
			if !d.Expiry.IsZero() {
				lease += fmt.Sprintf(" (from %s, renew in %s, expires in %s)", d.Server, until(d.Renew), until(d.Expiry))
			}
			if d.LastError != "" && d.State != "bound" {
				lease += ": " + d.LastError
			}
		}
		gw := "-"
		if n.Gateway.IsValid() {
			gw = n.Gateway.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.MAC, n.Link, n.Mode, joinStrings(n.Addresses), gw, orDash(wan), joinStrings(n.DNS), lease)
	}
	tw.Flush()
	for _, n := range nics {
		if n.Error != "" {
			fmt.Fprintf(e.stdout, "%s: %s\n", n.Name, n.Error)
		}
	}
	return nil
}

func until(t time.Time) string {
	d := time.Until(t).Round(time.Second)
	if d < 0 {
		return "0s"
	}
	return d.String()
}
