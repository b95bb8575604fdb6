package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatenet/gate/services/daemon"
	"github.com/gatenet/gate/services/desired"
	"github.com/gatenet/gate/services/intent"
	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/logring"
	"github.com/gatenet/gate/services/memlimit"
	"github.com/gatenet/gate/services/nodeconfig"
	"github.com/gatenet/gate/services/tunnel"
)

const defaultStateDir = "/var/lib/gate"

func socketFlag(fs *flag.FlagSet) *string {
	return fs.String("socket", envOr("GATE_SOCKET", localapi.DefaultSocket), "daemon's local API socket ($GATE_SOCKET)")
}

func runUp(e *env, args []string) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	stateDir := fs.String("state", envOr("GATE_STATE", defaultStateDir), "state directory: keys and joined networks ($GATE_STATE)")
	socket := socketFlag(fs)
	fw := fs.String("firewall", desired.FirewallAuto, "auto: deny input and forwarding by default when this node is a gateway, else only guard Gate's own addresses; strict: always deny by default; guard: never")
	allow := fs.String("allow-input", "tcp/22", "comma-separated ports open on input when the firewall is strict, e.g. tcp/22,tcp/8443 (\"\" for none)")
	hostname := fs.String("hostname", "", "name reported to the controller (default: the system's)")
	memLimit := memoryLimitFlag(fs, "0", "the default; the appliance uses 256MiB, a safety net beside the dataplane's bounded packet buffers")
	buffers := fs.Int("buffers", tunnel.DefaultBuffers, fmt.Sprintf("packet buffers per WireGuard device, 64 KiB each: what the dataplane may hold under load (at least %d; 0: unbounded, as upstream wireguard-go)", tunnel.MinBuffers))
	nic := addNICFlags(fs)
	cloudMode := fs.String("cloud", intent.CloudOff, "read user-data and metadata at start and apply the configuration document once per instance: auto (a NoCloud seed, then the metadata service; the appliance), nocloud, digitalocean, aws, or off")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, "no arguments"); err != nil {
		return err
	}
	if err := intent.CheckCloudMode(*cloudMode); err != nil {
		return usagef("--cloud: %v", err)
	}
	ports, err := parsePorts(*allow)
	if err != nil {
		return usagef("--allow-input: %v", err)
	}
	if err := tunnel.CheckBuffers(*buffers); err != nil {
		return usagef("--buffers: %v", err)
	}
	stopLimit, err := applyMemoryLimit(*memLimit)
	if err != nil {
		return err
	}
	defer stopLimit()
	ring := logring.New(2000)
	logger := log.New(io.MultiWriter(e.stderr, ring), "", log.LstdFlags)
	ctx, cancel := signalContext()
	defer cancel()
	opt := daemon.Options{
		Log:      ring,
		StateDir: *stateDir,
		Socket:   *socket,
		Firewall: *fw,
		AllowTCP: ports,
		Hostname: *hostname,
		Version:  e.version,
		Logf:     logger.Printf,
		Devices:  []tunnel.Option{tunnel.WithBuffers(*buffers)},
	}
	nic.apply(&opt)
	opt.Cloud = *cloudMode
	if opt.Cloud != intent.CloudOff && opt.Cmdline == "" {
		// NoCloud's ds=nocloud;s=... and the gate.* recovery keys.
		if b, err := os.ReadFile("/proc/cmdline"); err == nil {
			opt.Cmdline = string(b)
		}
	}
	return daemon.Run(ctx, opt)
}

// memoryLimitFlag adds --memory-limit to fs with its default; why says who
// uses what.
func memoryLimitFlag(fs *flag.FlagSet, def, why string) *string {
	return fs.String("memory-limit", def, "memory the process keeps under while its live heap allows, e.g. 256MiB: Go's soft limit, raised to 1.25 times the live heap plus stacks when that needs more, so the GC never thrashes (0: no limit; "+why+"); $GOMEMLIMIT wins, as a fixed limit")
}

// applyMemoryLimit keeps the process under what --memory-limit asks for
// (services/memlimit), unless $GOMEMLIMIT is set: the runtime has taken
// that one already. stop puts the limit back as it was.
func applyMemoryLimit(v string) (stop func(), err error) {
	n, err := parseSize(v)
	if err != nil {
		return nil, usagef("--memory-limit: %v", err)
	}
	if n > 0 && os.Getenv("GOMEMLIMIT") == "" {
		return memlimit.Keep(n).Stop, nil
	}
	return func() {}, nil
}

// parseSize reads a byte count: 96MiB, 1GiB, 65536.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}, {"", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("%q: want a size like 96MiB or 0", s)
			}
			if n > math.MaxInt64/u.mult {
				return 0, fmt.Errorf("%q: more bytes than there are in a 64-bit count", s)
			}
			return n * u.mult, nil
		}
	}
	return 0, fmt.Errorf("%q: want a size like 96MiB or 0", s)
}

// parsePorts reads "tcp/22,tcp/8443". Only TCP is accepted: WireGuard's UDP
// ports are opened by Gate itself.
func parsePorts(s string) ([]uint16, error) {
	var out []uint16
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		proto, port, ok := strings.Cut(f, "/")
		if !ok || proto != "tcp" {
			return nil, fmt.Errorf("%q: want tcp/PORT", f)
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("%q: port must be 1-65535", f)
		}
		out = append(out, uint16(n))
	}
	return out, nil
}

type prefixList []netip.Prefix

func (p *prefixList) String() string { return joinStrings(*p) }
func (p *prefixList) Set(s string) error {
	for _, f := range strings.Split(s, ",") {
		pr, err := netip.ParsePrefix(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("%q is not a CIDR", f)
		}
		*p = append(*p, pr)
	}
	return nil
}

// stringList is a flag that may be repeated or comma-separated.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error {
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			*l = append(*l, f)
		}
	}
	return nil
}

func runJoin(e *env, args []string) error {
	fs := flag.NewFlagSet("join", flag.ContinueOnError)
	socket := socketFlag(fs)
	ctl := fs.String("controller", "", "controller for a bare network ID: gate://HOST:PORT[,HOST:PORT...]?pin=sha256:... (several addresses: replicas of one controller)")
	addr := fs.String("address", "", "request this overlay address (the controller decides)")
	var serve prefixList
	fs.Var(&serve, "serve", "gateway role: local CIDR(s) this node forwards to and from the overlay (repeat or comma-separate)")
	lan := fs.String("lan", "", "gateway role: interface facing the served CIDRs (default: the default-route interface)")
	masqLAN := fs.Bool("masquerade-lan", false, "gateway role: overlay traffic enters the LAN with this node's address (clouds that drop foreign sources)")
	masqNet := fs.Bool("masquerade-internet", false, "gateway role: NAT the served CIDRs to the internet (the NAT-instance job)")
	var tables stringList
	fs.Var(&tables, "aws-route-table", "gateway role, AWS: a VPC route table (rtb-...) this gateway points at itself when it becomes a route's active gateway (repeat or comma-separate)")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, "a join string or network ID"); err != nil {
		return err
	}
	req := nodeconfig.JoinRequest{Join: pos[0], Controller: *ctl}
	if *addr != "" {
		a, err := netip.ParseAddr(*addr)
		if err != nil {
			return usagef("--address %q is not an IP address", *addr)
		}
		req.Address = a
	}
	if len(serve) > 0 || *lan != "" || *masqLAN || *masqNet || len(tables) > 0 {
		req.Gateway = &nodeconfig.Gateway{Serve: serve, LAN: *lan, MasqueradeLAN: *masqLAN, MasqueradeInternet: *masqNet, AWSRouteTables: tables}
	}
	// The domain's one validator, as the local API will call it: a bad
	// request is refused here, in the same words, without a daemon.
	if err := req.Check(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := localapi.NewClient(*socket).Join(ctx, req)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e.stdout, n)
	}
	fmt.Fprintf(e.stdout, "joined %s: %s\n", n.ID, n.Status)
	if on := controllerOn(n.ControllerNow, n.Controllers); on != "" {
		fmt.Fprintf(e.stdout, "  %s\n", on)
	}
	if n.Error != "" {
		fmt.Fprintf(e.stdout, "  last error: %s\n", n.Error)
	}
	if n.Status == "REQUESTING_CONFIGURATION" {
		st, err := localapi.NewClient(*socket).Status(ctx)
		if err == nil {
			// The fingerprint, not the short node ID: allowing by it
			// cannot let in another key that shares the node ID.
			fmt.Fprintf(e.stdout, "  waiting for an admin: gate member allow %s %s\n", n.ID, st.Fingerprint)
		}
	}
	return nil
}

func runLeave(e *env, args []string) error {
	c := newLocalCmd("leave", false)
	pos, err := c.args(args, 1, "a network ID")
	if err != nil {
		return err
	}
	if err := c.call(15*time.Second, func(ctx context.Context, cl *localapi.Client) error { return cl.Leave(ctx, pos[0]) }); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "left %s\n", pos[0])
	return nil
}

func runStatus(e *env, args []string) error {
	c := newLocalCmd("status", true)
	if _, err := c.args(args, 0, "no arguments"); err != nil {
		return err
	}
	var st localapi.Status
	if err := c.call(10*time.Second, func(ctx context.Context, cl *localapi.Client) (err error) {
		st, err = cl.Status(ctx)
		return err
	}); err != nil {
		return err
	}
	if c.wantJSON() {
		return printJSON(e.stdout, st)
	}
	online := "OFFLINE"
	if st.Online {
		online = "ONLINE"
	}
	fmt.Fprintf(e.stdout, "%s %s %s networks=%d firewall=%s forwarding=%v\nfingerprint %s\n", st.NodeID, st.Version, online, st.Networks, orDash(st.Firewall), st.Forward, st.Fingerprint)
	if st.Firewall == "strict" {
		open := "nothing but Gate's own traffic"
		if len(st.InputOpen) > 0 {
			var ps []string
			for _, p := range st.InputOpen {
				ps = append(ps, p.String())
			}
			open = strings.Join(ps, ", ")
		}
		fmt.Fprintf(e.stdout, "input open: %s\n", open)
	}
	if st.LastError != "" {
		fmt.Fprintf(e.stdout, "last error: %s\n", st.LastError)
	}
	for _, c := range st.Controllers {
		if on := controllerOn(c.Now, c.Addresses); on != "" {
			state := "online"
			if !c.Online {
				state = "OFFLINE"
			}
			fmt.Fprintf(e.stdout, "network %s: %s, %s\n", c.Network, on, state)
		}
	}
	printConfigStatus(e.stdout, st.Config)
	return nil
}

// controllerOn says which address of its controller a network is on, when
// the controller has several (replicas); "" when it has one.
func controllerOn(now string, all []string) string {
	if len(all) < 2 {
		return ""
	}
	list := terminal(strings.Join(all, ","))
	if i := slices.Index(all, now); i >= 0 {
		return fmt.Sprintf("on controller %s (address %d of %d: %s)", terminal(now), i+1, len(all), list)
	}
	return fmt.Sprintf("on controller %s (of %s)", terminal(orDash(now)), list)
}

func runNetworks(e *env, args []string) error {
	c := newLocalCmd("networks", true)
	if _, err := c.args(args, 0, "no arguments"); err != nil {
		return err
	}
	var ns []localapi.Network
	if err := c.call(10*time.Second, func(ctx context.Context, cl *localapi.Client) (err error) {
		ns, err = cl.Networks(ctx)
		return err
	}); err != nil {
		return err
	}
	if c.wantJSON() {
		return printJSON(e.stdout, ns)
	}
	tw := table(e.stdout)
	fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tINTERFACE\tADDRESSES\tROUTES\tPEERS")
	for _, n := range ns {
		var routes []string
		for _, r := range n.Routes {
			via := r.Via
			for _, f := range n.Failover {
				if f.Dest == r.Dest && f.Active.IsValid() {
					via = f.Active
				}
			}
			routes = append(routes, r.Dest.String()+" via "+via.String())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", n.ID, orDash(n.Name), n.Status, orDash(n.Interface), joinStrings(n.Addresses), orDash(strings.Join(routes, ",")), len(n.Peers))
	}
	tw.Flush()
	for _, n := range ns {
		if on := controllerOn(n.ControllerNow, n.Controllers); on != "" {
			fmt.Fprintf(e.stdout, "%s: %s\n", n.ID, on)
		}
	}
	for _, n := range ns {
		if n.Error != "" {
			fmt.Fprintf(e.stdout, "%s: %s\n", n.ID, terminal(n.Error))
		}
	}
	for _, n := range ns {
		printFailover(e.stdout, n)
		printNodeRules(e.stdout, n)
	}
	return nil
}

// printFailover prints, for each route of n with several gateways, the
// gateway this node sends through and why, and what it saw of each.
func printFailover(w io.Writer, n localapi.Network) {
	if len(n.Failover) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s routes with several gateways:\n", n.ID)
	for _, f := range n.Failover {
		if f.Serving {
			who := f.Active.String()
			if f.ActiveHere {
				who += ", this node"
			}
			fmt.Fprintf(w, "  %s: served here (%s); active gateway %s since %s (%s)\n", f.Dest, terminal(f.State), who, f.Since.Local().Format("15:04:05"), terminal(f.Reason))
		} else {
			fmt.Fprintf(w, "  %s: via %s since %s (%s)\n", f.Dest, f.Active, f.Since.Local().Format("15:04:05"), terminal(f.Reason))
		}
		if f.RouteTables != "" {
			fmt.Fprintf(w, "    route tables pointed here: %s\n", terminal(f.RouteTables))
		}
		for i, g := range f.Gateways {
			state := "up"
			if !g.Up {
				state = "down: " + terminal(g.Reason)
			}
			fmt.Fprintf(w, "    %d. %s %s\n", i+1, g.Addr, state)
		}
	}
}

// printNodeRules prints the rules a node enforces for one network, with
// what each matched.
func printNodeRules(w io.Writer, n localapi.Network) {
	if n.Rules == nil {
		return
	}
	fmt.Fprintf(w, "\n%s rules enforced here (first match decides):\n", n.ID)
	tw := table(w)
	fmt.Fprintln(tw, "CHAIN\tRULE\tPACKETS\tBYTES\tTEXT")
	for _, r := range n.Rules {
		num, text := strconv.Itoa(r.Rule), terminal(r.Text)
		if r.Rule == 0 {
			num, text = "-", "anything else: denied"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", r.Chain, num, r.Packets, r.Bytes, text)
	}
	tw.Flush()
}

func runLogs(e *env, args []string) error {
	fs := flag.NewFlagSet("logs", flag.ContinueOnError)
	socket := socketFlag(fs)
	follow := fs.Bool("f", false, "follow: keep printing new lines")
	asJSON := fs.Bool("json", false, "print JSON lines")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, "no arguments"); err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	c := localapi.NewClient(*socket)
	var seq uint64
	for first := true; ; first = false {
		wait := time.Duration(0)
		if *follow && !first {
			wait = 30 * time.Second
		}
		lines, err := c.Logs(ctx, seq, wait)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for _, l := range lines {
			if *asJSON {
				printJSONLine(e.stdout, l)
			} else {
				fmt.Fprintln(e.stdout, l.Text)
			}
			seq = l.Seq
		}
		if !*follow {
			return nil
		}
	}
}
