package cli

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/controller"
)

// serveTLS serves h on loopback with identity id's pinned TLS and returns
// the address for --controller.
func serveTLS(t *testing.T, id control.Identity, h http.Handler) string {
	t.Helper()
	cfg, err := control.ServerTLS(id)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "gate://" + ln.Addr().String() + "?pin=" + id.Pin()
}

// testController is a real controller (SQLite) serving its API on
// loopback: its --controller address and its built-in admin token.
func testController(t *testing.T) (addr, token string) {
	t.Helper()
	dir := t.TempDir()
	s, err := controller.New(controller.Config{StateDir: dir, Listen: "127.0.0.1:8443", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	pem, err := os.ReadFile(filepath.Join(dir, "controller.key"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := control.ParseIdentityPEM(pem)
	if err != nil {
		t.Fatal(err)
	}
	return serveTLS(t, id, s.Handler()), s.AdminToken()
}

// gate runs the command line and returns its exit code and outputs.
func gate(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(args, "test", &out, &errb)
	return code, out.String(), errb.String()
}

// TestAdminTokenCommands: gate admin token create|list|revoke and gate
// audit against a real controller: the token is printed once, alone on
// stdout, with the warning on stderr; it works with its role and scope;
// list and audit show what happened, in tables and JSON.
func TestAdminTokenCommands(t *testing.T) {
	ctl, builtin := testController(t)
	as := func(token string, args ...string) []string {
		return append(args, "--controller", ctl, "--token", token)
	}
	code, out, errs := gate(as(builtin, "network", "create", "--name", "lab", "--cidr", "10.70.0.0/24")...)
	if code != 0 {
		t.Fatalf("network create: %d %s", code, errs)
	}
	netID := strings.TrimSpace(out)

	code, out, errs = gate(as(builtin, "admin", "token", "create", "--name", "alice", "--role", "operator", "--network", netID, "--expires", "720h")...)
	tok := strings.TrimSpace(out)
	id, _, ok := control.SplitAdminToken(tok)
	if code != 0 || !ok || strings.Count(out, "\n") != 1 {
		t.Fatalf("token create: exit %d, stdout %q, stderr %s", code, out, errs)
	}
	for _, want := range []string{"admin token " + id + ": alice, role operator, scope networks " + netID + ", expires 20", "only time the token is shown"} {
		if !strings.Contains(errs, want) {
			t.Errorf("token create: stderr %q lacks %q", errs, want)
		}
	}

	// The token works within its scope and role.
	if code, out, errs = gate(as(tok, "token", "create", netID)...); code != 0 || !strings.HasPrefix(out, "gate://") {
		t.Errorf("join token with alice's token: %d %q %s", code, out, errs)
	}
	code, _, errs = gate(as(tok, "network", "delete", netID)...)
	if code != 1 || !strings.Contains(errs, `admin token "alice" (operator) may not network.delete: that needs the admin role (HTTP 403)`) {
		t.Errorf("network delete with alice's token: %d %s", code, errs)
	}

	code, out, _ = gate(as(builtin, "admin", "token", "list")...)
	if code != 0 || !strings.Contains(out, "ID ") || !strings.Contains(out, "admin-token") || !strings.Contains(out, "active (admin-token file)") {
		t.Errorf("token list:\n%s", out)
	}
	if line := lineWith(out, id); !containsAll(line, "alice", "operator", "networks "+netID, "active", "admin-token (admin-token)") {
		t.Errorf("token list, alice: %q", line)
	}
	var ts []control.AdminToken
	_, out, _ = gate(as(builtin, "admin", "token", "list", "--json")...)
	if err := json.Unmarshal([]byte(out), &ts); err != nil || len(ts) != 2 || ts[1].Secret != "" || ts[1].LastUsed.IsZero() {
		t.Errorf("token list --json: %v %+v", err, ts)
	}

	code, out, errs = gate(as(builtin, "admin", "token", "revoke", id)...)
	if code != 0 || !strings.HasPrefix(out, "revoked "+id+" (alice) at ") {
		t.Errorf("revoke: %d %q %s", code, out, errs)
	}
	code, _, errs = gate(as(tok, "network", "list")...)
	if code != 1 || !strings.Contains(errs, "was revoked at") {
		t.Errorf("revoked token: %d %s", code, errs)
	}
	_, out, _ = gate(as(builtin, "admin", "token", "list")...)
	if line := lineWith(out, id); !strings.Contains(line, "revoked") {
		t.Errorf("token list after revoke: %q", line)
	}

	// The audit log: newest first, who, from where, what, how it ended.
	code, out, errs = gate(as(builtin, "audit", "--since", "1h")...)
	if code != 0 {
		t.Fatalf("audit: %d %s", code, errs)
	}
	out = squeeze(out)
	for _, want := range []string{
		"TIME WHO FROM ACTION NETWORK TARGET DETAIL RESULT\n",
		" admin-token (admin-token) 127.0.0.1 admin_token.revoke - " + id + " - ok\n",
		" alice (" + id + ") 127.0.0.1 network.delete " + netID + " - - denied (403): admin token \"alice\" (operator) may not network.delete: that needs the admin role\n",
		" alice (" + id + ") 127.0.0.1 token.create " + netID + " ",
		" admin-token (admin-token) 127.0.0.1 admin_token.create - " + id + ` name "alice", role "operator", scope "` + netID + `", expires_in 720h0m0s ok` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("audit lacks %q:\n%s", want, out)
		}
	}
	var es []control.AuditEntry
	_, out, _ = gate(as(builtin, "audit", "--network", netID, "--limit", "2", "--json")...)
	if err := json.Unmarshal([]byte(out), &es); err != nil || len(es) != 2 || es[0].NetworkID != netID || es[0].Action != "network.delete" {
		t.Errorf("audit --network --limit --json: %v %+v", err, es)
	}
	if strings.Contains(out, tok) {
		t.Errorf("the audit log shows the token")
	}

	// Usage errors, before anything is sent.
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"admin"}, "want: admin token create"},
		{[]string{"admin", "token", "mint"}, `unknown subcommand "mint"`},
		{[]string{"admin", "token", "create", "--role", "viewer"}, "--name: say who holds the token"},
		{[]string{"admin", "token", "create", "--name", "x", "--role", "root"}, `--role: role "root": want viewer, operator or admin`},
		{[]string{"admin", "token", "revoke"}, "want a token's ID"},
		{[]string{"audit", "--since", "yesterday"}, `--since "yesterday": want a duration`},
		{[]string{"audit", "--limit", "5000"}, "--limit 5000: want 1 to 1000"},
	} {
		code, _, errs := gate(tc.args...)
		if code != 2 || !strings.Contains(errs, tc.msg) {
			t.Errorf("gate %q: %d %q, want usage error %q", tc.args, code, errs, tc.msg)
		}
	}
}

// TestAccessOutputEscapes: what a controller answers reaches the terminal
// escaped: a hostile or broken controller's names, details and errors
// cannot move the cursor, clear the screen or forge table rows.
func TestAccessOutputEscapes(t *testing.T) {
	evil := "eve\x1b[2J\x1b]0;pwned\x07\n2099-01-01T00:00:00Z\tforged\r\u202e"
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	id, err := control.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	ctl := serveTLS(t, id, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v any
		switch r.URL.Path {
		case "/v1/audit":
			v = []control.AuditEntry{{ID: evil, At: at, TokenID: evil, TokenName: evil, Action: evil, NetworkID: evil, Target: evil, Detail: evil, Outcome: evil, Status: 400, Error: evil}}
		case "/v1/admin/tokens":
			if r.Method == "POST" {
				v = control.AdminToken{ID: evil, Name: evil, Role: control.Role(evil), Scope: control.Scope{Networks: []string{evil}}, Secret: evil}
			} else {
				v = []control.AdminToken{{ID: evil, Name: evil, Role: control.Role(evil), Scope: control.Scope{Networks: []string{evil}}, CreatedBy: evil, CreatedByName: evil}}
			}
		default:
			v = control.AdminToken{ID: evil, Name: evil, Revoked: at}
		}
		b, _ := json.Marshal(v)
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}))
	for _, args := range [][]string{
		{"audit"},
		{"admin", "token", "list"},
		{"admin", "token", "create", "--name", "x", "--role", "viewer"},
		{"admin", "token", "revoke", "0123456789abcdef"},
	} {
		code, out, errs := gate(append(args, "--controller", ctl, "--token", "t0123456789abcdef")...)
		if code != 0 {
			t.Errorf("gate %q: %d %s", args, code, errs)
			continue
		}
		both := out + errs
		if strings.ContainsAny(both, "\x1b\x07\r\u202e") {
			t.Errorf("gate %q: raw control characters reach the terminal: %q", args, both)
		}
		if strings.Contains(both, "\n2099") || strings.Contains(both, "\tforged") {
			t.Errorf("gate %q: a forged line or cell: %q", args, both)
		}
		if !strings.Contains(both, `\x1b[2J`) {
			t.Errorf("gate %q: the hostile text is not shown escaped: %q", args, both)
		}
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		err  string
	}{
		{"1h", now.Add(-time.Hour), ""},
		{"168h", now.Add(-168 * time.Hour), ""},
		{"2025-01-02T15:04:05Z", time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC), ""},
		{"-1h", time.Time{}, "want how long back"},
		{"last week", time.Time{}, "want a duration"},
	} {
		got, err := parseSince(tc.in, now)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("%q = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func lineWith(s, sub string) string {
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			return line
		}
	}
	return ""
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

// squeeze is s with the runs of spaces that align a table's columns made
// one space.
func squeeze(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		b.WriteString(strings.Join(strings.Fields(line), " ") + "\n")
	}
	return b.String()
}

// TestTokenRevokeCommand: gate token revoke, and the list that shows it.
func TestTokenRevokeCommand(t *testing.T) {
	ctl, builtin := testController(t)
	as := func(args ...string) []string { return append(args, "--controller", ctl, "--token", builtin) }
	_, out, _ := gate(as("network", "create", "--name", "lab", "--cidr", "10.71.0.0/24")...)
	netID := strings.TrimSpace(out)
	var tok control.Token
	_, out, _ = gate(as("token", "create", netID, "--note", "leaked", "--json")...)
	if err := json.Unmarshal([]byte(out), &tok); err != nil {
		t.Fatalf("token create --json: %v %q", err, out)
	}
	code, out, errs := gate(as("token", "revoke", netID, tok.ID)...)
	if code != 0 || !strings.Contains(out, "join token "+tok.ID+" revoked at ") {
		t.Fatalf("token revoke: %d %q %s", code, out, errs)
	}
	_, out, _ = gate(as("token", "list", netID)...)
	if line := lineWith(out, tok.ID); !strings.Contains(line, "revoked 20") {
		t.Errorf("token list after revoke: %q", line)
	}
	if code, _, errs = gate(as("token", "revoke", netID)...); code != 2 || !strings.Contains(errs, "join token's ID") {
		t.Errorf("token revoke without an ID: %d %s", code, errs)
	}
	if code, _, errs = gate(as("token", "revoke", netID, "0123456789abcdef")...); code != 1 || !strings.Contains(errs, "not found") {
		t.Errorf("token revoke of an unknown ID: %d %s", code, errs)
	}
}

// TestRouteSetCommand: gate network route set replaces a route in one
// change, where route add refuses a second route to the destination.
func TestRouteSetCommand(t *testing.T) {
	ctl, builtin := testController(t)
	as := func(args ...string) []string { return append(args, "--controller", ctl, "--token", builtin) }
	_, out, _ := gate(as("network", "create", "--name", "lab", "--cidr", "10.72.0.0/24")...)
	netID := strings.TrimSpace(out)
	if code, _, errs := gate(as("network", "route", "add", netID, "172.16.0.0/16", "via", "10.72.0.11")...); code != 0 {
		t.Fatalf("route add: %d %s", code, errs)
	}
	if code, _, errs := gate(as("network", "route", "add", netID, "172.16.0.0/16", "via", "10.72.0.12")...); code != 1 || !strings.Contains(errs, "gate network route set") {
		t.Errorf("route add over a route: %d %s", code, errs)
	}
	code, out, errs := gate(as("network", "route", "set", netID, "172.16.0.0/16", "via", "10.72.0.12", "via", "10.72.0.11")...)
	if code != 0 || strings.Count(out, "172.16.0.0/16") != 1 || !strings.Contains(out, "10.72.0.12") {
		t.Errorf("route set: %d %q %s", code, out, errs)
	}
}
