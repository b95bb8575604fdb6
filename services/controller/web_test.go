package controller

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/webconsole"
)

var browser = netip.MustParseAddr("192.0.2.7")

// A session's life: it carries its token's role and scope, ends when
// signed out, when idle too long, at its age limit, and with its token
// (revoked or expired); the secret is never stored.
func TestWebSessions(t *testing.T) {
	e := newEnv(t)
	w := e.s.Web()
	op, err := e.admin.CreateAdminToken(e.ctx, control.CreateAdminTokenRequest{Name: "ops", Role: control.RoleOperator,
		Scope: control.Scope{Controller: true}, ExpiresIn: control.Duration(30 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := w.SignIn(e.ctx, op.Secret, browser)
	if err != nil {
		t.Fatal(err)
	}
	if sess.Secret == "" || sess.Role != control.RoleOperator || !sess.Scope.Controller || sess.TokenName != "ops" {
		t.Fatalf("session %+v", sess)
	}
	if !sess.Expires.Equal(e.clock.Now().Add(webconsole.MaxAge)) {
		t.Errorf("expires %s, want %s", sess.Expires, e.clock.Now().Add(webconsole.MaxAge))
	}
	// The session calls the API as its token: an operator may not make a
	// network, and the refusal is audited as the web console's.
	s2, api, err := w.Session(e.ctx, sess.Secret, browser)
	if err != nil || s2.TokenID != op.ID {
		t.Fatalf("session: %+v %v", s2, err)
	}
	_, err = api.CreateNetwork(e.ctx, control.CreateNetworkRequest{Name: "x", CIDR: netip.MustParsePrefix("10.1.0.0/24")})
	wantAPIError(t, "operator creating a network", err, http.StatusForbidden, "needs the admin role")
	es, err := e.admin.Audit(e.ctx, control.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, a := range es {
		switch a.Action {
		case "network.create":
			if a.Via != control.ViaWeb || a.Remote != browser || a.Outcome != control.OutcomeDenied || a.TokenID != op.ID {
				t.Errorf("refusal audited as %+v", a)
			}
			found++
		case "session.signin":
			if a.Via != control.ViaWeb || a.Remote != browser || a.Outcome != control.OutcomeOK {
				t.Errorf("sign-in audited as %+v", a)
			}
			found++
		}
	}
	if found != 2 {
		t.Fatalf("audit: %+v", es)
	}
	// The secret is not in the database, only its hash.
	e.s.store.Read(e.ctx, func(tx *Tx) error {
		var id string
		if err := tx.tx.QueryRowContext(tx.ctx, `SELECT id FROM sessions`).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(id, sess.Secret) || id != hashSecret(sess.Secret) {
			t.Errorf("sessions.id %q", id)
		}
		return nil
	})

	// Idle: used just inside the idle timeout, it lives on; unused for
	// longer, it ends.
	e.clock.Advance(webconsole.IdleTimeout - time.Minute)
	if _, _, err := w.Session(e.ctx, sess.Secret, browser); err != nil {
		t.Fatalf("used within the idle timeout: %v", err)
	}
	e.clock.Advance(webconsole.IdleTimeout - time.Minute)
	if _, _, err := w.Session(e.ctx, sess.Secret, browser); err != nil {
		t.Fatalf("used again within the idle timeout: %v", err)
	}
	e.clock.Advance(webconsole.IdleTimeout + time.Second)
	_, _, err = w.Session(e.ctx, sess.Secret, browser)
	wantAPIError(t, "idle session", err, http.StatusUnauthorized, "unused")

	// Age: kept busy, it still ends at MaxAge.
	sess, _ = w.SignIn(e.ctx, op.Secret, browser)
	for e.clock.Now().Before(sess.Expires) {
		w.Session(e.ctx, sess.Secret, browser)
		e.clock.Advance(6 * time.Hour)
	}
	_, _, err = w.Session(e.ctx, sess.Secret, browser)
	wantAPIError(t, "old session", err, http.StatusUnauthorized, "ended")

	// Its token revoked: the session ends at once.
	sess, _ = w.SignIn(e.ctx, op.Secret, browser)
	if _, err := e.admin.RevokeAdminToken(e.ctx, op.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = w.Session(e.ctx, sess.Secret, browser)
	wantAPIError(t, "revoked token's session", err, http.StatusUnauthorized, "revoked")

	// A token that expires before MaxAge: the session ends with it.
	brief, err := e.admin.CreateAdminToken(e.ctx, control.CreateAdminTokenRequest{Name: "brief", Role: control.RoleViewer,
		Scope: control.Scope{Controller: true}, ExpiresIn: control.Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	sess, err = w.SignIn(e.ctx, brief.Secret, browser)
	if err != nil || !sess.Expires.Equal(brief.Expires) {
		t.Fatalf("session of a token expiring in an hour: %+v %v", sess, err)
	}
	e.clock.Advance(time.Hour)
	_, _, err = w.Session(e.ctx, sess.Secret, browser)
	wantAPIError(t, "expired token's session", err, http.StatusUnauthorized, "expired")

	// Signing out ends it on the server; the built-in admin signs in too.
	sess, err = w.SignIn(e.ctx, e.s.AdminToken(), browser)
	if err != nil || sess.TokenID != control.BuiltinAdminID {
		t.Fatalf("built-in admin: %+v %v", sess, err)
	}
	if err := w.SignOut(e.ctx, sess.Secret, browser); err != nil {
		t.Fatal(err)
	}
	_, _, err = w.Session(e.ctx, sess.Secret, browser)
	wantAPIError(t, "signed-out session", err, http.StatusUnauthorized, "sign in again")

	// Garbage is no session, and says nothing of why.
	for _, s := range []string{"", "x", strings.Repeat("a", 5000), "\x00\xff"} {
		_, _, err := w.Session(e.ctx, s, browser)
		wantAPIError(t, "garbage session", err, http.StatusUnauthorized, "not signed in")
	}
	// Maintenance forgets the sessions that ended.
	e.clock.Advance(webconsole.MaxAge)
	if err := e.s.maintain(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.s.store.Read(e.ctx, func(tx *Tx) error {
		var n int
		tx.tx.QueryRowContext(tx.ctx, `SELECT count(*) FROM sessions`).Scan(&n)
		if n != 0 {
			t.Errorf("%d sessions left after they all ended", n)
		}
		return nil
	})
}

// The web console's live pages hear of every committed change.
func TestWebChanged(t *testing.T) {
	e := newEnv(t)
	ch := e.s.Web().Changed()
	select {
	case <-ch:
		t.Fatal("changed before any change")
	default:
	}
	e.mustNetwork("n", "10.3.0.0/24", false)
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no word of a change")
	}
}
