package controller

import (
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatenet/gate/services/control"
)

func TestTokens(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("seed", "192.168.254.0/24", false)
	other := e.mustNetwork("other", "10.0.0.0/24", false)

	// A single-use token: used once, retried by the same node, refused to others.
	single := e.mustToken(nw.ID, control.CreateTokenRequest{Allow: true, Note: "for the droplet"})
	a, b := e.newNode(), e.newNode()
	if mc := e.mustJoin(a, nw.ID, single); mc.Status != control.StatusOK {
		t.Fatalf("join with allowing token: %+v", mc)
	}
	if mc := e.mustJoin(a, nw.ID, single); mc.Status != control.StatusOK {
		t.Fatalf("same node retries: %+v", mc)
	}
	_, err := b.c.Join(e.ctx, nw.ID, b.joinReq(single))
	wantAPIError(t, "reuse", err, 403, "join token already used")
	ts, _ := e.admin.Tokens(e.ctx, nw.ID)
	if len(ts) != 1 || ts[0].Uses != 1 || ts[0].Note != "for the droplet" || ts[0].JoinString != "" {
		t.Errorf("tokens: %+v", ts)
	}
	e.s.store.Read(e.ctx, func(tx *Tx) error {
		tr, _, _ := tx.tokenByHash(hashSecret(single))
		if tr.UsedBy != a.id.NodeID() {
			t.Errorf("used_by %q, want %q", tr.UsedBy, a.id.NodeID())
		}
		return nil
	})

	// Wrong network, unknown, expired.
	_, err = b.c.Join(e.ctx, other.ID, b.joinReq(e.mustToken(nw.ID, control.CreateTokenRequest{})))
	wantAPIError(t, "wrong network", err, 403, "not valid for network "+other.ID)
	_, err = b.c.Join(e.ctx, nw.ID, b.joinReq(newSecret()))
	wantAPIError(t, "unknown", err, 403, "invalid join token")
	short := e.mustToken(nw.ID, control.CreateTokenRequest{ExpiresIn: control.Duration(time.Hour), Reusable: true})
	e.clock.Advance(time.Hour)
	_, err = b.c.Join(e.ctx, nw.ID, b.joinReq(short))
	wantAPIError(t, "expired", err, 403, "join token expired")
	if ms, _ := e.admin.Members(e.ctx, nw.ID); len(ms) != 1 {
		t.Errorf("refused joins left members: %+v", ms)
	}

	// A reusable token without allow: members wait for an admin.
	reusable := e.mustToken(nw.ID, control.CreateTokenRequest{Reusable: true})
	c := e.newNode()
	for _, n := range []*node{b, c} {
		if mc := e.mustJoin(n, nw.ID, reusable); mc.Status != control.StatusRequesting {
			t.Errorf("join with plain token: %+v", mc)
		}
	}
	// A pending member that comes back with an allowing token is let in.
	if mc := e.mustJoin(b, nw.ID, e.mustToken(nw.ID, control.CreateTokenRequest{Allow: true})); mc.Status != control.StatusOK {
		t.Errorf("pending member with allowing token: %+v", mc)
	}

	// Token addresses: checked when made, given at join.
	before := e.snapshot()
	for _, tc := range []struct {
		addr   string
		status int
		msg    string
	}{
		{"10.0.0.5", 400, "token address 10.0.0.5 is outside the network 192.168.254.0/24"},
		{"192.168.254.255", 400, "broadcast"},
		{"192.168.254.1", 409, "token address 192.168.254.1 is already assigned to member " + a.id.NodeID()},
	} {
		_, err := e.admin.CreateToken(e.ctx, nw.ID, control.CreateTokenRequest{Address: netip.MustParseAddr(tc.addr)})
		wantAPIError(t, "token address "+tc.addr, err, tc.status, tc.msg)
	}
	_, err = e.admin.CreateToken(e.ctx, nw.ID, control.CreateTokenRequest{ExpiresIn: control.Duration(400 * 24 * time.Hour)})
	wantAPIError(t, "long token", err, 400, "expires_in")
	if after := e.snapshot(); after != before {
		t.Errorf("bad token requests changed state:\n%s\n%s", before, after)
	}
	static := e.mustToken(nw.ID, control.CreateTokenRequest{Allow: true, Address: netip.MustParseAddr("192.168.254.11")})
	taker := e.mustToken(nw.ID, control.CreateTokenRequest{Allow: true})
	d, f := e.newNode(), e.newNode()
	// Another member asks for .11 while the token promises it: it gets
	// an address from the pool instead, and the token's join gets .11.
	req := f.joinReq(taker)
	req.RequestedAddress = netip.MustParseAddr("192.168.254.11")
	if mc, err := f.c.Join(e.ctx, nw.ID, req); err != nil || mc.Addresses[0].String() == "192.168.254.11/24" {
		t.Fatalf("requested address promised by a token: %+v, %v", mc, err)
	}
	// Nor can an admin give it to someone else meanwhile.
	_, err = e.admin.SetMemberAddress(e.ctx, nw.ID, f.id.NodeID(), netip.MustParseAddr("192.168.254.11"))
	wantAPIError(t, "set-ip onto a token's address", err, 409, "address 192.168.254.11 is reserved: promised by join token")
	// Nor can another token promise it twice.
	_, err = e.admin.CreateToken(e.ctx, nw.ID, control.CreateTokenRequest{Address: netip.MustParseAddr("192.168.254.11")})
	wantAPIError(t, "a second token for .11", err, 409, "token address 192.168.254.11 is reserved: promised by join token")
	if mc := e.mustJoin(d, nw.ID, static); mc.Status != control.StatusOK || mc.Addresses[0].String() != "192.168.254.11/24" {
		t.Errorf("token address: %+v", mc)
	}
	// Once used, the promise is kept by the member that holds it; if an
	// admin moves that member away, the token (single-use) no longer
	// keeps the address.
	if _, err := e.admin.SetMemberAddress(e.ctx, nw.ID, d.id.NodeID(), netip.MustParseAddr("192.168.254.12")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.SetMemberAddress(e.ctx, nw.ID, f.id.NodeID(), netip.MustParseAddr("192.168.254.11")); err != nil {
		t.Errorf("set-ip onto a used token's address: %v", err)
	}
	// A plain request for a taken address falls back to the pool.
	g := e.newNode()
	req = g.joinReq(e.mustToken(nw.ID, control.CreateTokenRequest{Allow: true}))
	req.RequestedAddress = netip.MustParseAddr("192.168.254.11")
	if mc, err := g.c.Join(e.ctx, nw.ID, req); err != nil || mc.Status != control.StatusOK || mc.Addresses[0].String() == "192.168.254.11/24" {
		t.Errorf("taken requested address: %+v, %v", mc, err)
	}
	if logs := e.allLogs(); containsAny(logs, single, short, reusable, static, taker) {
		t.Errorf("token secrets in the log")
	}
}

func containsAny(s string, subs ...string) bool {
	return slices.ContainsFunc(subs, func(sub string) bool { return strings.Contains(s, sub) })
}

// TestTokenRecordsInstance: a node joining with user-data says which cloud
// instance it is; the token remembers it, the admin sees it, and a copy of
// the user-data used on another machine is refused naming the instance.
func TestTokenRecordsInstance(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("seed", "192.168.254.0/24", false)
	tok := e.mustToken(nw.ID, control.CreateTokenRequest{Allow: true})
	a, b := e.newNode(), e.newNode()
	req := a.joinReq(tok)
	req.InstanceID = "i-0a1b2c3d4e5f60718"
	if _, err := a.c.Join(e.ctx, nw.ID, req); err != nil {
		t.Fatal(err)
	}
	copied := b.joinReq(tok)
	copied.InstanceID = "i-0ffffffffffffffff"
	_, err := b.c.Join(e.ctx, nw.ID, copied)
	wantAPIError(t, "copied user-data", err, 403, "join token already used (by instance i-0a1b2c3d4e5f60718)")
	ts, _ := e.admin.Tokens(e.ctx, nw.ID)
	if len(ts) != 1 || ts[0].UsedByInstance != "i-0a1b2c3d4e5f60718" || ts[0].UsedBy != a.id.NodeID() {
		t.Errorf("tokens: %+v", ts)
	}
	long := b.joinReq(e.mustToken(nw.ID, control.CreateTokenRequest{}))
	long.InstanceID = strings.Repeat("i", 200)
	_, err = b.c.Join(e.ctx, nw.ID, long)
	wantAPIError(t, "long instance ID", err, 400, "instance_id")
}

// A revoked join token is refused from then on, and holds its address no
// more; revoking is an operator's, audited, idempotent.
func TestTokenRevoke(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("seed", "192.168.254.0/24", false)
	other := e.mustNetwork("other", "10.0.0.0/24", false)
	tok, err := e.admin.CreateToken(e.ctx, nw.ID, control.CreateTokenRequest{Allow: true, Reusable: true, Address: netip.MustParseAddr("192.168.254.20"), Note: "leaked"})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := control.ParseJoinString(tok.JoinString)
	a := e.newNode()
	if mc := e.mustJoin(a, nw.ID, js.Token); mc.Status != control.StatusOK {
		t.Fatalf("join before revocation: %+v", mc)
	}
	// An unused token's address cannot go to another member while it
	// lives; once revoked, it can.
	unused, err := e.admin.CreateToken(e.ctx, nw.ID, control.CreateTokenRequest{Address: netip.MustParseAddr("192.168.254.21")})
	if err != nil {
		t.Fatal(err)
	}
	m := e.newNode()
	e.mustJoin(m, nw.ID, "")
	_, err = e.admin.SetMemberAddress(e.ctx, nw.ID, m.id.NodeID(), netip.MustParseAddr("192.168.254.21"))
	wantAPIError(t, "a live token's address", err, http.StatusConflict, "promised by join token")
	if _, err := e.admin.RevokeToken(e.ctx, nw.ID, unused.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.SetMemberAddress(e.ctx, nw.ID, m.id.NodeID(), netip.MustParseAddr("192.168.254.21")); err != nil {
		t.Errorf("a revoked token's address: %v", err)
	}

	viewer, err := e.admin.CreateAdminToken(e.ctx, control.CreateAdminTokenRequest{Name: "v", Role: control.RoleViewer, Scope: control.Scope{Controller: true}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.client(nil, viewer.Secret).RevokeToken(e.ctx, nw.ID, tok.ID)
	wantAPIError(t, "viewer revoking", err, http.StatusForbidden, "needs the operator role")
	_, err = e.admin.RevokeToken(e.ctx, other.ID, tok.ID)
	wantAPIError(t, "another network's token", err, http.StatusNotFound, "not found in network "+other.ID)
	_, err = e.admin.RevokeToken(e.ctx, nw.ID, "nothex")
	wantAPIError(t, "a malformed ID", err, http.StatusBadRequest, "want 16 hex digits")

	start := e.clock.Now()
	got, err := e.admin.RevokeToken(e.ctx, nw.ID, tok.ID)
	if err != nil || !got.Revoked.Equal(start) || !got.Expires.Equal(start) {
		t.Fatalf("revoke: %+v, %v", got, err)
	}
	e.clock.Advance(time.Second)
	again, err := e.admin.RevokeToken(e.ctx, nw.ID, tok.ID)
	if err != nil || !again.Revoked.Equal(start) {
		t.Fatalf("revoking again: %+v, %v", again, err)
	}
	b := e.newNode()
	_, err = b.c.Join(e.ctx, nw.ID, b.joinReq(js.Token))
	wantAPIError(t, "a revoked token", err, http.StatusForbidden, "join token revoked")
	// The members that joined with it stay.
	if ms, _ := e.admin.Members(e.ctx, nw.ID); len(ms) != 2 {
		t.Errorf("members after revocation: %d", len(ms))
	}
	ts, _ := e.admin.Tokens(e.ctx, nw.ID)
	if len(ts) != 2 || ts[0].Revoked.IsZero() || ts[1].Revoked.IsZero() {
		t.Errorf("tokens: %+v", ts)
	}
	es, _ := e.admin.Audit(e.ctx, control.AuditQuery{NetworkID: nw.ID})
	n := 0
	for _, a := range es {
		if a.Action == "token.revoke" && a.Target == tok.ID && a.Outcome == control.OutcomeOK {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d token.revoke entries, want 2", n)
	}
}
