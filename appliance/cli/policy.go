package cli

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/policy"
)

// runPolicy: a network's rules, who may reach what (services/policy).
func runPolicy(e *env, args []string) error {
	const subs = "show, set, add, del, test"
	if len(args) == 0 {
		return usagef("want a subcommand: %s", subs)
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("policy "+sub, flag.ContinueOnError)
	af := addAdminFlags(fs, true)
	at := 0
	var from, to *string
	switch sub {
	case "add":
		fs.IntVar(&at, "at", 0, "put the rule at this position, from 1 (default: last)")
	case "test":
		from = fs.String("from", "", "the source: a member's node ID or fingerprint, or an address")
		to = fs.String("to", "", "the destination: ADDR:PORT/tcp, ADDR:PORT/udp or ADDR/icmp ([v6]:PORT/tcp)")
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("want a network ID")
	}
	id, pos := pos[0], pos[1:]
	c, err := af.client()
	if err != nil {
		return err
	}
	ctx, cancel := adminCtx()
	defer cancel()

	// edit reads the rules, changes them and writes them back based on
	// the rules read: an edit made meanwhile by someone else is a
	// conflict, never lost (a member roaming meanwhile is none).
	edit := func(change func(policy.Policy) (policy.Policy, error)) error {
		n, err := c.Network(ctx, id)
		if err != nil {
			return err
		}
		rules, err := change(n.Rules)
		if err != nil {
			return err
		}
		ans, err := c.SetRules(ctx, id, control.SetRulesRequest{Rules: rules, Base: &n.Rules})
		if err != nil {
			return err
		}
		for _, w := range ans.Warnings {
			fmt.Fprintf(e.stderr, "warning: %s\n", terminal(w))
		}
		if *af.json {
			return printJSON(e.stdout, ans)
		}
		printRules(e.stdout, ans.Network.Rules)
		return nil
	}

	switch sub {
	case "show":
		if err := wantArgs(pos, 0, "a network ID"); err != nil {
			return err
		}
		n, err := c.Network(ctx, id)
		if err != nil {
			return err
		}
		if *af.json {
			return printJSON(e.stdout, n.Rules)
		}
		printRules(e.stdout, n.Rules)
		return nil
	case "set":
		if err := wantArgs(pos, 1, "a network ID and a file of rules, one a line (- for standard input)"); err != nil {
			return err
		}
		var b []byte
		if pos[0] == "-" {
			b, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
		} else {
			b, err = readLimited(pos[0], 1<<20)
		}
		if err != nil {
			return err
		}
		rules, err := policy.ParsePolicy(string(b))
		if err != nil {
			return fmt.Errorf("%s: %w", pos[0], err)
		}
		if rules == nil {
			rules = policy.Policy{} // no rules: deny all but replies
		}
		return edit(func(policy.Policy) (policy.Policy, error) { return rules, nil })
	case "add":
		if len(pos) == 0 {
			return usagef(`want a network ID and a rule, e.g. gate policy add NET allow from tag:web to tag:db on tcp/5432`)
		}
		r, err := policy.ParseRule(strings.Join(pos, " "))
		if err != nil {
			return usagef("%v", err)
		}
		return edit(func(p policy.Policy) (policy.Policy, error) {
			i := len(p)
			if at != 0 {
				if at < 1 || at > len(p)+1 {
					return nil, usagef("--at %d: want 1 to %d", at, len(p)+1)
				}
				i = at - 1
			}
			out := append(append(append(policy.Policy{}, p[:i]...), r), p[i:]...)
			return out, nil
		})
	case "del", "delete":
		if err := wantArgs(pos, 1, "a network ID and a rule number"); err != nil {
			return err
		}
		k, err := strconv.Atoi(pos[0])
		if err != nil {
			return usagef("%q is not a rule number", pos[0])
		}
		return edit(func(p policy.Policy) (policy.Policy, error) {
			if k < 1 || k > len(p) {
				return nil, usagef("rule %d: the network has rules 1 to %d", k, len(p))
			}
			return append(append(policy.Policy{}, p[:k-1]...), p[k:]...), nil
		})
	case "test":
		if err := wantArgs(pos, 0, "a network ID, --from and --to"); err != nil {
			return err
		}
		req, err := policyTest(*from, *to)
		if err != nil {
			return err
		}
		d, err := c.TestPolicy(ctx, id, req)
		if err != nil {
			return err
		}
		if *af.json {
			return printJSON(e.stdout, d)
		}
		verdict := "DENY"
		if d.Allow {
			verdict = "ALLOW"
		}
		fmt.Fprintf(e.stdout, "%s: %s\n", verdict, terminal(d.Reason))
		return nil
	}
	return usagef("unknown subcommand %q: want %s", sub, subs)
}

// printRules prints rules numbered, as the rules speak of them.
func printRules(w io.Writer, p policy.Policy) {
	if len(p) == 0 {
		fmt.Fprintln(w, "(no rules: everything is denied but replies)")
		return
	}
	for i, r := range p {
		fmt.Fprintf(w, "%3d  %s\n", i+1, terminal(r.String()))
	}
	fmt.Fprintln(w, "     (anything else: denied)")
}

// policyTest reads --from and --to: ADDR:PORT/PROTO, or ADDR/PROTO for a
// protocol without ports.
func policyTest(from, to string) (control.PolicyTestRequest, error) {
	req := control.PolicyTestRequest{From: from}
	if from == "" || to == "" {
		return req, usagef("want --from NODE|ADDR and --to ADDR:PORT/PROTO")
	}
	dest, proto, ok := strings.Cut(to, "/")
	if !ok {
		return req, usagef("--to %q: want ADDR:PORT/tcp, ADDR:PORT/udp or ADDR/icmp", to)
	}
	req.Proto = proto
	if ap, err := netip.ParseAddrPort(dest); err == nil {
		req.To, req.Port = ap.Addr(), ap.Port()
		return req, nil
	}
	a, err := netip.ParseAddr(strings.Trim(dest, "[]"))
	if err != nil {
		return req, usagef("--to %q: %q is not ADDR or ADDR:PORT", to, dest)
	}
	req.To = a
	return req, nil
}
