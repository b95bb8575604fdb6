package controller

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatenet/gate/services/control"
)

// mustAdminToken makes an admin token with the built-in admin and returns
// it (its Secret is the token).
func (e *env) mustAdminToken(name string, role control.Role, networks ...string) control.AdminToken {
	e.t.Helper()
	sc := control.Scope{Networks: networks}
	if len(networks) == 0 {
		sc.Controller = true
	}
	t, err := e.admin.CreateAdminToken(e.ctx, control.CreateAdminTokenRequest{Name: name, Role: role, Scope: sc})
	if err != nil {
		e.t.Fatal(err)
	}
	if !strings.HasPrefix(t.Secret, control.AdminTokenPrefix) {
		e.t.Fatalf("admin token %+v: secret does not start with %s", t, control.AdminTokenPrefix)
	}
	return t
}

// auditLog is the whole audit log, newest first, as the built-in admin
// sees it.
func (e *env) auditLog() []control.AuditEntry {
	e.t.Helper()
	es, err := e.admin.Audit(e.ctx, control.AuditQuery{Limit: control.MaxAuditLimit})
	if err != nil {
		e.t.Fatal(err)
	}
	return es
}

// TestAccessRoles: the role × route matrix. Each admin route is called
// with a token of each role (whole controller): a role below the route's
// is refused (403, naming the role it lacks) and changes nothing; a role
// at or above it gets past authorization (whatever the route then
// answers). The built-in admin-token file is an admin.
func TestAccessRoles(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("a", "10.9.0.0/24", false)
	doomed := e.mustNetwork("doomed", "10.10.0.0/24", false)
	n := e.newNode()
	e.mustJoin(n, nw.ID, "")
	const viewer, operator, admin = control.RoleViewer, control.RoleOperator, control.RoleAdmin
	tokens := map[string]string{
		"viewer":   e.mustAdminToken("vera", viewer).Secret,
		"operator": e.mustAdminToken("otto", operator).Secret,
		"admin":    e.mustAdminToken("ada", admin).Secret,
		"builtin":  e.s.AdminToken(),
	}
	roleOf := map[string]control.Role{"viewer": viewer, "operator": operator, "admin": admin, "builtin": admin}
	net, mem := "/v1/networks/"+nw.ID, "/v1/networks/"+nw.ID+"/members/"+n.id.NodeID()
	routes := []struct {
		method, path, body string
		need               control.Role
	}{
		{"GET", "/v1/networks", "", viewer},
		{"GET", net, "", viewer},
		{"GET", net + "/members", "", viewer},
		{"GET", net + "/tokens", "", viewer},
		{"POST", net + "/policy/test", `{"from":"10.9.0.1","to":"10.9.0.2","proto":"icmp"}`, viewer},
		{"GET", "/v1/audit", "", viewer},
		{"POST", mem + "/allow", "", operator},
		{"POST", mem + "/deny", "", operator},
		{"PUT", mem + "/address", `{"address":"10.9.0.50"}`, operator},
		{"PUT", mem + "/tags", `{"tags":["web"]}`, operator},
		{"POST", net + "/routes", `{"dest":"172.20.0.0/16","via":"10.9.0.50"}`, operator},
		{"DELETE", net + "/routes?dest=172.20.0.0/16", "", operator},
		{"POST", net + "/tokens", `{}`, operator},
		{"DELETE", mem, "", operator},
		{"PATCH", net, `{"mtu":1400}`, admin},
		{"PUT", net + "/rules", `{"rules":["allow from any to any"]}`, admin},
		{"POST", "/v1/networks", `{"name":"new","cidr":"10.50.0.0/24"}`, admin},
		{"GET", "/v1/admin/tokens", "", admin},
		{"POST", "/v1/admin/tokens", `{"name":"x","role":"viewer","scope":{"controller":true}}`, admin},
		{"DELETE", "/v1/admin/tokens/0000000000000000", "", admin},
		{"DELETE", "/v1/networks/" + doomed.ID, "", admin},
	}
	base := map[string]int{}
	for _, a := range e.auditLog() {
		base[a.TokenName]++
	}
	for _, who := range []string{"viewer", "operator", "admin", "builtin"} {
		for _, rt := range routes {
			before := e.snapshot()
			st, msg := e.raw(rt.method, rt.path, rt.body, tokens[who])
			allowed := roleOf[who].Includes(rt.need)
			switch {
			case !allowed && (st != 403 || !strings.Contains(msg, "needs the "+string(rt.need)+" role")):
				t.Errorf("%s: %s %s: %d %q, want 403 naming the %s role", who, rt.method, rt.path, st, msg, rt.need)
			case !allowed && e.snapshot() != before:
				t.Errorf("%s: %s %s was refused but changed something", who, rt.method, rt.path)
			case allowed && (st == 401 || st == 403):
				t.Errorf("%s: %s %s: %d %q, want it allowed", who, rt.method, rt.path, st, msg)
			}
		}
	}
	// Every change asked for is in the audit log, by whom and how it ended.
	changes := 0
	for _, rt := range routes {
		if rt.method != "GET" && !strings.HasSuffix(rt.path, "/policy/test") {
			changes++
		}
	}
	count := map[string]int{}
	for _, a := range e.auditLog() {
		count[a.TokenName]++
		if (a.Outcome == control.OutcomeDenied) != (a.Status == 403) {
			t.Errorf("audit entry %+v: outcome and status disagree", a)
		}
	}
	for _, name := range []string{"vera", "otto", "ada", "admin-token"} {
		if count[name]-base[name] != changes {
			t.Errorf("audit: %d entries by %s, want %d (one per change asked for)", count[name]-base[name], name, changes)
		}
	}
}

// TestAccessScope: a token scoped to network A sees and touches A only.
// B, and a network that does not exist, are refused alike (403), so that
// the token cannot tell which networks exist; making networks and admin
// tokens needs the whole controller, whatever the role.
func TestAccessScope(t *testing.T) {
	e := newEnv(t)
	a := e.mustNetwork("a", "10.1.0.0/24", false)
	b := e.mustNetwork("b", "10.2.0.0/24", false)
	na, nb := e.newNode(), e.newNode()
	e.mustJoin(na, a.ID, "")
	e.mustJoin(nb, b.ID, "")
	if _, err := e.admin.AllowMember(e.ctx, b.ID, nb.id.NodeID()); err != nil { // a change in B, in the log
		t.Fatal(err)
	}
	opSecret := e.mustAdminToken("a-op", control.RoleOperator, strings.ToUpper(a.ID)).Secret
	op := e.client(nil, opSecret)
	adm := e.client(nil, e.mustAdminToken("a-admin", control.RoleAdmin, a.ID).Secret)

	ns, err := op.Networks(e.ctx)
	if err != nil || len(ns) != 1 || ns[0].ID != a.ID {
		t.Errorf("scoped list: %+v, %v; want network a alone", ns, err)
	}
	if _, err := op.AllowMember(e.ctx, a.ID, na.id.NodeID()); err != nil {
		t.Errorf("allow in scope: %v", err)
	}
	before := e.snapshot()
	const missing = "00000000000000aa"
	for _, id := range []string{b.ID, missing} {
		_, err = op.Network(e.ctx, id)
		wantAPIError(t, "get "+id, err, 403, "admin token \"a-op\" (operator) does not reach network "+id)
		_, err = op.Members(e.ctx, id)
		wantAPIError(t, "members "+id, err, 403, "does not reach network "+id)
		_, err = op.AllowMember(e.ctx, id, nb.id.NodeID())
		wantAPIError(t, "allow "+id, err, 403, "does not reach network "+id)
		_, err = op.Tokens(e.ctx, id)
		wantAPIError(t, "tokens "+id, err, 403, "does not reach network "+id)
		_, err = op.CreateToken(e.ctx, id, control.CreateTokenRequest{})
		wantAPIError(t, "create token "+id, err, 403, "does not reach network "+id)
		_, err = op.Audit(e.ctx, control.AuditQuery{NetworkID: id})
		wantAPIError(t, "audit "+id, err, 403, "does not reach network "+id)
		err = adm.DeleteNetwork(e.ctx, id)
		wantAPIError(t, "delete "+id, err, 403, "does not reach network "+id)
	}
	_, err = adm.CreateNetwork(e.ctx, control.CreateNetworkRequest{Name: "c", CIDR: netip.MustParsePrefix("10.3.0.0/24")})
	wantAPIError(t, "scoped admin makes a network", err, 403, "reaches networks "+a.ID+" only: network.create needs a token for the whole controller")
	_, err = adm.CreateAdminToken(e.ctx, control.CreateAdminTokenRequest{Name: "x", Role: control.RoleViewer, Scope: control.Scope{Networks: []string{a.ID}}})
	wantAPIError(t, "scoped admin makes a token in its scope", err, 403, "admin_token.create needs a token for the whole controller")
	_, err = adm.AdminTokens(e.ctx)
	wantAPIError(t, "scoped admin lists tokens", err, 403, "needs a token for the whole controller")
	if st, msg := e.raw("GET", "/v1/networks/nothex", "", opSecret); st != 400 {
		t.Errorf("scoped token, malformed ID: %d %q, want 400", st, msg)
	}
	if after := e.snapshot(); after != before {
		t.Errorf("refused calls changed state")
	}

	// The audit log: the scoped token sees A's entries only.
	es, err := op.Audit(e.ctx, control.AuditQuery{})
	if err != nil || len(es) == 0 {
		t.Fatalf("scoped audit: %+v, %v", es, err)
	}
	for _, x := range es {
		if x.NetworkID != a.ID {
			t.Errorf("scoped token sees %+v", x)
		}
	}
	if all := e.auditLog(); !slices.ContainsFunc(all, func(x control.AuditEntry) bool { return x.NetworkID == b.ID }) {
		t.Errorf("the whole controller's log has no entry of network b: %+v", all)
	}

	// A scoped admin has the whole of its network.
	if _, err := adm.SetRules(e.ctx, a.ID, control.SetRulesRequest{Rules: nil}); !control.IsStatus(err, 400) {
		t.Errorf("scoped admin sets rules: %v, want it past authorization (400 for no rules)", err)
	}
	if err := adm.DeleteNetwork(e.ctx, a.ID); err != nil {
		t.Errorf("scoped admin deletes its network: %v", err)
	}
	// Its network gone, the token reaches nothing.
	if ns, err := op.Networks(e.ctx); err != nil || len(ns) != 0 {
		t.Errorf("after its network was deleted: %+v, %v", ns, err)
	}
}

// TestAdminTokenLifecycle: a token works until it expires or is revoked,
// and then is refused with a 401 that tells its holder why; a stranger's
// token is refused without a reason. Only the SHA-256 of a secret is
// stored; the secret is shown once. The built-in token keeps working and
// cannot be revoked through the API.
func TestAdminTokenLifecycle(t *testing.T) {
	e := newEnv(t)
	start := e.clock.Now()
	tok, err := e.admin.CreateAdminToken(e.ctx, control.CreateAdminTokenRequest{Name: "Zoë (CI)", Role: control.RoleViewer,
		Scope: control.Scope{Controller: true}, ExpiresIn: control.Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Name != "Zoë (CI)" || tok.CreatedBy != control.BuiltinAdminID || !tok.Expires.Equal(start.Add(time.Hour)) || tok.State(start) != "active" {
		t.Errorf("created %+v", tok)
	}
	c := e.client(nil, tok.Secret)
	if _, err := c.Networks(e.ctx); err != nil {
		t.Fatalf("new token: %v", err)
	}
	list, err := e.admin.AdminTokens(e.ctx)
	if err != nil || len(list) != 2 || !list[0].Builtin || list[1].ID != tok.ID || list[1].Secret != "" || list[1].LastUsed.IsZero() {
		t.Fatalf("list: %+v, %v", list, err)
	}

	// Nothing stores or logs the secret.
	_, secret, _ := control.SplitAdminToken(tok.Secret)
	e.s.store.Read(e.ctx, func(tx *Tx) error {
		for _, q := range []string{`SELECT ` + adminTokenCols + ` FROM admin_tokens`, `SELECT ` + auditCols + ` FROM audit_log`} {
			rows, err := tx.tx.QueryContext(tx.ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				rows.Scan(ptrs...)
				if s := fmt.Sprint(vals...); strings.Contains(s, secret) {
					t.Errorf("the secret is stored: %s", s)
				}
			}
			rows.Close()
		}
		return nil
	})
	if strings.Contains(e.allLogs(), secret) {
		t.Errorf("the secret is in the log")
	}

	// Wrong secrets: refused, and nothing said of the token.
	id := tok.ID
	mangle := func(s string) string { // s with its last character changed
		if strings.HasSuffix(s, "A") {
			return s[:len(s)-1] + "B"
		}
		return s[:len(s)-1] + "A"
	}
	for what, bad := range map[string]string{
		"last character changed": mangle(tok.Secret),
		"one character more":     tok.Secret + "A",
		"one character less":     tok.Secret[:len(tok.Secret)-1],
		"unknown ID":             control.AdminTokenPrefix + "0123456789abcdef_" + secret,
		"no prefix":              strings.TrimPrefix(tok.Secret, control.AdminTokenPrefix),
		"secret alone":           secret,
	} {
		_, err := e.client(nil, bad).Networks(e.ctx)
		wantAPIError(t, what, err, 401, "wrong admin token")
		if err != nil && (strings.Contains(err.Error(), id) || strings.Contains(err.Error(), "Zo")) {
			t.Errorf("%s: the refusal names the token: %v", what, err)
		}
	}

	// Expired: the holder is told.
	e.clock.Advance(time.Hour)
	_, err = c.Networks(e.ctx)
	wantAPIError(t, "expired", err, 401, "admin token "+id+` ("Zoë (CI)") expired at`)

	// Revoked: refused at once, the holder told; a wrong secret still
	// learns nothing.
	op := e.mustAdminToken("otto", control.RoleOperator)
	oc := e.client(nil, op.Secret)
	if _, err := oc.Networks(e.ctx); err != nil {
		t.Fatal(err)
	}
	r, err := e.admin.RevokeAdminToken(e.ctx, op.ID)
	if err != nil || r.Revoked.IsZero() || r.RevokedBy != control.BuiltinAdminID || r.State(e.clock.Now()) != "revoked" {
		t.Fatalf("revoke: %+v, %v", r, err)
	}
	_, err = oc.Networks(e.ctx)
	wantAPIError(t, "revoked", err, 401, "admin token "+op.ID+` ("otto") was revoked at`)
	_, err = e.client(nil, mangle(op.Secret)).Networks(e.ctx)
	wantAPIError(t, "revoked, wrong secret", err, 401, "wrong admin token")
	e.clock.Advance(time.Minute)
	again, err := e.admin.RevokeAdminToken(e.ctx, op.ID)
	if err != nil || !again.Revoked.Equal(r.Revoked) {
		t.Errorf("revoking again: %+v, %v; want the first revocation kept", again, err)
	}
	_, err = e.admin.RevokeAdminToken(e.ctx, "0123456789abcdef")
	wantAPIError(t, "revoke unknown", err, 404, "admin token 0123456789abcdef not found")
	_, err = e.admin.RevokeAdminToken(e.ctx, "../../v1")
	wantAPIError(t, "revoke a path", err, 400, "want 16 hex digits")

	// An admin token revokes itself; the built-in one is a file.
	self := e.mustAdminToken("self", control.RoleAdmin)
	sc := e.client(nil, self.Secret)
	if _, err := sc.RevokeAdminToken(e.ctx, self.ID); err != nil {
		t.Errorf("revoke itself: %v", err)
	}
	_, err = sc.Networks(e.ctx)
	wantAPIError(t, "self-revoked", err, 401, "was revoked")
	_, err = e.admin.RevokeAdminToken(e.ctx, control.BuiltinAdminID)
	wantAPIError(t, "revoke the built-in token", err, 400, "admin-token file")
	if _, err := e.admin.Networks(e.ctx); err != nil {
		t.Errorf("the built-in token: %v", err)
	}

	// Listed for the record, in order, with their states.
	list, _ = e.admin.AdminTokens(e.ctx)
	var states []string
	for _, x := range list {
		states = append(states, x.Name+":"+x.State(e.clock.Now()))
	}
	if want := []string{"admin-token:active", "Zoë (CI):expired", "otto:revoked", "self:revoked"}; !slices.Equal(states, want) {
		t.Errorf("tokens: %q, want %q", states, want)
	}

	// A restart changes nothing: it is all in the database.
	dir := e.dir
	e.stop()
	e = startEnv(t, dir)
	_, err = e.client(nil, op.Secret).Networks(e.ctx)
	wantAPIError(t, "revoked, after a restart", err, 401, "was revoked")
	if l, _ := e.admin.AdminTokens(e.ctx); len(l) != len(list) {
		t.Errorf("after a restart: %d tokens, want %d", len(l), len(list))
	}
}

// TestAuditCommitsWithChange: a change's entry is written with the change,
// in its transaction: a change made has its "ok" entry; one that failed in
// the database has none (only a "failed" one after the fact), and one
// whose entry cannot be written is not made.
func TestAuditCommitsWithChange(t *testing.T) {
	e := newEnv(t)
	ada := e.mustAdminToken("ada", control.RoleAdmin)
	c := e.client(nil, ada.Secret)
	step := func() { e.clock.Advance(time.Millisecond) } // entries of one instant have no order
	step()
	nw, err := c.CreateNetwork(e.ctx, control.CreateNetworkRequest{Name: "audited", CIDR: netip.MustParsePrefix("10.4.0.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	got := e.auditLog()[0]
	want := control.AuditEntry{ID: got.ID, At: got.At, TokenID: ada.ID, TokenName: "ada", Remote: netip.MustParseAddr("127.0.0.1"),
		Action: "network.create", NetworkID: nw.ID, Detail: `name "audited", cidr 10.4.0.0/24, auto_allow false, require_token false`, Outcome: control.OutcomeOK}
	if got != want {
		t.Errorf("entry:\n%+v, want\n%+v", got, want)
	}

	// Refused by the checks: no change, a "refused" entry with the answer.
	step()
	_, err = c.AddRoute(e.ctx, nw.ID, control.Route{Dest: netip.MustParsePrefix("10.4.0.0/16"), Via: netip.MustParseAddr("10.4.0.9")})
	wantAPIError(t, "overlapping route", err, 400, "overlaps")
	got = e.auditLog()[0]
	if got.Action != "route.add" || got.Outcome != control.OutcomeRefused || got.Status != 400 || got.Target != "10.4.0.0/16" ||
		!strings.Contains(got.Error, "overlaps the network's own CIDR") || got.NetworkID != nw.ID {
		t.Errorf("refused route: %+v", got)
	}

	// The change fails in the database: no "ok" entry.
	alter := func(q string) {
		t.Helper()
		if _, err := e.s.store.db.ExecContext(e.ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	step()
	alter(`ALTER TABLE tokens RENAME COLUMN note TO note_gone`)
	_, err = c.CreateToken(e.ctx, nw.ID, control.CreateTokenRequest{Note: "n"})
	wantAPIError(t, "token, broken table", err, 500, "internal error")
	alter(`ALTER TABLE tokens RENAME COLUMN note_gone TO note`)
	got = e.auditLog()[0]
	if got.Action != "token.create" || got.Outcome != control.OutcomeFailed || got.Status != 500 {
		t.Errorf("failed token: %+v", got)
	}
	for _, x := range e.auditLog() {
		if x.Action == "token.create" && x.Outcome == control.OutcomeOK {
			t.Errorf("a token that was not made has an ok entry: %+v", x)
		}
	}
	if ts, _ := e.admin.Tokens(e.ctx, nw.ID); len(ts) != 0 {
		t.Errorf("tokens: %+v", ts)
	}

	// The entry cannot be written: the change is not made either.
	entries := len(e.auditLog())
	alter(`ALTER TABLE audit_log RENAME TO audit_gone`)
	_, err = c.CreateNetwork(e.ctx, control.CreateNetworkRequest{Name: "unrecorded", CIDR: netip.MustParsePrefix("10.5.0.0/24")})
	wantAPIError(t, "network, no audit log", err, 500, "internal error")
	_, err = c.UpdateNetwork(e.ctx, nw.ID, control.UpdateNetworkRequest{Name: ptr("renamed")})
	wantAPIError(t, "rename, no audit log", err, 500, "internal error")
	alter(`ALTER TABLE audit_gone RENAME TO audit_log`)
	ns, _ := e.admin.Networks(e.ctx)
	if len(ns) != 1 || ns[0].Name != "audited" {
		t.Errorf("changes made without their audit entries: %+v", ns)
	}
	if n := len(e.auditLog()); n != entries {
		t.Errorf("%d entries, want %d", n, entries)
	}
	if !strings.Contains(e.allLogs(), "audit: recording network.create by admin token \"ada\" (admin)") {
		t.Errorf("the lost entry was not logged")
	}

	// The same change, the log back: made, and recorded once.
	e.clock.Advance(time.Second)
	if _, err := c.UpdateNetwork(e.ctx, nw.ID, control.UpdateNetworkRequest{Name: ptr("renamed")}); err != nil {
		t.Fatal(err)
	}
	got = e.auditLog()[0]
	if got.Action != "network.update" || got.Outcome != control.OutcomeOK || got.Detail != `name "renamed"` || len(e.auditLog()) != entries+1 {
		t.Errorf("rename: %+v", got)
	}

	// Since, before, limit; old entries are pruned.
	mid := e.clock.Now()
	e.clock.Advance(time.Second)
	if err := c.DeleteNetwork(e.ctx, nw.ID); err != nil {
		t.Fatal(err)
	}
	es, err := e.admin.Audit(e.ctx, control.AuditQuery{Since: mid.Add(time.Millisecond)})
	if err != nil || len(es) != 1 || es[0].Action != "network.delete" {
		t.Errorf("since: %+v, %v", es, err)
	}
	es, err = e.admin.Audit(e.ctx, control.AuditQuery{Before: mid.Add(time.Millisecond), Limit: 2})
	if err != nil || len(es) != 2 || es[0].Action != "network.update" {
		t.Errorf("before, limit: %+v, %v", es, err)
	}
	e.clock.Advance(auditKeep)
	if err := e.s.maintain(e.ctx); err != nil {
		t.Fatal(err)
	}
	if es := e.auditLog(); len(es) != 1 || es[0].Action != "network.delete" {
		t.Errorf("after a year: %+v; want the deletion alone", es)
	}
}

func ptr[T any](v T) *T { return &v }

// TestAttackAccessInput: hostile input where tokens and names are taken.
// A name with control characters or too long is refused, and what reaches
// the audit log of it is escaped and bounded; an admin token is refused
// where a join token goes (and the other way round) without being used;
// malformed scopes, roles and lifetimes are refused.
func TestAttackAccessInput(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("n", "10.6.0.0/24", true)
	ada := e.mustAdminToken("ada", control.RoleAdmin)
	before := e.snapshot()
	huge := strings.Repeat("A", 100_000)
	for _, tc := range []struct {
		what string
		req  control.CreateAdminTokenRequest
		msg  string
	}{
		{"escape sequence", control.CreateAdminTokenRequest{Name: "eve\x1b[2J\x1b]0;pwned\x07", Role: "viewer", Scope: control.Scope{Controller: true}}, "unprintable character U+001B"},
		{"newline", control.CreateAdminTokenRequest{Name: "eve\nadmin_token.revoke ok", Role: "viewer", Scope: control.Scope{Controller: true}}, "unprintable character U+000A"},
		{"bidi override", control.CreateAdminTokenRequest{Name: "eve\u202egnp.exe", Role: "viewer", Scope: control.Scope{Controller: true}}, "unprintable character U+202E"},
		{"huge", control.CreateAdminTokenRequest{Name: huge, Role: "viewer", Scope: control.Scope{Controller: true}}, "want 1 to 64 characters"},
		{"empty", control.CreateAdminTokenRequest{Role: "viewer", Scope: control.Scope{Controller: true}}, "want 1 to 64 characters"},
		{"no role", control.CreateAdminTokenRequest{Name: "x", Scope: control.Scope{Controller: true}}, `role "": want viewer, operator or admin`},
		{"root", control.CreateAdminTokenRequest{Name: "x", Role: "root", Scope: control.Scope{Controller: true}}, `role "root"`},
		{"huge role", control.CreateAdminTokenRequest{Name: "x", Role: control.Role(huge), Scope: control.Scope{Controller: true}}, `want viewer, operator or admin`},
		{"no scope", control.CreateAdminTokenRequest{Name: "x", Role: "viewer"}, "scope: missing"},
		{"both scopes", control.CreateAdminTokenRequest{Name: "x", Role: "viewer", Scope: control.Scope{Controller: true, Networks: []string{nw.ID}}}, "not both"},
		{"bad network", control.CreateAdminTokenRequest{Name: "x", Role: "viewer", Scope: control.Scope{Networks: []string{"../" + huge}}}, "scope: network ID"},
		{"unknown network", control.CreateAdminTokenRequest{Name: "x", Role: "viewer", Scope: control.Scope{Networks: []string{"00000000000000aa"}}}, "scope: network 00000000000000aa not found"},
		{"many networks", control.CreateAdminTokenRequest{Name: "x", Role: "viewer", Scope: control.Scope{Networks: slices.Repeat([]string{nw.ID}, 65)}}, "at most 64"},
		{"negative lifetime", control.CreateAdminTokenRequest{Name: "x", Role: "viewer", Scope: control.Scope{Controller: true}, ExpiresIn: -1}, "want 0 (never)"},
		{"century", control.CreateAdminTokenRequest{Name: "x", Role: "viewer", Scope: control.Scope{Controller: true}, ExpiresIn: control.Duration(100 * 365 * 24 * time.Hour)}, "ten years"},
	} {
		_, err := e.client(nil, ada.Secret).CreateAdminToken(e.ctx, tc.req)
		wantAPIError(t, tc.what, err, 400, tc.msg)
	}
	// A network name the same way.
	_, err := e.admin.CreateNetwork(e.ctx, control.CreateNetworkRequest{Name: "x\x1b[31m\r\n" + huge, CIDR: netip.MustParsePrefix("10.7.0.0/24")})
	wantAPIError(t, "hostile network name", err, 400, "name")
	if after := e.snapshot(); after != before {
		t.Errorf("refused requests changed state")
	}
	if l, _ := e.admin.AdminTokens(e.ctx); len(l) != 2 {
		t.Errorf("refused tokens were made: %+v", l)
	}
	for _, x := range e.auditLog() {
		for _, f := range []string{x.TokenName, x.Action, x.NetworkID, x.Target, x.Detail, x.Error} {
			if strings.ContainsAny(f, "\x1b\n\r\x07\u202e") || len(f) > maxAuditText {
				t.Errorf("audit entry carries raw or unbounded text: %.200q", f)
			}
		}
	}

	// An admin token where a join token goes: refused for what it is,
	// never looked up.
	n := e.newNode()
	_, err = n.c.Join(e.ctx, nw.ID, n.joinReq(ada.Secret))
	wantAPIError(t, "admin token as a join token", err, 400, "this is an admin token")
	if err != nil && strings.Contains(err.Error(), ada.Secret) {
		t.Errorf("the refusal echoes the token: %v", err)
	}
	js := fmt.Sprintf("gate://controller.test:8443/%s?pin=%s&token=%s", nw.ID, e.s.Pin(), ada.Secret)
	if _, err := control.ParseJoinString(js); err == nil || !strings.Contains(err.Error(), "this is an admin token") {
		t.Errorf("a join string with an admin token: %v", err)
	}
	// A join token, and a join string, where an admin token goes.
	join := e.mustToken(nw.ID, control.CreateTokenRequest{})
	_, err = e.client(nil, join).Networks(e.ctx)
	wantAPIError(t, "join token as admin token", err, 401, "wrong admin token")
	tok, _ := e.admin.CreateToken(e.ctx, nw.ID, control.CreateTokenRequest{})
	_, err = e.client(nil, tok.JoinString).Networks(e.ctx)
	wantAPIError(t, "join string as admin token", err, 401, "that is a join string")
	// Neither counts as authenticated for the body limit either.
	if st, _ := e.raw("POST", "/v1/networks", `{"name":"`+strings.Repeat("a", 20<<10)+`"}`, join); st != 413 {
		t.Errorf("a large body with a join token: %d, want 413", st)
	}
}

// TestSecretCompare: the comparisons behind both kinds of admin token take
// equal and unequal secrets of any length, and compare digests (constant
// time: subtle.ConstantTimeCompare over SHA-256 sums, whatever the
// lengths).
func TestSecretCompare(t *testing.T) {
	s := newSecret()
	h := hashSecret(s)
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{s, s, true}, {s, s + "x", false}, {s, s[:len(s)-1], false}, {s, "", false}, {"", "", true},
	} {
		if got := sameSecret(tc.a, tc.b); got != tc.want {
			t.Errorf("sameSecret(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
	if !matchesHash(h, s) || matchesHash(h, s+"x") || matchesHash(h[:10], s) || matchesHash("zz"+h[2:], s) || matchesHash("", "") {
		t.Error("matchesHash")
	}
}

// TestAccessAcrossReplicas: tokens and the audit log live in the database,
// so that replicas on one PostgreSQL agree at once: a token made through
// one works on the other, one revoked through the other is refused by the
// first on its next call, and each replica's changes are in one log.
func TestAccessAcrossReplicas(t *testing.T) {
	a, b, _ := replicaPair(t)
	tok := a.mustAdminToken("otto", control.RoleOperator)
	nw := b.mustNetwork("ha", "10.61.0.0/24", false)
	onA, onB := a.client(nil, tok.Secret), b.client(nil, tok.Secret)
	b.clock.Advance(time.Millisecond) // entries of one instant have no order
	if _, err := onB.CreateToken(b.ctx, nw.ID, control.CreateTokenRequest{}); err != nil {
		t.Fatalf("a token made on a, used on b: %v", err)
	}
	if _, err := onA.Networks(a.ctx); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(time.Millisecond)
	if _, err := b.admin.RevokeAdminToken(b.ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	_, err := onA.Networks(a.ctx)
	wantAPIError(t, "revoked on b, used on a", err, 401, "was revoked")
	var actions []string
	for _, x := range a.auditLog() {
		actions = append(actions, x.TokenName+" "+x.Action)
	}
	want := []string{"admin-token admin_token.revoke", "otto token.create", "admin-token network.create", "admin-token admin_token.create"}
	if !slices.Equal(actions, want) {
		t.Errorf("the log on a: %q, want %q", actions, want)
	}
}
