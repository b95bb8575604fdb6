package webconsole_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/gatenet/gate/services/control"
)

// signedInClient is an HTTP client signed in to c's console, and the
// CSRF token of its session.
func signedInClient(t testing.TB, c *console, token string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, _ := postForm(t, hc, c.web+"/signin", url.Values{"token": {token}}, c.web)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %s", resp.Status)
	}
	body := get(t, hc, c.web+"/networks")
	_, after, _ := strings.Cut(body, `name="csrf" value="`)
	csrf, _, _ := strings.Cut(after, `"`)
	return hc, csrf
}

func get(t testing.TB, hc *http.Client, u string) string {
	t.Helper()
	resp, err := hc.Get(u)
	must(t, err, "GET "+u)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// Hostile input at the console: every byte from a browser is untrusted,
// and everything shown comes from the controller escaped.
func TestAttackWebConsole(t *testing.T) {
	c := startConsole(t)
	ctx := context.Background()
	hostile := "<script>alert(1)</script>\u202e\x1b[31m"
	n, err := c.admin.CreateNetwork(ctx, control.CreateNetworkRequest{Name: "evil", CIDR: netip.MustParsePrefix("10.9.0.0/24")})
	must(t, err, "create")
	hc, csrf := signedInClient(t, c, c.srv.AdminToken())

	t.Run("text from the controller is escaped", func(t *testing.T) {
		_, err := c.admin.CreateToken(ctx, n.ID, control.CreateTokenRequest{Note: "<img src=x onerror=alert(1)>"})
		if err != nil {
			t.Fatal(err)
		}
		body := get(t, hc, c.web+"/n/"+n.ID+"/tokens")
		if strings.Contains(body, "<img src=x") {
			t.Fatal("a token's note reached the page unescaped")
		}
		if !strings.Contains(body, "&lt;img src=x") {
			t.Fatal("a token's note is not on the page")
		}
	})
	t.Run("a hostile network name is refused with a message, escaped", func(t *testing.T) {
		form := url.Values{"csrf": {csrf}, "name": {hostile}, "cidr": {"10.10.0.0/24"}}
		resp, b := postForm(t, hc, c.web+"/networks", form, c.web)
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(b, "<script>alert") || strings.ContainsRune(b, '\x1b') {
			t.Fatalf("%s: %s", resp.Status, b)
		}
		if ns, _ := c.admin.Networks(ctx); len(ns) != 1 {
			t.Fatalf("networks after a refused name: %d", len(ns))
		}
	})
	t.Run("sign-in sends nowhere but this console", func(t *testing.T) {
		for _, next := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example", "/networks\r\nSet-Cookie: x=y", "javascript:alert(1)",
			"/\t/evil.example/x", "/%09/evil.example", "/\x7f/evil", "https:/evil.example", "/@evil.example"} {
			form := url.Values{"token": {c.srv.AdminToken()}, "next": {next}}
			resp, _ := postForm(t, hc, c.web+"/signin", form, "")
			// What a browser does with the Location: drops tabs and
			// newlines, reads a backslash as a slash, resolves it here.
			loc := resp.Header.Get("Location")
			asRead := strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(loc)
			base, _ := url.Parse(c.web + "/signin")
			to, err := base.Parse(asRead)
			if err != nil || to.Host != base.Host || to.Scheme != base.Scheme || strings.ContainsFunc(loc, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Errorf("next=%q sends to %q", next, loc)
			}
		}
	})
	t.Run("a cookie that is no session's", func(t *testing.T) {
		for _, v := range []string{"x", strings.Repeat("A", 4000), "%00%ff", hostile} {
			req, _ := http.NewRequest("GET", c.web+"/networks", nil)
			req.Header.Set("Cookie", "gate_session_"+c.srv.Web().ID()+"="+url.QueryEscape(v))
			resp, err := (&http.Client{CheckRedirect: hc.CheckRedirect}).Do(req)
			must(t, err, "get")
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/signin") {
				t.Errorf("cookie %.20q: %s %s", v, resp.Status, resp.Header.Get("Location"))
			}
		}
	})
	t.Run("sign-in with what is not an admin token", func(t *testing.T) {
		for _, tok := range []string{"", "gate://1.2.3.4:8443/0123456789abcdef?pin=sha256:00", strings.Repeat("x", 20000), hostile, "gate_admin_0123456789abcdef_nope"} {
			form := url.Values{"token": {tok}}
			resp, b := postForm(t, &http.Client{}, c.web+"/signin", form, "")
			if resp.StatusCode == http.StatusSeeOther || resp.StatusCode == http.StatusOK || resp.StatusCode >= 500 || strings.Contains(b, "<script>alert") {
				t.Errorf("token %.20q: %s", tok, resp.Status)
			}
			if len(resp.Cookies()) > 0 {
				t.Errorf("token %.20q got a cookie", tok)
			}
		}
	})
	t.Run("a hostile path reaches the log and the page quoted", func(t *testing.T) {
		// A refused change (no Origin of ours) is logged with its path.
		req, _ := http.NewRequest("POST", c.web+"/n/x%0aforged%20log%20line%1b%5b2J/rename", strings.NewReader(""))
		req.Header.Set("Origin", "http://evil.example")
		resp, err := hc.Do(req)
		must(t, err, "post")
		resp.Body.Close()
		body := get(t, hc, c.web+"/nothing%0a%1b%5b2Jhere")
		if strings.ContainsAny(body, "\x1b") {
			t.Errorf("an escape character from the path reached the page")
		}
		for _, l := range c.logs.all() {
			if strings.ContainsAny(l, "\n\x1b") {
				t.Errorf("log line with a raw control character: %q", l)
			}
		}
	})
	t.Run("an oversized form", func(t *testing.T) {
		form := url.Values{"csrf": {csrf}, "rules": {strings.Repeat("allow from any to any\n", 20000)}}
		resp, _ := postForm(t, hc, c.web+"/n/"+n.ID+"/rules", form, "")
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("a 440 KB form: %s", resp.Status)
		}
	})
	t.Run("the address check takes only addresses", func(t *testing.T) {
		node := c.join(t, n.ID, "m")
		for _, a := range []string{"", "10.9.0.300", "../../admin", hostile, strings.Repeat("1", 5000)} {
			body := get(t, hc, c.web+"/n/"+n.ID+"/m/"+node+"/check?address="+url.QueryEscape(a))
			if !strings.Contains(body, `"ok":false`) || strings.Contains(body, "<script>") {
				t.Errorf("check %.20q: %s", a, body)
			}
		}
		body := get(t, hc, c.web+"/n/"+n.ID+"/m/"+node+"/check?address=10.9.0.7")
		if !strings.Contains(body, `"ok":true`) {
			t.Errorf("check of a good address: %s", body)
		}
	})
}

// A form that makes a secret, sent twice (a reload of its answer, Back, a
// double click), makes one.
func TestFormSentTwice(t *testing.T) {
	c := startConsole(t)
	ctx := context.Background()
	n, err := c.admin.CreateNetwork(ctx, control.CreateNetworkRequest{Name: "n", CIDR: netip.MustParsePrefix("10.9.0.0/24")})
	must(t, err, "create")
	hc, csrf := signedInClient(t, c, c.srv.AdminToken())
	page := get(t, hc, c.web+"/n/"+n.ID+"/tokens")
	_, after, _ := strings.Cut(page, `name="once" value="`)
	once, _, _ := strings.Cut(after, `"`)
	form := url.Values{"csrf": {csrf}, "once": {once}, "expires": {"1h"}, "note": {"twice"}}
	var bodies []string
	for range 2 {
		resp, b := postForm(t, hc, c.web+"/n/"+n.ID+"/tokens", form, c.web)
		bodies = append(bodies, resp.Status+" "+b)
	}
	if !strings.HasPrefix(bodies[0], "200") || !strings.Contains(bodies[0], "gate://") {
		t.Fatalf("first sending: %.300s", bodies[0])
	}
	if !strings.HasPrefix(bodies[1], "409") || strings.Contains(bodies[1], "gate://") || !strings.Contains(bodies[1], "sent already") {
		t.Fatalf("second sending: %.300s", bodies[1])
	}
	ts, err := c.admin.Tokens(ctx, n.ID)
	must(t, err, "tokens")
	if len(ts) != 1 {
		t.Fatalf("%d tokens from one form sent twice", len(ts))
	}
	// A form without its once value makes nothing either.
	form.Del("once")
	resp, _ := postForm(t, hc, c.web+"/n/"+n.ID+"/tokens", form, "")
	if ts, _ := c.admin.Tokens(ctx, n.ID); resp.StatusCode != http.StatusConflict || len(ts) != 1 {
		t.Fatalf("without once: %s, %d tokens", resp.Status, len(ts))
	}
}
