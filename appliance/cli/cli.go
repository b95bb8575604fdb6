// Package cli is Gate's command line: it parses arguments, calls the
// daemon's local API or the controller's admin API, and prints tables or
// JSON. It holds no logic of its own beyond formatting and never touches
// the kernel.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"unicode"
)

// env carries the process's outputs and version through the commands.
type env struct {
	stdout, stderr io.Writer
	version        string
}

type command struct {
	name    string
	summary string
	run     func(e *env, args []string) error
}

func commands() []command {
	return []command{
		{"up", "run the node daemon (WireGuard, routes, firewall, local API)", runUp},
		{"controller", "run a controller of networks; gate controller migrate: update its database's schema and exit", runController},
		{"join", "join a network: gate join <join string | network ID>", runJoin},
		{"leave", "leave a network: gate leave <network ID>", runLeave},
		{"status", "show this node: ID, version, online", runStatus},
		{"networks", "list joined networks with status, addresses, routes", runNetworks},
		{"interfaces", "list the NICs the appliance manages: addresses, DHCP leases, WAN", runInterfaces},
		{"set-interface", "appliance: set a NIC to DHCP or a static address, reverting unless confirmed", runSetInterface},
		{"confirm", "appliance: keep the change waiting for confirmation", runConfirm},
		{"logs", "print the daemon's recent log (-f to follow)", runLogs},
		{"check-config", "check user-data or a preseed as the appliance would at boot: gate check-config FILE", runCheckConfig},
		{"tui", "the console: status, join and leave networks, logs", runTUI},
		{"network", "admin: create|list|show|delete networks, route add|del", runNetwork},
		{"member", "admin: list|allow|deny|remove|set-ip|tag members", runMember},
		{"token", "admin: create|list|revoke join tokens", runToken},
		{"policy", "admin: show|set|add|del a network's rules (who may reach what), test a packet against them", runPolicy},
		{"admin", "admin: token create|list|revoke: named admin tokens, each with a role and a scope", runAdmin},
		{"audit", "admin: the audit log: who changed what through the admin API, when, from where", runAudit},
		{"version", "print the version", func(e *env, _ []string) error { fmt.Fprintln(e.stdout, e.version); return nil }},
	}
}

// Main runs the command line and returns the exit code.
func Main(args []string, version string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr, version: version}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(e, args[1:])
			if err == nil {
				return 0
			}
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			var ue usageError
			if errors.As(err, &ue) {
				fmt.Fprintf(stderr, "gate %s: %v\n", c.name, err)
				return 2
			}
			fmt.Fprintf(stderr, "gate %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "gate: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: gate <command> [flags] [args]\n\ncommands:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nRun gate <command> -h for a command's flags.")
}

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// parse parses flags anywhere among the arguments (gate join X --address Y)
// and returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(os.Stderr)
				fs.PrintDefaults()
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func wantArgs(pos []string, n int, names string) error {
	if len(pos) != n {
		return usagef("want %s, got %d argument(s)", names, len(pos))
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printJSONLine(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(w, "%s\n", b)
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// terminal renders text that came from the network (a member's hostname,
// a controller's answer) for a terminal: as it is when every character is
// printable, else quoted with Go escapes, so that no control character or
// escape sequence reaches the operator's terminal.
func terminal(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func joinStrings[T fmt.Stringer](xs []T) string {
	if len(xs) == 0 {
		return "-"
	}
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = x.String()
	}
	return strings.Join(s, ",")
}

// signalContext is cancelled on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
