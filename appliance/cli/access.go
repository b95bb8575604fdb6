package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gatenet/gate/services/control"
)

// gate admin token ... and gate audit: people's access to a controller
// (named admin tokens with a role and a scope) and the log of what they
// changed. Everything these print that came from the controller (names,
// details, errors) goes through terminal: a controller is a server on the
// network, and what it says must not drive the operator's terminal.

const adminUsage = "want: admin token create --name NAME --role viewer|operator|admin [--network ID]... [--expires 720h] | admin token list | admin token revoke ID"

func runAdmin(e *env, args []string) error {
	if len(args) < 2 || args[0] != "token" {
		return usagef(adminUsage)
	}
	sub, args := args[1], args[2:]
	fs := flag.NewFlagSet("admin token "+sub, flag.ContinueOnError)
	af := addAdminFlags(fs, true)
	var name, role *string
	var expires *time.Duration
	var networks []string
	if sub == "create" {
		name = fs.String("name", "", "who holds the token (printable, at most 64 characters)")
		role = fs.String("role", "", "viewer (reads), operator (also members, routes, join tokens) or admin (everything)")
		fs.Func("network", "a network the token reaches, by ID (repeatable; none: the whole controller)", func(v string) error {
			networks = append(networks, v)
			return nil
		})
		expires = fs.Duration("expires", 0, "lifetime, e.g. 720h (0: it does not expire)")
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	var req control.CreateAdminTokenRequest
	switch sub {
	case "create":
		if err := wantArgs(pos, 0, "flags only (--name, --role)"); err != nil {
			return err
		}
		if *name == "" {
			return usagef("--name: say who holds the token")
		}
		r, err := control.ParseRole(*role)
		if err != nil {
			return usagef("--role: %v", err)
		}
		if *expires < 0 {
			return usagef("--expires %s: want a lifetime, or 0 for none", *expires)
		}
		req = control.CreateAdminTokenRequest{Name: *name, Role: r, Scope: control.Scope{Networks: networks, Controller: len(networks) == 0},
			ExpiresIn: control.Duration(*expires)}
	case "list":
		if err := wantArgs(pos, 0, "no arguments"); err != nil {
			return err
		}
	case "revoke":
		if err := wantArgs(pos, 1, "a token's ID"); err != nil {
			return err
		}
	default:
		return usagef("unknown subcommand %q: %s", sub, adminUsage)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	ctx, cancel := adminCtx()
	defer cancel()
	switch sub {
	case "create":
		t, err := c.CreateAdminToken(ctx, req)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "admin token %s: %s, role %s, scope %s, expires %s\n", terminal(t.ID), terminal(t.Name), terminal(string(t.Role)),
			scopeText(t.Scope), timeOr(t.Expires, "never"))
		fmt.Fprintln(e.stderr, "This is the only time the token is shown: the controller keeps only its hash. Store it now (in a file of mode 0600 for --token-file, or in $GATE_TOKEN); if it is lost, revoke it and make another.")
		if *af.json {
			return printJSON(e.stdout, t)
		}
		fmt.Fprintln(e.stdout, terminal(t.Secret))
		return nil
	case "list":
		ts, err := c.AdminTokens(ctx)
		if err != nil {
			return err
		}
		if *af.json {
			return printJSON(e.stdout, ts)
		}
		printAdminTokens(e.stdout, ts, time.Now())
		return nil
	}
	t, err := c.RevokeAdminToken(ctx, pos[0])
	if err != nil {
		return err
	}
	if *af.json {
		return printJSON(e.stdout, t)
	}
	fmt.Fprintf(e.stdout, "revoked %s (%s) at %s\n", terminal(t.ID), terminal(t.Name), timeOr(t.Revoked, "-"))
	return nil
}

func printAdminTokens(w io.Writer, ts []control.AdminToken, now time.Time) {
	tw := table(w)
	fmt.Fprintln(tw, "ID\tNAME\tROLE\tSCOPE\tSTATE\tEXPIRES\tLAST USED\tCREATED BY")
	for _, t := range ts {
		by := "-"
		if t.CreatedBy != "" {
			by = terminal(t.CreatedByName) + " (" + terminal(t.CreatedBy) + ")"
		}
		state := t.State(now)
		if t.Builtin {
			state += " (admin-token file)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", terminal(t.ID), terminal(t.Name), terminal(string(t.Role)), scopeText(t.Scope),
			state, timeOr(t.Expires, "never"), timeOr(t.LastUsed, "-"), by)
	}
	tw.Flush()
}

// scopeText is a scope as the CLI shows it.
func scopeText(s control.Scope) string {
	if s.Controller {
		return "whole controller"
	}
	return "networks " + terminal(strings.Join(s.Networks, ","))
}

// timeOr is t in the local zone, or none if t is zero.
func timeOr(t time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	return t.Local().Format(time.RFC3339)
}

func runAudit(e *env, args []string) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	af := addAdminFlags(fs, true)
	network := fs.String("network", "", "only this network's entries")
	since := fs.String("since", "", "only entries since: a duration back from now (1h, 168h) or a time (2025-01-02T15:04:05Z)")
	limit := fs.Int("limit", 0, fmt.Sprintf("at most this many entries, the newest (default %d, at most %d)", control.DefaultAuditLimit, control.MaxAuditLimit))
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, "flags only"); err != nil {
		return err
	}
	q := control.AuditQuery{NetworkID: *network, Limit: *limit}
	if *since != "" {
		if q.Since, err = parseSince(*since, time.Now()); err != nil {
			return err
		}
	}
	if *limit < 0 || *limit > control.MaxAuditLimit {
		return usagef("--limit %d: want 1 to %d", *limit, control.MaxAuditLimit)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	ctx, cancel := adminCtx()
	defer cancel()
	es, err := c.Audit(ctx, q)
	if err != nil {
		return err
	}
	if *af.json {
		return printJSON(e.stdout, es)
	}
	printAudit(e.stdout, es)
	return nil
}

// parseSince reads --since: a duration back from now, or a time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, usagef("--since %s: want how long back, such as 1h", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usagef("--since %q: want a duration such as 1h or a time such as 2025-01-02T15:04:05Z", s)
	}
	return t, nil
}

func printAudit(w io.Writer, es []control.AuditEntry) {
	tw := table(w)
	fmt.Fprintln(tw, "TIME\tWHO\tFROM\tACTION\tNETWORK\tTARGET\tDETAIL\tRESULT")
	for _, a := range es {
		from := "-"
		if a.Remote.IsValid() {
			from = a.Remote.String()
		}
		result := terminal(a.Outcome)
		if a.Status != 0 {
			result += fmt.Sprintf(" (%d)", a.Status)
		}
		if a.Error != "" {
			result += ": " + terminal(a.Error)
		}
		if a.Via != "" {
			from += " (" + terminal(a.Via) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s (%s)\t%s\t%s\t%s\t%s\t%s\t%s\n", timeOr(a.At, "-"), terminal(a.TokenName), terminal(a.TokenID), from,
			terminal(a.Action), terminal(orDash(a.NetworkID)), terminal(orDash(a.Target)), terminal(orDash(a.Detail)), result)
	}
	tw.Flush()
}
