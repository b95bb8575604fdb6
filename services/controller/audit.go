package controller

// The audit log: every change and attempted change through the admin API,
// who asked (the admin token's ID and name), from where (the address the
// controller's socket saw: nothing in the request is believed about it),
// what (an action, the network, a target in it, the values asked for) and
// how it ended.
//
// Why a change's entry is written in the change's own transaction: an
// entry written after the change could be missing (the process dies
// between the two), and one written before could tell of a change that
// never happened (its write failed). So the entry travels in the request's
// context to the store's write path (Server.write, networks.go), which
// inserts it in the same transaction once the change has succeeded: the
// two commit together or not at all. A request that changed nothing
// (refused by its role or scope, a bad request, a conflict, a failure) has
// its entry written after the fact, with the status and the controller's
// answer.
//
// What is not recorded: reads, and calls without a valid token (401):
// anyone can make those, and the log would then be theirs to fill.
//
// What goes in: IDs, addresses, prefixes, roles and other values the
// controller parsed, rendered again; text a caller chose (a name, a tag)
// only Go-quoted and cut short, so that no control character, newline or
// escape sequence gets in; every field bounded; never a request body, and
// never a secret. Entries are kept for auditKeep (maintain.go prunes older
// ones).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatenet/gate/services/control"
)

// auditKeep is how long audit entries are kept.
const auditKeep = 365 * 24 * time.Hour

// maxAuditText bounds the audit log's texts (a detail, an error), in
// bytes; a value a caller chose is quoted and cut shorter (quoteShort).
const maxAuditText = 512

// auditEntry is the entry of the change a request asks for, filled in as
// the request is served.
type auditEntry struct {
	who             principal
	remote          netip.Addr
	action          string
	network, target string
	detail          string
	// written: the entry was committed with the change.
	written bool
}

type auditKey struct{}

// auditOf is the audit entry of the change ctx's request asks for; nil if
// it is none (a read, a member's call, the controller's own upkeep). Its
// setters take nil.
func auditOf(ctx context.Context) *auditEntry {
	a, _ := ctx.Value(auditKey{}).(*auditEntry)
	return a
}

func (a *auditEntry) setNetwork(id string) {
	if a != nil {
		a.network = id
	}
}

func (a *auditEntry) setTarget(t string) {
	if a != nil {
		a.target = bounded(t, maxAuditText)
	}
}

// note sets the values asked for; args a caller chose go through
// quoteShort.
func (a *auditEntry) note(format string, args ...any) {
	if a != nil {
		a.detail = bounded(fmt.Sprintf(format, args...), maxAuditText)
	}
}

func (a *auditEntry) record(id string, at time.Time, outcome string, status int, msg string) control.AuditEntry {
	return control.AuditEntry{ID: id, At: at, TokenID: a.who.id, TokenName: bounded(a.who.name, maxAuditText), Remote: a.remote,
		Action: a.action, NetworkID: a.network, Target: a.target, Detail: a.detail, Outcome: outcome, Status: status,
		Error: bounded(msg, maxAuditText), Via: a.who.via}
}

// inWrite records a's change inside the write that made it (Server.write),
// once.
func (a *auditEntry) inWrite(tx *Tx, now time.Time) error {
	if a == nil || a.written {
		return nil
	}
	if err := tx.insertAudit(a.record(newTokenID(), now, control.OutcomeOK, 0, "")); err != nil {
		return fmt.Errorf("writing the audit log: %w", err)
	}
	tx.afterCommit(func() { a.written = true })
	return nil
}

// recordAfter records, after the fact, a change that was not made (err)
// or, were a handler to change something outside Server.write, one that
// was. It is written before the answer goes out.
func (s *Server) recordAfter(r *http.Request, a *auditEntry, err error) {
	if a.written {
		return
	}
	outcome, status, msg := control.OutcomeOK, 0, ""
	switch {
	case err == nil:
		s.logf("audit: %s by %s was recorded after its change, not with it", a.action, a.who)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		outcome, msg = control.OutcomeFailed, "the client went away before an answer"
	case diskFull(err):
		outcome, status, msg = control.OutcomeFailed, http.StatusInsufficientStorage, "the controller's disk is full"
	default:
		status, msg = statusOf(err), err.Error()
		switch {
		case status == http.StatusForbidden:
			outcome = control.OutcomeDenied
		case status >= 500:
			outcome, msg = control.OutcomeFailed, "internal error; see the controller's log"
		default:
			outcome = control.OutcomeRefused
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	rec := a.record(newTokenID(), s.now(), outcome, status, msg)
	if err := s.store.Write(ctx, func(tx *Tx) error { return tx.insertAudit(rec) }); err != nil {
		s.logf("audit: recording %s by %s (%s, %s) failed: %v", a.action, a.who, a.who.id, outcome, err)
	}
}

// pathTarget is what a change's path names: a member (by node ID or
// fingerprint) or an admin token; "" if it names none or names it
// wrongly. (Handlers set the other targets: a route's dest, a new
// token's ID.)
func pathTarget(r *http.Request) string {
	if v := r.PathValue("node"); v != "" {
		ref, err := parseMemberRef(v)
		switch {
		case err != nil:
			return ""
		case ref.key != "":
			return ref.key
		}
		return ref.node
	}
	if v := strings.ToLower(r.PathValue("token")); v != "" {
		if v == control.BuiltinAdminID || len(v) == 16 && isHex(v) {
			return v
		}
		return ""
	}
	return ""
}

// bounded is s for the audit log: as it is if every character is
// printable, else Go-quoted; cut to at most n bytes.
func bounded(s string, n int) string {
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			s = strconv.Quote(s)
			break
		}
	}
	return control.Truncate(s, n)
}

const auditCols = `id, at, token_id, token_name, remote, action, network_id, target, detail, outcome, status, error, via`

func (tx *Tx) insertAudit(e control.AuditEntry) error {
	_, err := tx.tx.ExecContext(tx.ctx, `INSERT INTO audit_log (`+auditCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		e.ID, nanos(e.At), e.TokenID, e.TokenName, textAddr(e.Remote), e.Action, e.NetworkID, e.Target, e.Detail, e.Outcome, e.Status, e.Error, e.Via)
	return err
}

func scanAudit(sc interface{ Scan(...any) error }) (control.AuditEntry, error) {
	var e control.AuditEntry
	var at int64
	var remote string
	if err := sc.Scan(&e.ID, &at, &e.TokenID, &e.TokenName, &remote, &e.Action, &e.NetworkID, &e.Target, &e.Detail, &e.Outcome, &e.Status, &e.Error, &e.Via); err != nil {
		return e, err
	}
	e.At = fromNanos(at)
	if remote != "" {
		a, err := netip.ParseAddr(remote)
		if err != nil {
			return e, fmt.Errorf("audit entry %s: stored remote address: %w", e.ID, err)
		}
		e.Remote = a
	}
	return e, nil
}

// pruneAudit forgets the audit entries from before cutoff.
func (tx *Tx) pruneAudit(cutoff time.Time) error {
	_, err := tx.tx.ExecContext(tx.ctx, `DELETE FROM audit_log WHERE at < $1`, nanos(cutoff))
	return err
}

// parseAuditQuery reads GET /v1/audit's query: since and before (RFC
// 3339), network (an ID) and limit (1 to control.MaxAuditLimit).
func parseAuditQuery(v url.Values) (control.AuditQuery, error) {
	var q control.AuditQuery
	for _, k := range []string{"since", "before"} {
		s := v.Get(k)
		if s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || t.Year() < 1970 || t.Year() > 2200 {
			return q, badRequest("%s %s: want a time such as 2025-01-02T15:04:05Z", k, quoteShort(s))
		}
		if k == "since" {
			q.Since = t
		} else {
			q.Before = t
		}
	}
	if s := v.Get("network"); s != "" {
		q.NetworkID = control.NormalizeID(s)
		if err := control.CheckNetworkID(q.NetworkID); err != nil {
			return q, badRequest("network: want 16 hex digits, got %s", quoteShort(s))
		}
	}
	q.Limit = control.DefaultAuditLimit
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > control.MaxAuditLimit {
			return q, badRequest("limit %s: want 1 to %d", quoteShort(s), control.MaxAuditLimit)
		}
		q.Limit = n
	}
	return q, nil
}

// listAudit returns the audit entries q selects that p may see (those of
// its networks, unless it has the whole controller), newest first.
func (s *Server) listAudit(ctx context.Context, p principal, q control.AuditQuery) ([]control.AuditEntry, error) {
	before := int64(1<<63 - 1)
	if !q.Before.IsZero() {
		before = nanos(q.Before)
	}
	var since int64
	if !q.Since.IsZero() {
		since = nanos(q.Since)
	}
	where, args := `at >= $1 AND at < $2`, []any{since, before}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	switch {
	case q.NetworkID != "":
		where += ` AND network_id = ` + arg(q.NetworkID)
	case !p.scope.Controller:
		if len(p.scope.Networks) == 0 {
			return []control.AuditEntry{}, nil
		}
		in := make([]string, 0, len(p.scope.Networks))
		for _, id := range p.scope.Networks {
			in = append(in, arg(id))
		}
		where += ` AND network_id IN (` + strings.Join(in, ", ") + `)`
	}
	query := `SELECT ` + auditCols + ` FROM audit_log WHERE ` + where + ` ORDER BY at DESC, id DESC LIMIT ` + arg(q.Limit)
	out := []control.AuditEntry{}
	err := s.store.Read(ctx, func(tx *Tx) error {
		rows, err := tx.tx.QueryContext(tx.ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanAudit(rows)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	return out, err
}

func (s *Server) hAudit(w http.ResponseWriter, r *http.Request) error {
	q, err := parseAuditQuery(r.URL.Query())
	if err != nil {
		return err
	}
	p := principalOf(r.Context())
	if q.NetworkID != "" && !p.scope.Has(q.NetworkID) {
		return forbidden(fmt.Sprintf("%s does not reach network %s", p, q.NetworkID))
	}
	es, err := s.listAudit(r.Context(), p, q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, es)
	return nil
}
