package webconsole_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/controller"
	"github.com/gatenet/gate/services/policy"
	"github.com/gatenet/gate/services/webconsole/webtest"
)

// console is a real controller with its web console on loopback.
type console struct {
	logs  *logLines
	srv   *controller.Server
	addr  string // the member API
	web   string // http://127.0.0.1:PORT
	admin *control.Client
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startConsole(t testing.TB) *console {
	t.Helper()
	addr := freeAddr(t)
	logs := &logLines{t: t}
	s, err := controller.New(controller.Config{StateDir: t.TempDir(), Listen: addr, Logf: logs.logf,
		Web: controller.WebConfig{Listen: "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ctx) }()
	admin, err := control.NewClient(addr, s.Pin(), nil, s.AdminToken())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(); cancel(); <-done; s.Close() })
	for i := 0; ; i++ {
		if _, err := admin.Networks(ctx); err == nil {
			break
		} else if i > 100 {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &console{logs: logs, srv: s, addr: addr, web: "http://" + s.WebAddr(), admin: admin}
}

// logLines keeps the controller's log lines (and passes them to the
// test's log).
type logLines struct {
	t     testing.TB
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
	l.t.Logf("%s", s)
}

func (l *logLines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

func (c *console) browser(t *testing.T, width, height int) *webtest.Browser {
	t.Helper()
	b, err := webtest.Start(c.web, width, height)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// adminBrowser is a browser at 1280x800 signed in as the built-in admin.
func (c *console) adminBrowser(t *testing.T) *webtest.Browser {
	t.Helper()
	b := c.browser(t, 1280, 800)
	must(t, b.SignIn(c.srv.AdminToken()), "sign in")
	return b
}

// clouds makes the network the tests use, 192.168.254.0/24.
func (c *console) clouds(t *testing.T, autoAllow bool) control.Network {
	t.Helper()
	n, err := c.admin.CreateNetwork(context.Background(), control.CreateNetworkRequest{Name: "clouds", CIDR: netip.MustParsePrefix("192.168.254.0/24"), AutoAllow: autoAllow})
	must(t, err, "create")
	return n
}

// postForm posts form to u with hc, from origin ("" for none), and
// returns the answer with its body read.
func postForm(t testing.TB, hc *http.Client, u string, form url.Values, origin string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := hc.Do(req)
	must(t, err, "POST "+u)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// join joins a made-up member to network id through the member API, as
// a node would; it waits for an admin.
func (c *console) join(t *testing.T, id, hostname string) string {
	t.Helper()
	ident, err := control.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	mc, err := control.NewClient(c.addr, c.srv.Pin(), &ident, "")
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	var key [32]byte
	rand.Read(key[:])
	_, err = mc.Join(context.Background(), id, control.JoinRequest{PublicKey: base64.StdEncoding.EncodeToString(key[:]), Hostname: hostname,
		Version: "test", ListenPort: 51820, Endpoints: []netip.AddrPort{netip.MustParseAddrPort("198.51.100.20:51820")}})
	if err != nil && !control.IsStatus(err, http.StatusAccepted) && !strings.Contains(err.Error(), "pending") {
		t.Fatalf("join: %v", err)
	}
	return ident.NodeID()
}

func must(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func text(t testing.TB, b *webtest.Browser, css string) string {
	t.Helper()
	s, err := b.Text(css)
	must(t, err, "text of "+css)
	return s
}

func shot(t *testing.T, b *webtest.Browser, name string) {
	t.Helper()
	dir := os.Getenv("GATE_SCREENSHOTS")
	if dir == "" {
		return
	}
	must(t, b.Screenshot(filepath.Join(dir, name)), "screenshot "+name)
}

// The whole flow of an admin, in the browser: create a network, see a
// node appear pending without reloading, allow it, give it an address
// checked as typed, add a route through it, make a join token; every
// change in the audit log, marked as the web console's.
func TestBrowserAdminFlow(t *testing.T) {
	c := startConsole(t)
	b := c.adminBrowser(t)

	must(t, b.Open("/networks"), "networks")
	must(t, b.Fill("#net-name", "clouds"), "name")
	must(t, b.Fill("#net-cidr", "192.168.254.0/24"), "cidr")
	must(t, b.Press("form[action='/networks'] button[type=submit]"), "create")
	if got := text(t, b, ".flash"); !strings.Contains(got, "Network clouds created") {
		t.Fatalf("after create: %q", got)
	}
	ns, err := c.admin.Networks(context.Background())
	must(t, err, "list")
	if len(ns) != 1 || ns[0].Name != "clouds" || ns[0].CIDR.String() != "192.168.254.0/24" {
		t.Fatalf("networks after the form: %+v", ns)
	}
	id := ns[0].ID

	// The page follows a join live.
	node := c.join(t, id, "aws-gate-1")
	must(t, b.WaitFor(fmt.Sprintf(`document.querySelector('tr[data-node="%s"] .badge.pending')`, node), 10*time.Second), "pending member shown live")
	shot(t, b, "network-pending.png")

	must(t, b.Press(fmt.Sprintf(`tr[data-node="%s"] form[action$="/allow"] button`, node)), "allow")
	must(t, b.WaitFor(fmt.Sprintf(`document.querySelector('tr[data-node="%s"] .badge.allowed')`, node), 5*time.Second), "allowed")

	// An address outside the network is refused as it is typed, with the
	// controller's own words; one inside is taken.
	field := fmt.Sprintf("#addr-%s", node)
	must(t, b.Fill(field, "10.0.0.5"), "bad address")
	must(t, b.WaitFor(fmt.Sprintf(`document.querySelector('#addr-%s').getAttribute('aria-invalid') === 'true'`, node), 5*time.Second), "address checked as typed")
	if msg := text(t, b, field+"-msg"); !strings.Contains(msg, "192.168.254.0/24") {
		t.Errorf("an address outside the network is told %q", msg)
	}
	must(t, b.Fill(field, "192.168.254.11"), "good address")
	if err := b.WaitFor(fmt.Sprintf(`document.querySelector('#addr-%s').getAttribute('aria-invalid') === 'false'`, node), 5*time.Second); err != nil {
		msg, _ := b.Text(field + "-msg")
		v, _ := webtest.Run(b, chromedp.Value(chromedp.CSS(field)))
		t.Fatalf("good address %q checked: %v (says %q)", v, err, msg)
	}
	must(t, b.Press(fmt.Sprintf(`tr[data-node="%s"] form[action$="/address"] button`, node)), "set address")
	if got := text(t, b, ".flash"); !strings.Contains(got, "192.168.254.11") {
		t.Fatalf("after setting the address: %q", got)
	}

	must(t, b.Open("/n/"+id+"/routes"), "routes")
	must(t, b.Fill("#dest", "172.16.0.0/16"), "dest")
	must(t, b.Do(chromedp.SetValue(chromedp.ID("via"), "192.168.254.11")), "via")
	must(t, b.Press("form[action$='/routes'] button[type=submit]"), "add route")
	n, err := c.admin.Network(context.Background(), id)
	must(t, err, "network")
	if len(n.Routes) != 1 || n.Routes[0].Dest.String() != "172.16.0.0/16" || n.Routes[0].Via.String() != "192.168.254.11" {
		t.Fatalf("routes after the form: %+v", n.Routes)
	}

	must(t, b.Open("/n/"+id+"/tokens"), "tokens")
	must(t, b.Fill("#note", "droplet-1"), "note")
	must(t, b.Do(chromedp.Click(chromedp.CSS("input[name=allow]"))), "allow box")
	must(t, b.Fill("#tok-serve", "10.10.0.0/16"), "serve")
	must(t, b.Press("form[action$='/tokens'] button[type=submit]"), "make token")
	js, err := webtest.Run(b, chromedp.Value(chromedp.ID("joinstring")))
	must(t, err, "join string")
	if _, err := control.ParseJoinString(js); err != nil {
		t.Fatalf("join string shown %q: %v", js, err)
	}
	ud, err := webtest.Run(b, chromedp.Value(chromedp.ID("ud-aws")))
	must(t, err, "user-data")
	if !strings.HasPrefix(ud, "#cloud-config\ngate:\n") || !strings.Contains(ud, js) || !strings.Contains(ud, "10.10.0.0/16") {
		t.Fatalf("AWS user-data:\n%s", ud)
	}
	shot(t, b, "tokens.png")

	must(t, b.Open("/audit"), "audit")
	log := text(t, b, "#audit")
	for _, want := range []string{"network.create", "member.allow", "member.address", "route.add", "token.create", "session.signin"} {
		if !strings.Contains(log, want) {
			t.Errorf("audit page lacks %s:\n%s", want, log)
		}
	}
	es, err := c.admin.Audit(context.Background(), control.AuditQuery{})
	must(t, err, "audit")
	for _, e := range es {
		if e.Action != "network.list" && e.Via != control.ViaWeb {
			t.Errorf("audit entry %s (%s) not marked as the web console's", e.Action, e.ID)
		}
	}
}

// A viewer sees and cannot change: no forms, and a change forged with a
// real anti-forgery token is refused by the API's role check.
func TestBrowserViewer(t *testing.T) {
	c := startConsole(t)
	ctx := context.Background()
	n := c.clouds(t, false)
	node := c.join(t, n.ID, "pending-one")
	tok, err := c.admin.CreateAdminToken(ctx, control.CreateAdminTokenRequest{Name: "auditor", Role: control.RoleViewer, Scope: control.Scope{Networks: []string{n.ID}}})
	must(t, err, "viewer token")

	b := c.browser(t, 1280, 800)
	must(t, b.SignIn(tok.Secret), "sign in")
	must(t, b.Open("/n/"+n.ID), "members")
	forms, err := webtest.Eval[int](b, `document.querySelectorAll('main form[method=post]').length`)
	must(t, err, "forms")
	if forms != 0 {
		t.Errorf("a viewer's members page has %d forms", forms)
	}
	if got := text(t, b, "#members"); !strings.Contains(got, "pending-one") {
		t.Errorf("a viewer does not see the members: %q", got)
	}
	// Forge an allow from the page itself, with the session's token.
	_, err = webtest.Eval[bool](b, fmt.Sprintf(`(() => {
		const f = document.createElement('form'); f.method = 'post'; f.action = '/n/%s/m/%s/allow';
		const i = document.createElement('input'); i.type = 'hidden'; i.name = 'csrf';
		i.value = document.querySelector('form[action="/signout"] input[name=csrf]').value;
		f.appendChild(i); document.body.appendChild(f); f.submit(); return true; })()`, n.ID, node))
	must(t, err, "forged allow")
	must(t, b.WaitFor(`document.querySelector('.error') && document.querySelector('.error').textContent.includes('may not member.allow')`, 10*time.Second), "refusal shown")
	ms, err := c.admin.Members(ctx, n.ID)
	must(t, err, "members")
	if len(ms) != 1 || ms[0].State != control.StatePending {
		t.Fatalf("a viewer's allow changed the member: %+v", ms)
	}
	if _, err := c.admin.Network(ctx, n.ID); err != nil {
		t.Fatal(err)
	}
	// The Access page is an admin's of the whole controller.
	must(t, b.Open("/access"), "access")
	if got := text(t, b, ".error"); !strings.Contains(got, "admin") {
		t.Errorf("a viewer on the Access page: %q", got)
	}
}

// Revoking a token ends its sessions at once; an expired one is refused.
func TestBrowserRevokedAndExpired(t *testing.T) {
	c := startConsole(t)
	ctx := context.Background()
	tok, err := c.admin.CreateAdminToken(ctx, control.CreateAdminTokenRequest{Name: "contractor", Role: control.RoleOperator, Scope: control.Scope{Controller: true}})
	must(t, err, "token")
	b := c.browser(t, 1280, 800)
	must(t, b.SignIn(tok.Secret), "sign in")
	must(t, b.Open("/networks"), "networks")
	_, err = c.admin.RevokeAdminToken(ctx, tok.ID)
	must(t, err, "revoke")
	must(t, b.Open("/networks"), "networks again")
	if loc, _ := webtest.Run(b, chromedp.Location()); !strings.Contains(loc, "/signin") {
		t.Fatalf("a revoked token's session went on to %s", loc)
	}
	if got := text(t, b, ".flash"); !strings.Contains(got, "revoked") {
		t.Errorf("sign-in page after revocation says %q", got)
	}

	short, err := c.admin.CreateAdminToken(ctx, control.CreateAdminTokenRequest{Name: "brief", Role: control.RoleViewer,
		Scope: control.Scope{Controller: true}, ExpiresIn: control.Duration(time.Second)})
	must(t, err, "short token")
	time.Sleep(1100 * time.Millisecond)
	if err := b.SignIn(short.Secret); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("an expired token signing in: %v", err)
	}
}

// Signing in and changing things by keyboard alone.
func TestBrowserKeyboard(t *testing.T) {
	c := startConsole(t)
	b := c.browser(t, 1280, 800)
	must(t, b.Open("/signin"), "sign in page")
	// The token field has the focus: type and press Enter.
	must(t, b.Do(chromedp.KeyEvent(c.srv.AdminToken()), chromedp.KeyEvent("\r"), chromedp.WaitReady(chromedp.CSS("header .who"))), "sign in by keyboard")
	// Tab to the network name, then fill the form with Tab and Enter.
	reached := false
	for range 40 {
		must(t, b.Do(chromedp.KeyEvent("\t")), "tab")
		id, err := webtest.Eval[string](b, `document.activeElement.id`)
		must(t, err, "focus")
		if id == "net-name" {
			reached = true
			break
		}
	}
	if !reached {
		t.Fatal("the network name field is not reachable by Tab")
	}
	must(t, b.Do(chromedp.KeyEvent("lab"), chromedp.KeyEvent("\t"), chromedp.KeyEvent("10.77.0.0/24"), chromedp.KeyEvent("\r"),
		chromedp.WaitReady(chromedp.CSS(".flash"))), "create by keyboard")
	ns, err := c.admin.Networks(context.Background())
	must(t, err, "networks")
	if len(ns) != 1 || ns[0].Name != "lab" {
		t.Fatalf("after the keyboard: %+v", ns)
	}
	// A visible focus ring: the focused control's outline is drawn.
	must(t, b.Do(chromedp.KeyEvent("\t")), "tab")
	outline, err := webtest.Eval[string](b, `getComputedStyle(document.activeElement).outlineStyle`)
	must(t, err, "outline")
	if outline == "none" || outline == "" {
		t.Errorf("the focused element shows no outline (%q)", outline)
	}
}

// At phone width nothing runs off the side: tables become cards.
func TestBrowserPhoneWidth(t *testing.T) {
	c := startConsole(t)
	n := c.clouds(t, false)
	c.join(t, n.ID, "a-gateway-with-a-rather-long-hostname")
	b := c.browser(t, 390, 844)
	must(t, b.SignIn(c.srv.AdminToken()), "sign in")
	for _, p := range []string{"/networks", "/n/" + n.ID, "/n/" + n.ID + "/routes", "/n/" + n.ID + "/tokens", "/n/" + n.ID + "/rules", "/audit", "/access"} {
		must(t, b.Open(p), p)
		over, err := webtest.Eval[int](b, `document.documentElement.scrollWidth - window.innerWidth`)
		must(t, err, "width")
		if over > 0 {
			t.Errorf("%s at 390 px wide runs %d px off the side", p, over)
		}
	}
	must(t, b.Open("/n/"+n.ID), "members")
	shot(t, b, "network-phone.png")
}

// Changes need the session's anti-forgery token and a request from the
// console's own origin; signing out ends the session on the server.
func TestCSRFAndSignOut(t *testing.T) {
	c := startConsole(t)
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(path string, form url.Values, origin string) *http.Response {
		t.Helper()
		resp, _ := postForm(t, hc, c.web+path, form, origin)
		return resp
	}
	if r := post("/signin", url.Values{"token": {c.srv.AdminToken()}}, "http://evil.example"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in from another origin: %s", r.Status)
	}
	if r := post("/signin", url.Values{"token": {c.srv.AdminToken()}}, c.web); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %s", r.Status)
	}
	u, _ := url.Parse(c.web)
	var secret string
	for _, ck := range jar.Cookies(u) {
		if ck.Name == "gate_session_"+c.srv.Web().ID() {
			secret = ck.Value
		}
	}
	if secret == "" {
		t.Fatal("no session cookie")
	}
	// The CSRF token is on every page; read it from one.
	resp, err := hc.Get(c.web + "/networks")
	must(t, err, "networks")
	page := make([]byte, 64<<10)
	nr, _ := resp.Body.Read(page)
	resp.Body.Close()
	_, after, _ := strings.Cut(string(page[:nr]), `name="csrf" value="`)
	csrf, _, _ := strings.Cut(after, `"`)
	if csrf == "" {
		t.Fatal("no csrf token on the page")
	}
	create := url.Values{"name": {"x"}, "cidr": {"10.1.0.0/24"}}
	for _, tc := range []struct {
		name   string
		form   url.Values
		origin string
	}{
		{"no token", create, c.web},
		{"wrong token", withCSRF(create, "AAAA"+csrf[4:]), c.web},
		{"another origin", withCSRF(create, csrf), "https://evil.example"},
	} {
		if r := post("/networks", tc.form, tc.origin); r.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %s", tc.name, r.Status)
		}
	}
	if ns, _ := c.admin.Networks(context.Background()); len(ns) != 0 {
		t.Fatalf("a refused form made networks: %+v", ns)
	}
	if r := post("/networks", withCSRF(create, csrf), c.web); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("create with the token: %s", r.Status)
	}
	if r := post("/signout", withCSRF(nil, csrf), c.web); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %s", r.Status)
	}
	// The old cookie, sent again by hand, is worth nothing now.
	req, _ := http.NewRequest("GET", c.web+"/networks", nil)
	req.AddCookie(&http.Cookie{Name: "gate_session_" + c.srv.Web().ID(), Value: secret})
	r2, err := (&http.Client{CheckRedirect: hc.CheckRedirect}).Do(req)
	must(t, err, "old cookie")
	r2.Body.Close()
	if r2.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r2.Header.Get("Location"), "/signin") {
		t.Fatalf("a signed-out session's cookie: %s %s", r2.Status, r2.Header.Get("Location"))
	}
}

func withCSRF(v url.Values, csrf string) url.Values {
	out := url.Values{"csrf": {csrf}}
	for k, vs := range v {
		out[k] = vs
	}
	return out
}

// A change made elsewhere (the CLI, another replica) shows up on an open
// page without reloading; the rules are edited and explained on theirs.
func TestBrowserLiveAndRules(t *testing.T) {
	c := startConsole(t)
	ctx := context.Background()
	n := c.clouds(t, true)
	node := c.join(t, n.ID, "gw")
	_, err := c.admin.SetMemberAddress(ctx, n.ID, node, netip.MustParseAddr("192.168.254.11"))
	must(t, err, "address")
	b := c.adminBrowser(t)
	must(t, b.Open("/n/"+n.ID+"/routes"), "routes")
	if _, err := webtest.Eval[bool](b, "window.__sameDocument = true"); err != nil {
		t.Fatal(err)
	}
	_, err = c.admin.AddRoute(ctx, n.ID, control.Route{Dest: netip.MustParsePrefix("10.20.0.0/16"), Via: netip.MustParseAddr("192.168.254.11")})
	must(t, err, "route from elsewhere")
	must(t, b.WaitFor(`window.__sameDocument && document.querySelector('#routes').textContent.includes('10.20.0.0/16')`, 10*time.Second), "route shown live")

	must(t, b.Open("/n/"+n.ID+"/rules"), "rules")
	rules := "allow from any to any on tcp/22\n"
	must(t, b.Fill("#rules", rules), "rules text")
	must(t, b.Press("form[action$='/rules'] button[type=submit]"), "save rules")
	if got := text(t, b, "main"); !strings.Contains(got, "Rules saved") {
		t.Fatalf("after saving: %q", got)
	}
	got, err := c.admin.Network(ctx, n.ID)
	must(t, err, "network")
	if got.Rules.String() != rules {
		t.Fatalf("rules %q, want %q", got.Rules.String(), rules)
	}
	// A rule that does not parse is refused, the text kept for mending.
	must(t, b.Fill("#rules", "allow from nowhere to 300.1.1.1\n"), "bad rules")
	must(t, b.Press("form[action$='/rules'] button[type=submit]"), "save bad rules")
	if msg := text(t, b, ".error"); !strings.Contains(msg, "line 1") {
		t.Errorf("bad rules told %q", msg)
	}
	if v, _ := webtest.Run(b, chromedp.Value(chromedp.ID("rules"))); !strings.Contains(v, "nowhere") {
		t.Errorf("the refused text was not kept: %q", v)
	}
	must(t, b.Open("/n/"+n.ID+"/rules"), "rules")
	must(t, b.Fill("#from", "192.168.254.11"), "from")
	must(t, b.Fill("#to", "192.168.254.12"), "to")
	must(t, b.Fill("#port", "80"), "port")
	must(t, b.Press("form[action$='/rules/test'] button"), "explain")
	if msg := text(t, b, ".decision"); !strings.Contains(msg, "Denied") {
		t.Errorf("explain tcp/80 under an ssh-only rule: %q", msg)
	}
}

// An admin of the whole controller makes an admin token on the Access
// page, sees its secret once, and revokes it there.
func TestBrowserAccess(t *testing.T) {
	c := startConsole(t)
	ctx := context.Background()
	n := c.clouds(t, false)
	b := c.adminBrowser(t)
	must(t, b.Open("/access"), "access")
	must(t, b.Fill("#adm-name", "alice"), "name")
	must(t, b.Do(chromedp.SetValue(chromedp.ID("adm-role"), "operator")), "role")
	must(t, b.Do(chromedp.Click(chromedp.CSS(`input[name=network][value="`+n.ID+`"]`))), "scope")
	must(t, b.Press("form[action='/access'] button[type=submit]"), "make")
	secret, err := webtest.Run(b, chromedp.Value(chromedp.ID("admsecret")))
	must(t, err, "secret")
	ts, err := c.admin.AdminTokens(ctx)
	must(t, err, "list")
	if len(ts) != 2 || ts[1].Name != "alice" || ts[1].Role != control.RoleOperator || len(ts[1].Scope.Networks) != 1 || ts[1].Scope.Networks[0] != n.ID {
		t.Fatalf("tokens after the form: %+v", ts)
	}
	alice := c.browser(t, 1280, 800)
	must(t, alice.SignIn(secret), "alice signs in")
	must(t, b.Open("/access"), "access again")
	_, err = webtest.Eval[bool](b, "(window.confirm = () => true, true)")
	must(t, err, "confirm")
	must(t, b.Press(`form[action="/access/`+ts[1].ID+`/revoke"] button`), "revoke")
	must(t, alice.Open("/networks"), "alice again")
	if loc, _ := webtest.Run(alice, chromedp.Location()); !strings.Contains(loc, "/signin") {
		t.Fatalf("a revoked token's session went on to %s", loc)
	}
}

// Saving rules is refused when someone else changed them meanwhile, not
// when the network merely moved on (a member roaming).
func TestRulesConflict(t *testing.T) {
	c := startConsole(t)
	ctx := context.Background()
	n := c.clouds(t, true)
	b := c.adminBrowser(t)
	must(t, b.Open("/n/"+n.ID+"/rules"), "rules")
	// The network moves on: a member joins.
	c.join(t, n.ID, "roamer")
	must(t, b.Fill("#rules", "allow from any to any on tcp/22\n"), "rules")
	must(t, b.Press("form[action$='/rules'] button[type=submit]"), "save")
	if got := text(t, b, "main"); !strings.Contains(got, "Rules saved") {
		t.Fatalf("saving after an unrelated change: %q", got)
	}
	// Someone else edits the rules meanwhile.
	must(t, b.Open("/n/"+n.ID+"/rules"), "rules")
	_, err := c.admin.SetRules(ctx, n.ID, control.SetRulesRequest{Rules: policy.DefaultRules()})
	must(t, err, "other edit")
	must(t, b.Fill("#rules", "allow from any to any on tcp/443\n"), "rules")
	must(t, b.Press("form[action$='/rules'] button[type=submit]"), "save")
	if got := text(t, b, ".error"); !strings.Contains(got, "changed since you read them") {
		t.Fatalf("saving over another's edit: %q", got)
	}
	got, err := c.admin.Network(ctx, n.ID)
	must(t, err, "network")
	if got.Rules.String() != policy.DefaultRules().String() {
		t.Fatalf("the other's edit was overwritten: %q", got.Rules.String())
	}
}

// The routes form's gateway list follows members given an address after
// the page was loaded, unless a gateway was already picked.
func TestRoutesGatewayListLive(t *testing.T) {
	c := startConsole(t)
	ctx := context.Background()
	n := c.clouds(t, true)
	b := c.adminBrowser(t)
	must(t, b.Open("/n/"+n.ID+"/routes"), "routes")
	node := c.join(t, n.ID, "late-gw")
	_, err := c.admin.SetMemberAddress(ctx, n.ID, node, netip.MustParseAddr("192.168.254.21"))
	must(t, err, "address")
	must(t, b.WaitFor(`[...document.querySelectorAll('#via option')].some((o) => o.value === '192.168.254.21')`, 10*time.Second), "late gateway listed live")
}
