package controller

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/state"
)

// Config configures a controller.
type Config struct {
	// StateDir holds controller.key (0600), admin-token (0600),
	// controller.db and controller.url.
	StateDir string
	// DB is the database: a PostgreSQL URL (postgres://USER@HOST/NAME,
	// its password best in ~/.pgpass or $PGPASSWORD) or a SQLite file;
	// "" is SQLite in StateDir (controller.db). See Open.
	DB string
	// Listen is the address to listen on, e.g. ":8443" or "10.0.0.1:8443".
	Listen string
	// Advertise is the host:port members use to reach the controller. It
	// defaults to Listen when Listen names a host.
	Advertise string
	// Logf logs one line per change; nil means log.Printf.
	Logf func(format string, args ...any)
	// MaxConns caps the connections open at once, those still in their
	// TLS handshake included; MaxConnsPerSource caps them per IPv4
	// address or IPv6 /64. A connection over a cap is closed as soon as
	// it is accepted. 0 means the default (DefaultMaxConns,
	// DefaultMaxConnsPerSource; connlimit.go says why), a negative value
	// no cap.
	MaxConns, MaxConnsPerSource int

	// Web is where the web console is served, if anywhere (web.go).
	Web WebConfig

	// layout is how views lay out peer entries; zero: defaultLayout.
	// Tests make it small (view.go).
	layout layout
}

// Files in the state directory.
const (
	keyFile   = "controller.key"
	tokenFile = "admin-token"
	dbFile    = "controller.db"
	urlFile   = "controller.url"
)

// Server is a controller: its identity, its store and its API.
type Server struct {
	cfg        Config
	advertise  string
	id         control.Identity
	pin        string
	adminToken string
	store      *Store
	views      views // every network, in memory (view.go)
	watch      *watcher
	tlsConfig  *tls.Config
	handler    http.Handler
	logf       func(format string, args ...any)
	// now is the clock; tests replace it to expire tokens.
	now func() time.Time
	// paceEach and paceMax set how long a member catching up with a
	// burst of changes waits between answers (holdBurst).
	paceEach, paceMax time.Duration
	// started is when New ran: the origin of monotonic (members.go).
	started time.Time
	// reportEvery is how often a member may report a change others see
	// (members.go); tests shorten it.
	reportEvery time.Duration
	// pending bounds the members waiting for an admin (members.go).
	pending pendingLimits
	// changes wakes the web console's live pages at every committed
	// change, this replica's or another's (web.go).
	changes changeSignal
	// url is what controller.url holds (writeURL; the maintenance
	// goroutine's once serving).
	url string
	// web serves the web console; nil when there is none.
	web *webServer
	// stopping is closed when Serve shuts down, to end long-polls.
	stopping  chan struct{}
	closeOnce sync.Once
	// conns counts connections against cfg's caps.
	conns *connLimiter
	// replica names this process in what it announces to other
	// replicas (replicas.go).
	replica string
	// unhealthy is whether the last health check failed (to log changes).
	unhealthy atomic.Bool
	// bodyTimeout bounds the reading of a request's body (guardBodies),
	// handshakeTimeout a TLS handshake; logEvery is the interval of the
	// rate-limited log lines. Tests shorten them.
	bodyTimeout, handshakeTimeout, logEvery time.Duration
}

// New opens the controller whose state is in cfg.StateDir, creating its
// identity, admin token and database on first start.
func New(cfg Config) (*Server, error) {
	s := &Server{cfg: cfg, logf: cfg.Logf, now: time.Now, paceEach: burstPaceEach, paceMax: burstPaceMax, watch: newWatcher(), stopping: make(chan struct{}),
		started: time.Now(), reportEvery: reportEvery, pending: pendingLimits{perNetwork: maxPendingPerNetwork, perSource: maxPendingPerSource, stale: pendingStale},
		views: views{m: map[string]*netView{}}, replica: newReplicaID()}
	s.conns = newConnLimiter(cfg.MaxConns, cfg.MaxConnsPerSource)
	s.bodyTimeout, s.handshakeTimeout, s.logEvery = defaultBodyTimeout, defaultHandshakeTimeout, defaultLogEvery
	if s.logf == nil {
		s.logf = log.Printf
	}
	var err error
	if s.advertise, err = advertiseAddr(cfg.Listen, cfg.Advertise); err != nil {
		return nil, err
	}
	if cfg.StateDir == "" {
		return nil, errors.New("controller: no state directory given")
	}
	// The directory is the node's kind of state directory: 0700 (an
	// existing one readable by others is tightened), files written
	// atomically and durably.
	dir, err := state.Open(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	pemKey, err := dir.LoadOrCreate(keyFile, func() ([]byte, error) {
		id, err := control.NewIdentity()
		if err != nil {
			return nil, err
		}
		return id.MarshalPEM()
	})
	if err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	if s.id, err = control.ParseIdentityPEM(pemKey); err != nil {
		return nil, fmt.Errorf("controller: %s: %w", filepath.Join(cfg.StateDir, keyFile), err)
	}
	s.pin = s.id.Pin()
	tok, err := dir.LoadOrCreate(tokenFile, func() ([]byte, error) {
		var b [32]byte
		rand.Read(b[:])
		return []byte(base64.RawURLEncoding.EncodeToString(b[:]) + "\n"), nil
	})
	if err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	if s.adminToken = strings.TrimSpace(string(tok)); len(s.adminToken) < 16 {
		return nil, fmt.Errorf("controller: %s: admin token is shorter than 16 characters", filepath.Join(cfg.StateDir, tokenFile))
	}
	for _, f := range []string{keyFile, tokenFile} {
		p := filepath.Join(cfg.StateDir, f)
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o077 != 0 {
			s.logf("warning: %s is readable by others (mode %v); it should be 0600", p, fi.Mode().Perm())
		}
	}
	if s.tlsConfig, err = control.ServerTLS(s.id); err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if s.store, err = Open(ctx, cfg.DB, cfg.StateDir); err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	// A group of writes that could not be committed may have been patched
	// into the views: drop them all, to be loaded again when next needed.
	s.store.failed = s.views.reset
	for _, step := range []struct {
		what string
		do   func(context.Context) error
	}{{"identity", s.claimIdentity}, {"registering this replica", s.seenReplica}, {"loading networks", s.loadViews}} {
		if err := step.do(ctx); err != nil {
			s.store.Close()
			return nil, fmt.Errorf("controller: %s: %w", step.what, err)
		}
	}
	if err := s.writeURL(); err != nil {
		s.store.Close()
		return nil, fmt.Errorf("controller: %w", err)
	}
	s.handler = s.guardBodies(s.routes())
	if cfg.Web.Listen != "" {
		if s.web, err = s.newWebServer(cfg.Web); err != nil {
			s.store.Close()
			return nil, fmt.Errorf("controller: web console: %w", err)
		}
	}
	return s, nil
}

// joinString is a join string for network id with secret (both may be
// empty) naming every replica, this one first.
func (s *Server) joinString(id, secret string) control.JoinString {
	all := s.controllers(context.Background())
	return control.JoinString{Controller: all[0], Replicas: all[1:], NetworkID: id, Pin: s.pin, Token: secret}
}

// writeURL writes controller.url, the address an admin's CLI on this host
// and members joining by network ID use: every replica's, this one's
// first. It is written again (maintain) when a replica starts or goes.
func (s *Server) writeURL() error {
	addr := s.joinString("", "").ControllerAddress()
	if addr == s.url {
		return nil
	}
	if err := state.WriteFile(filepath.Join(s.cfg.StateDir, urlFile), []byte(addr+"\n"), 0o644); err != nil {
		return err
	}
	s.url = addr
	return nil
}

// advertiseAddr checks the address members are told to use.
func advertiseAddr(listen, advertise string) (string, error) {
	if _, _, err := net.SplitHostPort(listen); err != nil {
		return "", fmt.Errorf("controller: listen address %q: want HOST:PORT or :PORT", listen)
	}
	if advertise == "" {
		host, _, _ := net.SplitHostPort(listen)
		if ip, err := netip.ParseAddr(host); host == "" || err == nil && ip.IsUnspecified() {
			return "", fmt.Errorf("controller: listen address %q has no host members can reach; set the advertise address (HOST:PORT)", listen)
		}
		advertise = listen
	}
	host, port, err := net.SplitHostPort(advertise)
	if err != nil || host == "" {
		return "", fmt.Errorf("controller: advertise address %q: want HOST:PORT", advertise)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("controller: advertise address %q: port must be 1-65535", advertise)
	}
	return advertise, nil
}

// Pin is the fingerprint of the controller's key, as join strings carry it.
func (s *Server) Pin() string { return s.pin }

// AdminToken is the built-in admin token, the admin-token file's: an
// admin of the whole controller. Named tokens are made through the API
// (access.go).
func (s *Server) AdminToken() string { return s.adminToken }

// Handler is the /v1 API, for tests and for embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// Close ends long-polls and closes the database.
func (s *Server) Close() error {
	s.stop()
	if s.web != nil {
		s.web.ln.Close()
	}
	return s.store.Close()
}

func (s *Server) stop() { s.closeOnce.Do(func() { close(s.stopping) }) }

// Serve listens on cfg.Listen with the controller's TLS identity and
// serves the API until ctx is done, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	return s.serve(ctx, ln)
}

// serve serves on ln (a plain TCP listener; TLS is added here).
func (s *Server) serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		TLSConfig:         s.tlsConfig.Clone(),
		ReadHeaderTimeout: 10 * time.Second, // the body has its own deadline, not ReadTimeout: see guardBodies
		// A member asks again as soon as its long-poll is answered, so a
		// connection idle for long is no member's: it only holds one of
		// the capped connection slots (connlimit.go), which a stranger
		// could otherwise keep for two minutes per handshake.
		IdleTimeout: 20 * time.Second,
		ErrorLog:    log.New(logWriter(s.logf), "", 0),
	}
	// HTTP/1.1 only. Every member holds a long-poll open, so what a
	// connection costs at rest decides the controller's memory: HTTP/2
	// keeps about twice as much per connection (its framer keeps a 16 kB
	// write buffer once a large answer went out, HPACK tables, one more
	// goroutine). Measured with scripts/ctlbench at 1,000 members: 46 kB
	// of live heap per member and 150 MB RSS with HTTP/2, 25 kB and 88 MB
	// with HTTP/1.1, which also answered faster. Clients (ALPN) fall back
	// on their own; a node with several networks on one controller then
	// holds one connection per network.
	srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	s.logf("controller listening on %s, advertised as %s, pin %s", ln.Addr(), s.advertise, s.pin)
	if n, err := raiseFileLimit(); err != nil {
		s.logf("warning: open file limit: %v", err)
	} else if n < 4096 {
		s.logf("warning: open file limit is %d: at most about %d members can hold a long-poll at once", n, n-64)
	}
	errc := make(chan error, 1)
	hl := newHandshakeListener(ln, listenerConfig{tls: srv.TLSConfig, handshakeTimeout: s.handshakeTimeout,
		limit: s.conns, logf: s.logf, logEvery: s.logEvery})
	go func() { errc <- srv.Serve(hl) }()
	go s.follow(ctx)
	webErrc := make(chan error, 1)
	if s.web != nil {
		go func() { webErrc <- s.web.serve(ctx) }()
	}
	tick := time.NewTicker(maintainEvery)
	defer tick.Stop()
wait:
	for {
		select {
		case err := <-errc:
			return fmt.Errorf("controller: %w", err)
		case err := <-webErrc:
			return fmt.Errorf("controller: web console: %w", err)
		case <-tick.C:
			if err := s.maintain(ctx); err != nil {
				s.logf("maintenance: %v", err)
			}
		case <-ctx.Done():
			break wait
		}
	}
	s.stop() // long-polls answer at once
	defer func() {
		if err := s.maintain(context.Background()); err != nil {
			s.logf("maintenance: %v", err)
		}
	}()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	if s.web != nil {
		<-webErrc
	}
	if err != nil {
		return fmt.Errorf("controller: shutting down: %w", err)
	}
	return nil
}

type logWriter func(format string, args ...any)

func (l logWriter) Write(p []byte) (int, error) {
	l("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Request bodies. Anyone can pass as a member (a self-signed certificate
// is all it takes), so a body costs little and ends soon, whoever sends
// it.
const (
	// maxAnonBody is the largest body of a request without a valid admin
	// token: member calls send well under 2 KB (a join with its
	// endpoints).
	maxAnonBody = 16 << 10
	// defaultBodyTimeout bounds the reading of a body, from the end of
	// the request's head (which ReadHeaderTimeout bounds).
	defaultBodyTimeout = 10 * time.Second
)

// guardBodies limits request bodies: maxAnonBody unless the request
// carries a valid admin token (then maxBody), refused at once if the
// announced length is over, and read within bodyTimeout.
//
// The deadline is the connection's read deadline, set for the body and
// cleared as soon as the body has been read to its end: a long-poll (sync)
// waits after its body, with net/http watching the connection by a
// background read, and a deadline still set would end that read and with
// it the request's context (TestSyncOutlivesBodyDeadline). Not
// http.Server.ReadTimeout: its deadline is only lifted by net/http's
// internals (connReader.startBackgroundRead clears it in Go 1.26), it
// counts the head's time too, and a body that missed it would be a 400
// where this answers 408 and closes the connection.
func (s *Server) guardBodies(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 { // no body (-1: one of unknown length)
			h.ServeHTTP(w, r)
			return
		}
		limit := int64(maxAnonBody)
		// Members send no token: they pay nothing here. A web console
		// session's calls come authenticated (web.go).
		if r.Header.Get("Authorization") != "" || r.Context().Value(authKey{}) != nil {
			var auth authResult
			r, auth = s.authenticated(r) // once: the handler reuses it
			if auth.err == nil {
				limit = maxBody
			}
		}
		if r.ContentLength > limit {
			w.Header().Set("Connection", "close") // the body is not read
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body: larger than %d bytes", limit))
			return
		}
		b := &guardedBody{ReadCloser: http.MaxBytesReader(w, r.Body, limit), w: w, timeout: s.bodyTimeout}
		if s.bodyTimeout > 0 {
			b.rc = http.NewResponseController(w)
			// Not supported (a handler called without a connection,
			// as in tests): no deadline.
			if b.rc.SetReadDeadline(time.Now().Add(s.bodyTimeout)) != nil {
				b.rc = nil
			}
		}
		r.Body = b
		h.ServeHTTP(w, r)
	})
}

// guardedBody is a body read under a deadline, which it clears when the
// body ends.
type guardedBody struct {
	io.ReadCloser
	w       http.ResponseWriter
	rc      *http.ResponseController // nil: no deadline set
	timeout time.Duration
}

func (b *guardedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, os.ErrDeadlineExceeded) && b.rc != nil:
		b.w.Header().Set("Connection", "close")
		err = &bodyTimeoutError{b.timeout}
	case b.rc != nil:
		// The end, or an error (the connection is closed after one).
		// A long-poll waits from here on with no deadline.
		b.rc.SetReadDeadline(time.Time{})
		b.rc = nil
	}
	return n, err
}
