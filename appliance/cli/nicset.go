package cli

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/nodeconfig"
)

// runSetInterface: gate set-interface NAME --dhcp | --address A/P [--gateway G] [--dns D,...]
func runSetInterface(e *env, args []string) error {
	fs := flag.NewFlagSet("set-interface", flag.ContinueOnError)
	socket := socketFlag(fs)
	dhcp := fs.Bool("dhcp", false, "use DHCP")
	addr := fs.String("address", "", "static address with prefix length, e.g. 172.16.1.10/24")
	gw := fs.String("gateway", "", "default gateway (inside the address's subnet)")
	dns := fs.String("dns", "", "DNS servers, comma-separated")
	confirm := fs.Duration("confirm", 0, "revert unless confirmed (gate confirm) within this long (default: the daemon's, 60 s)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, "a NIC name"); err != nil {
		return err
	}
	if err := nodeconfig.CheckInterfaceName(pos[0]); err != nil {
		return usagef("%v", err)
	}
	req := localapi.SetInterfaceRequest{DHCP: *dhcp, Confirm: localapi.Duration(*confirm)}
	switch {
	case *dhcp && *addr != "":
		return usagef("--dhcp and --address exclude each other")
	case !*dhcp && *addr == "":
		return usagef("want --dhcp or --address A/P")
	case !*dhcp:
		if req.Address, err = netip.ParsePrefix(*addr); err != nil {
			return usagef("--address %q is not an address/prefix like 172.16.1.10/24", *addr)
		}
		if *gw != "" {
			if req.Gateway, err = netip.ParseAddr(*gw); err != nil {
				return usagef("--gateway %q is not an IP address", *gw)
			}
		}
		for _, s := range strings.Split(*dns, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			a, err := nodeconfig.ParseNameserver(s)
			if err != nil {
				return usagef("--dns: %v", err)
			}
			req.DNS = append(req.DNS, a)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := localapi.NewClient(*socket).SetInterface(ctx, pos[0], req)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "applied %s; it reverts at %s unless you run: gate confirm\n", p.What, p.Deadline.Format(time.TimeOnly))
	return nil
}

func runConfirm(e *env, args []string) error {
	c := newLocalCmd("confirm", false)
	if _, err := c.args(args, 0, "no arguments"); err != nil {
		return err
	}
	if err := c.call(10*time.Second, func(ctx context.Context, cl *localapi.Client) error { return cl.Confirm(ctx) }); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "confirmed")
	return nil
}
