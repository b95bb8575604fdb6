package cli

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/controller"
	"github.com/gatenet/gate/services/localapi"
)

const defaultControllerState = "/var/lib/gate/controller"

func runController(e *env, args []string) error {
	fs := flag.NewFlagSet("controller", flag.ContinueOnError)
	stateDir := fs.String("state", envOr("GATE_CONTROLLER_STATE", defaultControllerState), "controller state directory: key, admin token, database ($GATE_CONTROLLER_STATE)")
	db := fs.String("db", os.Getenv("GATE_CONTROLLER_DB"), "database: postgres://USER@HOST/NAME for PostgreSQL (its password in ~/.pgpass or $PGPASSWORD: arguments show in ps), or a SQLite file ($GATE_CONTROLLER_DB; default: SQLite, controller.db in --state)")
	listen := fs.String("listen", ":8443", "address to listen on (TLS)")
	advertise := fs.String("advertise", "", "HOST:PORT members use to reach this controller (default: --listen, if it names a host)")
	memLimit := memoryLimitFlag(fs, "448MiB", "each member's TLS connection and long-poll hold ~25 KB of heap and ~13 KB of stacks: with 448MiB, 10,000 members measured 460 MiB at rest and 487 at the peak of their join storm, see make bench")
	maxConns := fs.Int("max-conns", controller.DefaultMaxConns, "connections open at once, TLS handshakes included; one more is closed at once (0: no cap)")
	daemonSocket := fs.String("daemon-socket", envOr("GATE_SOCKET", localapi.DefaultSocket), "the local API of `gate up` on this host, asked to open --listen's port in its firewall while the controller runs (\"\": do not ask)")
	maxPerSource := fs.Int("max-conns-per-source", controller.DefaultMaxConnsPerSource, "connections open at once from one IPv4 address or IPv6 /64; members behind one NAT share it, one connection per network each (0: no cap)")
	web := fs.String("web", "", "serve the web console on HOST:PORT: a loopback address (reach it through an SSH tunnel), or any with --web-cert and --web-key")
	webCert := fs.String("web-cert", "", "the web console's TLS certificate (PEM, chain included), one browsers trust; re-read when it changes")
	webKey := fs.String("web-key", "", "the web console certificate's key (PEM)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 1 && pos[0] == "migrate" {
		return migrateController(e, *db, *stateDir)
	}
	if err := wantArgs(pos, 0, "no arguments, or migrate"); err != nil {
		return err
	}
	if *maxConns < 0 || *maxPerSource < 0 {
		return usagef("--max-conns and --max-conns-per-source: want a count, 0 for no cap")
	}
	noCap := func(n int) int { // Config's 0 is the default, a negative value no cap
		if n == 0 {
			return -1
		}
		return n
	}
	stopLimit, err := applyMemoryLimit(*memLimit)
	if err != nil {
		return err
	}
	defer stopLimit()
	logger := log.New(e.stderr, "", log.LstdFlags)
	s, err := controller.New(controller.Config{StateDir: *stateDir, DB: *db, Listen: *listen, Advertise: *advertise, Logf: logger.Printf,
		MaxConns: noCap(*maxConns), MaxConnsPerSource: noCap(*maxPerSource),
		Web: controller.WebConfig{Listen: *web, CertFile: *webCert, KeyFile: *webKey}})
	if err != nil {
		return err
	}
	defer s.Close()
	logger.Printf("controller %s listening on %s; admin token in %s; database %s", s.Pin(), *listen, filepath.Join(*stateDir, "admin-token"), dbName(*db, *stateDir))
	ctx, cancel := signalContext()
	defer cancel()
	go holdBeside(ctx, *daemonSocket, *listen, logger.Printf)
	return s.Serve(ctx)
}

// migrateController is gate controller migrate: it brings the database's
// schema up to date, as a controller does when it starts, and says which
// version it is at.
func migrateController(e *env, db, stateDir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st, err := controller.Open(ctx, db, stateDir)
	if err != nil {
		return err
	}
	defer st.Close()
	v, err := st.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("database %s: %w", dbName(db, stateDir), err)
	}
	fmt.Fprintf(e.stdout, "database %s: schema version %d\n", dbName(db, stateDir), v)
	return nil
}

// dbName is the controller's database as it may be shown (no password).
func dbName(db, stateDir string) string {
	if db == "" {
		return filepath.Join(stateDir, "controller.db")
	}
	return controller.Redacted(db)
}

// adminFlags are the flags that locate a controller and its admin token.
type adminFlags struct {
	controller, token, tokenFile, state *string
	json                                *bool
}

func addAdminFlags(fs *flag.FlagSet, withJSON bool) adminFlags {
	a := adminFlags{
		controller: fs.String("controller", os.Getenv("GATE_CONTROLLER"), "controller: gate://HOST:PORT?pin=sha256:... ($GATE_CONTROLLER; default: read from --controller-state)"),
		token:      fs.String("token", "", "admin token (prefer --token-file or $GATE_TOKEN: arguments show in ps)"),
		tokenFile:  fs.String("token-file", os.Getenv("GATE_TOKEN_FILE"), "file holding the admin token ($GATE_TOKEN_FILE)"),
		state:      fs.String("controller-state", envOr("GATE_CONTROLLER_STATE", defaultControllerState), "on the controller's host: its state directory, to read controller.url and admin-token from"),
	}
	if withJSON {
		a.json = fs.Bool("json", false, "print JSON")
	}
	return a
}

func (a adminFlags) client() (*control.Client, error) {
	addr := *a.controller
	if addr == "" {
		b, err := os.ReadFile(filepath.Join(*a.state, "controller.url"))
		if err != nil {
			return nil, fmt.Errorf("no controller given: set --controller or $GATE_CONTROLLER (gate://HOST:PORT?pin=...), or run where the controller's state is (%v)", err)
		}
		addr = strings.TrimSpace(string(b))
	}
	js, err := control.ParseControllerAddress(addr)
	if err != nil {
		return nil, fmt.Errorf("--controller: %w", err)
	}
	token := *a.token
	if token == "" {
		token = os.Getenv("GATE_TOKEN")
	}
	if token == "" {
		file := *a.tokenFile
		if file == "" {
			file = filepath.Join(*a.state, "admin-token")
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("no admin token: set --token-file or $GATE_TOKEN (%v)", err)
		}
		token = strings.TrimSpace(string(b))
	}
	return control.NewClient(reachable(js.Controllers()), js.Pin, nil, token)
}

// reachable is the first of a controller's addresses (its replicas) that
// takes a TCP connection within a second, or the first if none does (its
// error then says why). Only the connection is tried, never a request:
// an admin's change is sent once, to one replica.
func reachable(addrs []string) string {
	if len(addrs) > 1 {
		for _, a := range addrs {
			if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
				c.Close()
				return a
			}
		}
	}
	return addrs[0]
}

func adminCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

func runNetwork(e *env, args []string) error {
	if len(args) == 0 {
		return usagef("want a subcommand: create, list, show, delete, route")
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("network "+sub, flag.ContinueOnError)
	af := addAdminFlags(fs, true)
	var name, cidr *string
	var mtu *int
	var auto, requireToken *bool
	if sub == "create" {
		name = fs.String("name", "", "network name")
		cidr = fs.String("cidr", "", "overlay IPv4 CIDR, e.g. 192.168.254.0/24")
		mtu = fs.Int("mtu", 0, fmt.Sprintf("tunnel MTU (default %d)", control.DefaultMTU))
		auto = fs.Bool("auto-allow", false, "allow new members automatically (otherwise an admin allows each)")
		requireToken = fs.Bool("require-token", false, "admit new members only with a join token (otherwise a node that knows the network ID can ask to join and waits for an admin)")
	}
	var ro routeOpts
	if sub == "route" {
		fs.StringVar(&ro.failback, "failback", "", "with backups: how long a more preferred gateway must be healthy again before members move back to it (e.g. 30s, or never; default 10s)")
		fs.Func("probe", "a target behind the gateways each of them checks, ADDR:PORT/tcp or ADDR/icmp (repeatable)", func(v string) error {
			p, err := control.ParseProbe(v)
			if err != nil {
				return err
			}
			ro.probes = append(ro.probes, p)
			return nil
		})
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	ctx, cancel := adminCtx()
	defer cancel()
	c, err := af.client()
	if err != nil {
		return err
	}
	switch sub {
	case "create":
		if err := wantArgs(pos, 0, "flags only (--name, --cidr)"); err != nil {
			return err
		}
		p, err := netip.ParsePrefix(*cidr)
		if err != nil {
			return usagef("--cidr %q is not a CIDR like 192.168.254.0/24", *cidr)
		}
		n, err := c.CreateNetwork(ctx, control.CreateNetworkRequest{Name: *name, CIDR: p, MTU: *mtu, AutoAllow: *auto, RequireToken: *requireToken})
		if err != nil {
			return err
		}
		if *af.json {
			return printJSON(e.stdout, n)
		}
		fmt.Fprintln(e.stdout, terminal(n.ID))
		return nil
	case "list":
		if err := wantArgs(pos, 0, "no arguments"); err != nil {
			return err
		}
		ns, err := c.Networks(ctx)
		if err != nil {
			return err
		}
		if *af.json {
			return printJSON(e.stdout, ns)
		}
		tw := table(e.stdout)
		fmt.Fprintln(tw, "ID\tNAME\tCIDR\tMTU\tAUTO-ALLOW\tROUTES")
		for _, n := range ns {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%v\t%d\n", terminal(n.ID), terminal(n.Name), n.CIDR, n.MTU, n.AutoAllow, len(n.Routes))
		}
		return tw.Flush()
	case "show":
		if err := wantArgs(pos, 1, "a network ID"); err != nil {
			return err
		}
		n, err := c.Network(ctx, pos[0])
		if err != nil {
			return err
		}
		ms, err := c.Members(ctx, pos[0])
		if err != nil {
			return err
		}
		if *af.json {
			return printJSON(e.stdout, struct {
				control.Network
				Members []control.Member `json:"members"`
			}{n, ms})
		}
		fmt.Fprintf(e.stdout, "id:            %s\nname:          %s\ncidr:          %s\nmtu:           %d\nauto-allow:    %v\nrequire-token: %v\nrevision:      %d\nroutes:\n", terminal(n.ID), terminal(n.Name), n.CIDR, n.MTU, n.AutoAllow, n.RequireToken, n.Revision)
		for _, r := range n.Routes {
			fmt.Fprintf(e.stdout, "  %s\n", r)
		}
		fmt.Fprintln(e.stdout, "rules (first match decides):")
		printRules(e.stdout, n.Rules)
		fmt.Fprintln(e.stdout, "members:")
		printMembers(e, ms)
		return nil
	case "delete":
		if err := wantArgs(pos, 1, "a network ID"); err != nil {
			return err
		}
		if err := c.DeleteNetwork(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "deleted %s\n", pos[0])
		return nil
	case "route":
		return runRoute(e, c, ctx, pos, ro, *af.json)
	}
	return usagef("unknown subcommand %q: want create, list, show, delete, route", sub)
}

// routeOpts are the flags of route add.
type routeOpts struct {
	failback string
	probes   []control.Probe
}

// routeUsage is how route is used.
const routeUsage = "want: route add NETWORK CIDR via ADDRESS [via BACKUP...] [--failback 10s|never] [--probe ADDR:PORT/tcp|ADDR/icmp]... | route del NETWORK CIDR"

// runRoute adds or deletes a route.
func runRoute(e *env, c *control.Client, ctx context.Context, pos []string, ro routeOpts, asJSON bool) error {
	if len(pos) == 0 {
		return usagef(routeUsage)
	}
	var n control.Network
	var err error
	switch pos[0] {
	case "add", "set":
		r, err := parseRoute(pos[1:], ro)
		if err != nil {
			return err
		}
		put := c.AddRoute
		if pos[0] == "set" {
			put = c.SetRoute // replaces the route to r.Dest in one change
		}
		if n, err = put(ctx, pos[1], r); err != nil {
			return err
		}
	case "del", "delete":
		if len(pos) != 3 {
			return usagef("want: route del NETWORK CIDR")
		}
		dest, err := netip.ParsePrefix(pos[2])
		if err != nil {
			return usagef("%q is not a CIDR", pos[2])
		}
		if n, err = c.DeleteRoute(ctx, pos[1], dest); err != nil {
			return err
		}
	default:
		return usagef("unknown route subcommand %q: want add, set or del", pos[0])
	}
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(e.stdout, n.Routes)
	}
	for _, r := range n.Routes {
		fmt.Fprintln(e.stdout, r)
	}
	return nil
}

// parseRoute reads NETWORK CIDR via ADDRESS [via BACKUP...] and the
// flags into a route (the network is the caller's).
func parseRoute(args []string, ro routeOpts) (control.Route, error) {
	if len(args) < 4 || len(args)%2 != 0 {
		return control.Route{}, usagef(routeUsage)
	}
	var r control.Route
	dest, err := netip.ParsePrefix(args[1])
	if err != nil {
		return r, usagef("%q is not a CIDR", args[1])
	}
	r.Dest = dest
	for i := 2; i < len(args); i += 2 {
		if args[i] != "via" {
			return r, usagef("%q where via was expected; %s", args[i], routeUsage)
		}
		a, err := netip.ParseAddr(args[i+1])
		if err != nil {
			return r, usagef("%q is not an IP address", args[i+1])
		}
		if i == 2 {
			r.Via = a
		} else {
			r.Backups = append(r.Backups, a)
		}
	}
	if ro.failback != "" {
		if r.Failback, err = control.ParseFailback(ro.failback); err != nil {
			return r, usagef("--failback: %v", err)
		}
	}
	r.Probes = ro.probes
	return r, nil
}

func printMembers(e *env, ms []control.Member) {
	tw := table(e.stdout)
	fmt.Fprintln(tw, "NODE\tHOSTNAME\tSTATE\tADDRESS\tTAGS\tENDPOINTS\tLAST SEEN\tVERSION\tFINGERPRINT")
	for _, m := range ms {
		seen := "-"
		if !m.LastSeen.IsZero() {
			seen = time.Since(m.LastSeen).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", terminal(m.NodeID), terminal(orDash(m.Hostname)), terminal(m.State), joinStrings(m.Addresses), terminal(orDash(strings.Join(m.Tags, ","))), terminal(joinStrings(m.Endpoints)), seen, terminal(orDash(m.Version)), terminal(orDash(m.Fingerprint)))
	}
	tw.Flush()
}

func runMember(e *env, args []string) error {
	if len(args) == 0 {
		return usagef("want a subcommand: list, allow, deny, remove, set-ip, tag")
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("member "+sub, flag.ContinueOnError)
	af := addAdminFlags(fs, true)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	ctx, cancel := adminCtx()
	defer cancel()
	var m control.Member
	switch sub {
	case "list":
		if err := wantArgs(pos, 1, "a network ID"); err != nil {
			return err
		}
		ms, err := c.Members(ctx, pos[0])
		if err != nil {
			return err
		}
		if *af.json {
			return printJSON(e.stdout, ms)
		}
		printMembers(e, ms)
		return nil
	case "allow", "deny":
		if err := wantArgs(pos, 2, "a network ID and a node ID or fingerprint (sha256:...)"); err != nil {
			return err
		}
		if sub == "allow" {
			m, err = c.AllowMember(ctx, pos[0], pos[1])
		} else {
			m, err = c.DenyMember(ctx, pos[0], pos[1])
		}
	case "set-ip":
		if err := wantArgs(pos, 3, "a network ID, a node ID and an address"); err != nil {
			return err
		}
		a, perr := netip.ParseAddr(pos[2])
		if perr != nil {
			return usagef("%q is not an IP address", pos[2])
		}
		m, err = c.SetMemberAddress(ctx, pos[0], pos[1], a)
	case "tag":
		if err := wantArgs(pos, 3, `a network ID, a node ID and its tags, comma-separated ("" for none)`); err != nil {
			return err
		}
		m, err = c.SetMemberTags(ctx, pos[0], pos[1], splitList(pos[2]))
	case "remove":
		if err := wantArgs(pos, 2, "a network ID and a node ID"); err != nil {
			return err
		}
		if err := c.RemoveMember(ctx, pos[0], pos[1]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "removed %s from %s\n", pos[1], pos[0])
		return nil
	default:
		return usagef("unknown subcommand %q: want list, allow, deny, remove, set-ip, tag", sub)
	}
	if err != nil {
		return err
	}
	if *af.json {
		return printJSON(e.stdout, m)
	}
	printMembers(e, []control.Member{m})
	return nil
}

func runToken(e *env, args []string) error {
	if len(args) == 0 {
		return usagef("want a subcommand: create, list, revoke")
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("token "+sub, flag.ContinueOnError)
	af := addAdminFlags(fs, true)
	reusable := fs.Bool("reusable", false, "the token can be used by many nodes (default: once)")
	expires := fs.Duration("expires", control.DefaultTokenLifetime, "lifetime")
	allow := fs.Bool("allow", false, "nodes joining with it are allowed at once")
	addr := fs.String("address", "", "static overlay address for the node that uses it (single-use tokens)")
	note := fs.String("note", "", "free text shown in listings")
	tags := fs.String("tags", "", "tags for the nodes that join with it, comma-separated (they name them in the network's rules)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if sub == "revoke" {
		if err := wantArgs(pos, 2, "a network ID and a join token's ID (gate token list)"); err != nil {
			return err
		}
	} else if err := wantArgs(pos, 1, "a network ID"); err != nil {
		return err
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	ctx, cancel := adminCtx()
	defer cancel()
	switch sub {
	case "revoke":
		t, err := c.RevokeToken(ctx, pos[0], pos[1])
		if err != nil {
			return err
		}
		if *af.json {
			return printJSON(e.stdout, t)
		}
		fmt.Fprintf(e.stdout, "join token %s revoked at %s: nodes are refused it from now on (members that joined with it stay)\n", terminal(t.ID), t.Revoked.Format(time.RFC3339))
		return nil
	case "create":
		req := control.CreateTokenRequest{Reusable: *reusable, ExpiresIn: control.Duration(*expires), Allow: *allow, Note: *note, Tags: splitList(*tags)}
		if *addr != "" {
			a, err := netip.ParseAddr(*addr)
			if err != nil {
				return usagef("--address %q is not an IP address", *addr)
			}
			req.Address = a
		}
		t, err := c.CreateToken(ctx, pos[0], req)
		if err != nil {
			return err
		}
		if *af.json {
			return printJSON(e.stdout, t)
		}
		fmt.Fprintln(e.stdout, terminal(t.JoinString))
		return nil
	case "list":
		ts, err := c.Tokens(ctx, pos[0])
		if err != nil {
			return err
		}
		if *af.json {
			return printJSON(e.stdout, ts)
		}
		tw := table(e.stdout)
		fmt.Fprintln(tw, "ID\tREUSABLE\tALLOW\tADDRESS\tTAGS\tEXPIRES\tUSES\tUSED BY\tNOTE")
		// A revoked token shows when, in place of its expiry.
		for _, t := range ts {
			a := "-"
			if t.Address.IsValid() {
				a = t.Address.String()
			}
			by := orDash(t.UsedBy)
			if t.UsedByInstance != "" {
				by += " (" + t.UsedByInstance + ")"
			}
			expires := t.Expires.Format(time.RFC3339)
			if !t.Revoked.IsZero() {
				expires = "revoked " + t.Revoked.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%v\t%v\t%s\t%s\t%s\t%d\t%s\t%s\n", terminal(t.ID), t.Reusable, t.Allow, a, terminal(orDash(strings.Join(t.Tags, ","))), expires, t.Uses, terminal(by), terminal(orDash(t.Note)))
		}
		return tw.Flush()
	}
	return usagef("unknown subcommand %q: want create, list, revoke", sub)
}

// splitList splits a comma-separated list, dropping blanks: "" is none.
func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
