package controller

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
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
	s2, api, err := w.Session(e.ctx, sess.Secret, browser, true)
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
	if _, _, err := w.Session(e.ctx, sess.Secret, browser, true); err != nil {
		t.Fatalf("used within the idle timeout: %v", err)
	}
	e.clock.Advance(webconsole.IdleTimeout - time.Minute)
	if _, _, err := w.Session(e.ctx, sess.Secret, browser, true); err != nil {
		t.Fatalf("used again within the idle timeout: %v", err)
	}
	// A live page's own refreshes are not its use.
	e.clock.Advance(webconsole.IdleTimeout / 2)
	if _, _, err := w.Session(e.ctx, sess.Secret, browser, false); err != nil {
		t.Fatalf("a live page's refresh: %v", err)
	}
	e.clock.Advance(webconsole.IdleTimeout/2 + time.Second)
	_, _, err = w.Session(e.ctx, sess.Secret, browser, false)
	wantAPIError(t, "idle session", err, http.StatusUnauthorized, "unused")

	// Age: kept busy, it still ends at MaxAge.
	sess, _ = w.SignIn(e.ctx, op.Secret, browser)
	for e.clock.Now().Before(sess.Expires) {
		w.Session(e.ctx, sess.Secret, browser, true)
		e.clock.Advance(6 * time.Hour)
	}
	_, _, err = w.Session(e.ctx, sess.Secret, browser, true)
	wantAPIError(t, "old session", err, http.StatusUnauthorized, "ended")

	// Its token revoked: the session ends at once.
	sess, _ = w.SignIn(e.ctx, op.Secret, browser)
	if _, err := e.admin.RevokeAdminToken(e.ctx, op.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = w.Session(e.ctx, sess.Secret, browser, true)
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
	_, _, err = w.Session(e.ctx, sess.Secret, browser, true)
	wantAPIError(t, "expired token's session", err, http.StatusUnauthorized, "expired")

	// Signing out ends it on the server; the built-in admin signs in too.
	sess, err = w.SignIn(e.ctx, e.s.AdminToken(), browser)
	if err != nil || sess.TokenID != control.BuiltinAdminID {
		t.Fatalf("built-in admin: %+v %v", sess, err)
	}
	if err := w.SignOut(e.ctx, sess.Secret, browser); err != nil {
		t.Fatal(err)
	}
	_, _, err = w.Session(e.ctx, sess.Secret, browser, true)
	wantAPIError(t, "signed-out session", err, http.StatusUnauthorized, "sign in again")

	// Garbage is no session, and says nothing of why.
	for _, s := range []string{"", "x", strings.Repeat("a", 5000), "\x00\xff"} {
		_, _, err := w.Session(e.ctx, s, browser, true)
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

// writeCert writes a self-signed certificate for 127.0.0.1 and its key;
// it returns the certificate.
func writeCert(t *testing.T, certFile, keyFile, name string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(keyFile+".new", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
	os.WriteFile(certFile+".new", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.Rename(keyFile+".new", keyFile)
	os.Rename(certFile+".new", certFile)
	c, _ := x509.ParseCertificate(der)
	return c
}

// The console over TLS with the operator's certificate, picked up again
// when it is renewed; without one, only on loopback.
func TestWebListener(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "web.crt"), filepath.Join(dir, "web.key")
	first := writeCert(t, certFile, keyFile, "first")
	e := startEnvWith(t, func(c *Config) { c.Web = WebConfig{Listen: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile} },
		func(s *Server) { s.web.cert.every = time.Nanosecond })
	go e.s.web.serve(t.Context())
	fetch := func(want *x509.Certificate) {
		t.Helper()
		pool := x509.NewCertPool()
		pool.AddCert(want)
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		defer hc.CloseIdleConnections()
		var resp *http.Response
		var err error
		for i := 0; i < 50; i++ {
			if resp, err = hc.Get("https://" + e.s.WebAddr() + "/signin"); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("GET /signin over TLS with %s: %v", want.Subject.CommonName, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Strict-Transport-Security") == "" {
			t.Fatalf("GET /signin over TLS: %s, HSTS %q", resp.Status, resp.Header.Get("Strict-Transport-Security"))
		}
	}
	fetch(first)
	time.Sleep(10 * time.Millisecond) // a new modification time
	second := writeCert(t, certFile, keyFile, "second")
	fetch(second)

	for _, tc := range []struct {
		web  WebConfig
		want string
	}{
		{WebConfig{Listen: "0.0.0.0:0"}, "loopback only"},
		{WebConfig{Listen: "192.0.2.1:8444"}, "loopback only"},
		{WebConfig{Listen: "127.0.0.1:0", CertFile: certFile}, "both a certificate and its key"},
		{WebConfig{Listen: "127.0.0.1:0", CertFile: keyFile, KeyFile: certFile}, "web certificate"},
		{WebConfig{Listen: "nonsense"}, "HOST:PORT"},
	} {
		_, err := New(Config{StateDir: t.TempDir(), Listen: "127.0.0.1:8443", Web: tc.web})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("web %+v: %v, want %q", tc.web, err, tc.want)
		}
	}
}

// Replacing the admin-token file (the way to revoke the built-in admin)
// ends the sessions it signed in.
func TestWebSessionsBuiltinReplaced(t *testing.T) {
	dir := t.TempDir()
	e := startEnv(t, dir)
	sess, err := e.s.Web().SignIn(e.ctx, e.s.AdminToken(), browser)
	if err != nil {
		t.Fatal(err)
	}
	e.stop()
	e = startEnv(t, dir)
	if _, _, err := e.s.Web().Session(e.ctx, sess.Secret, browser, true); err != nil {
		t.Fatalf("after a restart with the same file: %v", err)
	}
	e.stop()
	if err := os.WriteFile(filepath.Join(dir, tokenFile), []byte("a-new-admin-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e = startEnv(t, dir)
	_, _, err = e.s.Web().Session(e.ctx, sess.Secret, browser, true)
	wantAPIError(t, "session of a replaced admin token", err, http.StatusUnauthorized, "replaced")
}
