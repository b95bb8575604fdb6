package webconsole_test

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/gatenet/gate/services/control"
)

// What the forms tell an operator: settings saved, Explain by a member's
// name, a token without a scope, a route through an address nobody has,
// the removal of a route's gateway.
func TestFormsSayWhatHappened(t *testing.T) {
	c := startConsole(t)
	ctx := context.Background()
	n := c.clouds(t, true)
	node := c.join(t, n.ID, "aws-gw-1")
	_, err := c.admin.SetMemberAddress(ctx, n.ID, node, netip.MustParseAddr("192.168.254.11"))
	must(t, err, "address")
	hc, csrf := signedInClient(t, c, c.srv.AdminToken())
	post := func(path string, form url.Values) (*http.Response, string) {
		t.Helper()
		form.Set("csrf", csrf)
		resp, body := postForm(t, hc, c.web+path, form, c.web)
		if resp.StatusCode == http.StatusSeeOther {
			body = get(t, hc, c.web+resp.Header.Get("Location"))
		}
		return resp, body
	}

	// Settings: how new members come in, and the MTU.
	if resp, _ := post("/n/"+n.ID+"/settings", url.Values{"admission": {"token"}, "mtu": {"1380"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("settings: %s", resp.Status)
	}
	got, err := c.admin.Network(ctx, n.ID)
	must(t, err, "network")
	if !got.RequireToken || got.AutoAllow || got.MTU != 1380 {
		t.Fatalf("after settings: require_token %v auto_allow %v mtu %d", got.RequireToken, got.AutoAllow, got.MTU)
	}
	if resp, body := post("/n/"+n.ID+"/settings", url.Values{"admission": {"token"}, "mtu": {"99999"}}); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "mtu 99999") {
		t.Errorf("a bad MTU: %s", resp.Status)
	}

	// A route through a backup nobody has yet is taken, and said so.
	_, body := post("/n/"+n.ID+"/routes", url.Values{"dest": {"172.16.0.0/16"}, "via": {"192.168.254.11"}, "backups": {"192.168.254.99"}})
	if !strings.Contains(body, "then 192.168.254.99 added") || !strings.Contains(body, "No member has 192.168.254.99 yet") {
		t.Errorf("route with an unheld backup: flash not found in\n%.2000s", body)
	}
	// Its Edit link fills the form in to replace it; saving replaces it
	// in one change.
	routes := get(t, hc, c.web+"/n/"+n.ID+"/routes")
	if !strings.Contains(routes, `aria-label="Edit the route to 172.16.0.0/16"`) {
		t.Errorf("no Edit link for the route")
	}
	edit := get(t, hc, c.web+"/n/"+n.ID+"/routes?dest=172.16.0.0/16&via=192.168.254.11&backups=192.168.254.99")
	if !strings.Contains(edit, `name="replace" checked`) || !strings.Contains(edit, `value="192.168.254.99"`) || !strings.Contains(edit, "Change a route") {
		t.Errorf("the edit form is not filled in")
	}
	_, body = post("/n/"+n.ID+"/routes", url.Values{"dest": {"172.16.0.0/16"}, "via": {"192.168.254.11"}, "replace": {"1"}})
	if !strings.Contains(body, "Route to 172.16.0.0/16 via 192.168.254.11 set.") {
		t.Errorf("replacing the route: flash not found")
	}
	if got, _ := c.admin.Network(ctx, n.ID); len(got.Routes) != 1 || len(got.Routes[0].Backups) != 0 {
		t.Errorf("after replacing: %+v", got.Routes)
	}

	// Removing that gateway warns of its route.
	page := get(t, hc, c.web+"/n/"+n.ID)
	if !strings.Contains(page, "It is a gateway of the routes to 172.16.0.0/16") {
		t.Errorf("the remove confirmation of a route's gateway does not name the route")
	}

	// Explain takes a member's name, as its label says.
	_, body = post("/n/"+n.ID+"/rules/test", url.Values{"from": {"aws-gw-1"}, "to": {"192.168.254.12"}, "proto": {"tcp"}, "port": {"22"}})
	if !strings.Contains(body, `class="decision allow"`) {
		t.Errorf("explain from a member's name:\n%.3000s", body)
	}

	// A join token revoked on its page is refused from then on.
	tok, err := c.admin.CreateToken(ctx, n.ID, control.CreateTokenRequest{Note: "leaked"})
	must(t, err, "token")
	if !strings.Contains(get(t, hc, c.web+"/n/"+n.ID+"/tokens"), "/tokens/"+tok.ID+"/revoke") {
		t.Errorf("no revoke button for a live token")
	}
	_, body = post("/n/"+n.ID+"/tokens/"+tok.ID+"/revoke", url.Values{})
	if !strings.Contains(body, "Join token "+tok.ID+" revoked") || strings.Contains(body, "/tokens/"+tok.ID+"/revoke") {
		t.Errorf("after revoking: flash or button wrong")
	}
	if ts, _ := c.admin.Tokens(ctx, n.ID); len(ts) != 1 || ts[0].Revoked.IsZero() {
		t.Errorf("tokens after revoking: %+v", ts)
	}

	// An admin token needs a scope, said in the console's words.
	resp, body := post("/access", url.Values{"once": {onceOf(t, hc, c.web+"/access")}, "name": {"bob"}, "role": {"operator"}, "scope": {"networks"}, "expires": {"30d"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Choose at least one network") {
		t.Errorf("a token without a scope: %s", resp.Status)
	}
	if ts, _ := c.admin.AdminTokens(ctx); len(ts) != 1 {
		t.Errorf("%d admin tokens after a refused form", len(ts))
	}
}

// onceOf reads a fresh once value from the form on page u.
func onceOf(t *testing.T, hc *http.Client, u string) string {
	t.Helper()
	_, after, _ := strings.Cut(get(t, hc, u), `name="once" value="`)
	v, _, _ := strings.Cut(after, `"`)
	return v
}
