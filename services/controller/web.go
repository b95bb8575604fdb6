package controller

// The web console's side of the controller (services/webconsole draws the
// pages): sign-in, sessions, the admin API called in-process as a
// session, and word of changes for its live updates.
//
// A session is a row in the database (sessions), so that every replica
// knows it and signing out ends it everywhere: keyed by the SHA-256 of
// the cookie's secret (the secret itself is never stored), it names the
// admin token that signed in. The token is read again on every request, as
// a bearer token is (access.go): revoking it, or its expiry, ends its
// sessions at once; its role and scope are the session's.
//
// The console calls the same /v1 handlers as the CLI, through an
// http.RoundTripper that hands the request to them in this process with
// the session's principal already authenticated: the same checks of role
// and scope, the same validation, the same audit entries (marked "web"),
// and no second way to change anything.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/webconsole"
)

// Web is the controller as its web console needs it.
func (s *Server) Web() webconsole.Backend { return webBackend{s} }

type webBackend struct{ s *Server }

// sessionSeenEvery is how stale a session's last use may get in the
// database: a session in use costs a write a minute.
const sessionSeenEvery = time.Minute

var errNoSession = errorf(http.StatusUnauthorized, "not signed in, or the session ended: sign in again")

func (b webBackend) SignIn(ctx context.Context, token string, remote netip.Addr) (webconsole.Session, error) {
	s := b.s
	p, err := s.checkBearer(ctx, "Bearer "+strings.TrimSpace(token))
	if err != nil {
		return webconsole.Session{}, b.s.clientError(err)
	}
	now := s.now()
	secret := newSecret()
	expires := now.Add(webconsole.MaxAge)
	if !p.expires.IsZero() && p.expires.Before(expires) {
		expires = p.expires
	}
	p.via = control.ViaWeb
	tokenHash := ""
	if p.id == builtinAdmin.id {
		tokenHash = hashSecret(s.adminToken)
	}
	a := &auditEntry{who: p, remote: remote, action: "session.signin"}
	err = s.write(context.WithValue(ctx, auditKey{}, a), func(tx *Tx) error {
		_, err := tx.tx.ExecContext(tx.ctx, `INSERT INTO sessions (id, token_id, token_hash, created, expires, seen, remote) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			hashSecret(secret), p.id, tokenHash, nanos(now), nanos(expires), nanos(now), textAddr(remote))
		return err
	})
	if err != nil {
		return webconsole.Session{}, b.s.clientError(err)
	}
	s.logf("web console: %s signed in from %s", p, remote)
	return webconsole.Session{Secret: secret, TokenID: p.id, TokenName: p.name, Role: p.role, Scope: p.scope, Expires: expires}, nil
}

// token reads named admin token id; ok is false for the built-in one.
func (b webBackend) token(ctx context.Context, id string) (t adminTokenRec, ok bool, err error) {
	if id == builtinAdmin.id {
		return t, false, nil
	}
	err = b.s.store.Read(ctx, func(tx *Tx) (err error) {
		t, ok, err = tx.adminToken(id)
		return err
	})
	if err == nil && !ok {
		err = errNoSession // its token is gone
	}
	return t, ok, err
}

type sessionRec struct {
	id, tokenID, tokenHash string
	created, expires, seen time.Time
}

// session finds the session of secret and its principal; touch records
// its use (a person's request; not a live page's own refresh, which
// would keep an abandoned tab's session from ever going idle).
func (b webBackend) session(ctx context.Context, secret string, touch bool) (sessionRec, principal, error) {
	s := b.s
	var r sessionRec
	if secret == "" || len(secret) > 128 {
		return r, principal{}, errNoSession
	}
	r.id = hashSecret(secret)
	var created, expires, seen int64
	err := s.store.Read(ctx, func(tx *Tx) error {
		return tx.tx.QueryRowContext(tx.ctx, `SELECT token_id, token_hash, created, expires, seen FROM sessions WHERE id = $1`, r.id).
			Scan(&r.tokenID, &r.tokenHash, &created, &expires, &seen)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return r, principal{}, errNoSession
	}
	if err != nil {
		return r, principal{}, err
	}
	r.created, r.expires, r.seen = fromNanos(created), fromNanos(expires), fromNanos(seen)
	now := s.now()
	// The token first: a session that ends with its token says so.
	p := builtinAdmin
	if t, ok, err := b.token(ctx, r.tokenID); err != nil {
		return r, principal{}, err
	} else if ok {
		if err := t.live(now); err != nil {
			return r, principal{}, err
		}
		p = t.principal()
	} else if !matchesHash(r.tokenHash, s.adminToken) {
		return r, principal{}, errorf(http.StatusUnauthorized, "the controller's admin token was replaced since this session signed in with it: sign in again")
	}
	switch {
	case !now.Before(r.expires):
		return r, principal{}, errorf(http.StatusUnauthorized, "the session ended at %s: sign in again", r.expires.UTC().Format(time.RFC3339))
	case now.Sub(r.seen) >= webconsole.IdleTimeout:
		return r, principal{}, errorf(http.StatusUnauthorized, "the session ended after %s unused: sign in again", webconsole.IdleTimeout)
	}
	p.via = control.ViaWeb
	if touch && now.Sub(r.seen) >= sessionSeenEvery {
		err := s.store.Write(context.WithoutCancel(ctx), func(tx *Tx) error {
			_, err := tx.tx.ExecContext(tx.ctx, `UPDATE sessions SET seen = $2 WHERE id = $1 AND seen < $2`, r.id, nanos(now))
			return err
		})
		if err != nil {
			s.logf("web console: recording a session's use: %v", err)
		}
	}
	return r, p, nil
}

func (b webBackend) Session(ctx context.Context, secret string, remote netip.Addr, touch bool) (webconsole.Session, *control.Client, error) {
	r, p, err := b.session(ctx, secret, touch)
	if err != nil {
		return webconsole.Session{}, nil, b.s.clientError(err)
	}
	expires := r.expires
	if idle := b.s.now().Add(webconsole.IdleTimeout); idle.Before(expires) {
		expires = idle
	}
	c := control.NewClientVia(&http.Client{Transport: inProcess{s: b.s, p: p, remote: remote}}, "http://controller")
	return webconsole.Session{TokenID: p.id, TokenName: p.name, Role: p.role, Scope: p.scope, Expires: expires}, c, nil
}

func (b webBackend) SignOut(ctx context.Context, secret string, remote netip.Addr) error {
	r, p, err := b.session(ctx, secret, false)
	if err != nil {
		return b.s.clientError(err)
	}
	a := &auditEntry{who: p, remote: remote, action: "session.signout"}
	err = b.s.write(context.WithValue(ctx, auditKey{}, a), func(tx *Tx) error {
		_, err := tx.tx.ExecContext(tx.ctx, `DELETE FROM sessions WHERE id = $1`, r.id)
		return err
	})
	return b.s.clientError(err)
}

func (b webBackend) Changed() <-chan struct{} { return b.s.changes.wait() }

// ID is the first 12 hex digits of the controller's pin: every replica's.
func (b webBackend) ID() string {
	return strings.TrimPrefix(b.s.pin, "sha256:")[:12]
}

// pruneSessions forgets sessions that ended.
func (tx *Tx) pruneSessions(now time.Time) error {
	_, err := tx.tx.ExecContext(tx.ctx, `DELETE FROM sessions WHERE expires <= $1 OR seen <= $2`, nanos(now), nanos(now.Add(-webconsole.IdleTimeout)))
	return err
}

// clientError turns a controller error into what a client of the API
// would have been told: an internal error's cause is logged, not told.
func (s *Server) clientError(err error) error {
	if err == nil {
		return nil
	}
	status := statusOf(err)
	if status == http.StatusInternalServerError {
		s.logf("web console: %v", err)
		return &control.APIError{Status: status, Message: "internal error; see the controller's log"}
	}
	return &control.APIError{Status: status, Message: err.Error()}
}

// inProcess hands a request to the API's handlers in this process, as
// principal p from remote.
type inProcess struct {
	s      *Server
	p      principal
	remote netip.Addr
}

func (t inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(context.WithValue(r.Context(), authKey{}, authResult{p: t.p}))
	r.RemoteAddr = netip.AddrPortFrom(t.remote, 0).String()
	if r.Body == nil {
		r.Body = http.NoBody
	}
	w := &recorder{h: http.Header{}, status: http.StatusOK}
	t.s.handler.ServeHTTP(w, r)
	return &http.Response{Status: http.StatusText(w.status), StatusCode: w.status, Header: w.h, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Body: io.NopCloser(&w.body), ContentLength: int64(w.body.Len()), Request: r}, nil
}

// recorder is the answer of an in-process request.
type recorder struct {
	h      http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.h }
func (w *recorder) WriteHeader(status int) {
	if !w.wrote {
		w.status, w.wrote = status, true
	}
}
func (w *recorder) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

// changeSignal wakes everyone waiting at once: a channel closed and
// replaced at each change.
type changeSignal struct {
	mu sync.Mutex
	c  chan struct{}
}

func (b *changeSignal) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c == nil {
		b.c = make(chan struct{})
	}
	return b.c
}

func (b *changeSignal) notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c != nil {
		close(b.c)
		b.c = nil
	}
}

// WebConfig says where the web console is served.
//
// Browsers do not trust the controller's own certificate, which members
// pin and which must stay as it is, so the console has a listener of its
// own: with the operator's certificate (CertFile, KeyFile: one a browser
// trusts, re-read when the files change, as a renewal does) on any
// address, or without TLS on a loopback address only, to be reached
// through an SSH tunnel (ssh -L 8444:127.0.0.1:8444 controller-host).
type WebConfig struct {
	Listen            string // HOST:PORT; "" for no console
	CertFile, KeyFile string
}

type webServer struct {
	s    *Server
	cfg  WebConfig
	ln   net.Listener
	cert *certFiles // nil: plain HTTP on loopback
}

func (s *Server) newWebServer(cfg WebConfig) (*webServer, error) {
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: want HOST:PORT", cfg.Listen)
	}
	w := &webServer{s: s, cfg: cfg}
	switch {
	case (cfg.CertFile == "") != (cfg.KeyFile == ""):
		return nil, errors.New("give both a certificate and its key, or neither")
	case cfg.CertFile != "":
		w.cert = &certFiles{cert: cfg.CertFile, key: cfg.KeyFile}
		if _, err := w.cert.get(nil); err != nil {
			return nil, err
		}
	default:
		ip, err := netip.ParseAddr(host)
		if host != "localhost" && (err != nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("listen address %q: without a certificate (--web-cert, --web-key) the console listens on loopback only (127.0.0.1:PORT, reached through an SSH tunnel): sign-ins must not cross a network in the clear", cfg.Listen)
		}
	}
	if w.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, err
	}
	return w, nil
}

// WebAddr is where the web console listens; "" when there is none.
func (s *Server) WebAddr() string {
	if s.web == nil {
		return ""
	}
	return s.web.ln.Addr().String()
}

func (w *webServer) serve(ctx context.Context) error {
	srv := &http.Server{
		Handler:           webconsole.New(w.s.Web(), w.s.logf),
		ReadHeaderTimeout: 10 * time.Second,
		// A request, body included, is read within 30 s (a form is at
		// most 256 KiB); an event stream, once its request is read, is
		// not held to it.
		ReadTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute,
		// Requests end with the controller, live pages' streams too.
		BaseContext: func(net.Listener) context.Context { return ctx },
		ErrorLog:    log.New(logWriter(w.s.logf), "web console: ", 0),
	}
	// Connections capped as the members' listener's are (connlimit.go),
	// at a size for people: a page and its event stream each.
	ln := net.Listener(&limitedListener{Listener: w.ln, limit: newConnLimiter(webMaxConns, webMaxConnsPerSource)})
	scheme := "http"
	if w.cert != nil {
		scheme = "https"
		ln = tls.NewListener(ln, &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: w.cert.get, NextProtos: []string{"h2", "http/1.1"}})
	}
	w.s.logf("web console on %s://%s/", scheme, w.ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	<-errc
	return nil
}

// certFiles is a certificate and key read from files, read again when
// either changes (checked at most once a minute).
type certFiles struct {
	cert, key string
	every     time.Duration // how often to look at the files; 0: a minute
	mu        sync.Mutex
	loaded    *tls.Certificate
	stamp     string
	checked   time.Time
}

func (c *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded != nil && time.Since(c.checked) < cmp.Or(c.every, time.Minute) {
		return c.loaded, nil
	}
	c.checked = time.Now()
	stamp := ""
	for _, f := range []string{c.cert, c.key} {
		fi, err := os.Stat(f)
		if err != nil {
			if c.loaded != nil {
				return c.loaded, nil
			}
			return nil, err
		}
		stamp += fmt.Sprintf("%d.%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	if c.loaded != nil && stamp == c.stamp {
		return c.loaded, nil
	}
	crt, err := tls.LoadX509KeyPair(c.cert, c.key)
	if err != nil {
		if c.loaded != nil {
			return c.loaded, nil // a renewal half written: keep the last good one
		}
		return nil, fmt.Errorf("web certificate: %w", err)
	}
	c.loaded, c.stamp = &crt, stamp
	return c.loaded, nil
}

// Caps on the web console's connections.
const (
	webMaxConns          = 512
	webMaxConnsPerSource = 64
)

// limitedListener closes at once a connection over its limiter's caps.
type limitedListener struct {
	net.Listener
	limit *connLimiter
}

func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if counted, over := l.limit.admit(c); over == "" {
			return counted, nil
		}
		c.Close()
	}
}
