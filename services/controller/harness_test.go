package controller

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatenet/gate/services/control"
)

// testClock is the controller's clock in tests, moved by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a controller serving on a loopback TLS listener.
type env struct {
	t     *testing.T
	dir   string
	s     *Server
	addr  string
	clock *testClock
	admin *control.Client
	ctx   context.Context

	logMu   sync.Mutex
	logs    []string
	clients []*control.Client

	stop func()
}

func newEnv(t *testing.T) *env { return startEnv(t, t.TempDir()) }

// startEnv starts a controller on dir; it is stopped at the end of the test
// or by env.close.
func startEnv(t *testing.T, dir string) *env {
	t.Helper()
	return startEnvIn(t, dir, nil, nil)
}

// startEnvWith is startEnv in a new directory with a hook on the Config
// before New and one on the Server before it serves (to shorten its
// deadlines).
func startEnvWith(t *testing.T, cfgHook func(*Config), srvHook func(*Server)) *env {
	t.Helper()
	return startEnvIn(t, t.TempDir(), cfgHook, srvHook)
}

func startEnvIn(t *testing.T, dir string, cfgHook func(*Config), srvHook func(*Server)) *env {
	t.Helper()
	e := &env{t: t, dir: dir, clock: &testClock{t: time.Now()}}
	cfg := Config{StateDir: dir, DB: testDB(t, dir), Listen: "127.0.0.1:0", Advertise: "controller.test:8443", Logf: e.logf}
	if cfgHook != nil {
		cfgHook(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.now = e.clock.Now
	s.paceMax = 100 * time.Millisecond // held answers, but short (TestPacing has its own)
	if srvHook != nil {
		srvHook(s)
	}
	e.s = s
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.serve(ctx, ln) }()
	e.admin = e.client(nil, s.AdminToken())
	e.ctx = context.Background()
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			// Closing the clients' connections first spares the
			// server its one-second wait for them at shutdown.
			for _, c := range e.clients {
				c.Close()
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
	t.Cleanup(e.stop)
	return e
}

func (e *env) logf(format string, args ...any) {
	line := strings.TrimSpace(fmt.Sprintf(format, args...))
	e.logMu.Lock()
	e.logs = append(e.logs, line)
	e.logMu.Unlock()
	e.t.Log(line)
}

func (e *env) allLogs() string {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	return strings.Join(e.logs, "\n")
}

func (e *env) client(id *control.Identity, token string) *control.Client {
	e.t.Helper()
	c, err := control.NewClient(e.addr, e.s.Pin(), id, token)
	if err != nil {
		e.t.Fatal(err)
	}
	e.clients = append(e.clients, c)
	return c
}

// node is a member: an identity, a WireGuard key and a client.
type node struct {
	id  control.Identity
	key string
	c   *control.Client
}

func (e *env) newNode() *node {
	e.t.Helper()
	id, err := control.NewIdentity()
	if err != nil {
		e.t.Fatal(err)
	}
	var k [32]byte
	rand.Read(k[:])
	return &node{id: id, key: base64.StdEncoding.EncodeToString(k[:]), c: e.client(&id, "")}
}

func (n *node) joinReq(token string) control.JoinRequest {
	return control.JoinRequest{Token: token, PublicKey: n.key, Hostname: "host-" + n.id.NodeID(), Version: "test",
		ListenPort: 51820, Endpoints: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:51820")}}
}

func (e *env) mustNetwork(name, cidr string, autoAllow bool) control.Network {
	e.t.Helper()
	n, err := e.admin.CreateNetwork(e.ctx, control.CreateNetworkRequest{Name: name, CIDR: netip.MustParsePrefix(cidr), AutoAllow: autoAllow})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) mustJoin(n *node, netID, token string) control.MemberConfig {
	e.t.Helper()
	mc, err := n.c.Join(e.ctx, netID, n.joinReq(token))
	if err != nil {
		e.t.Fatalf("join %s: %v", netID, err)
	}
	return mc
}

func (e *env) mustToken(netID string, req control.CreateTokenRequest) string {
	e.t.Helper()
	tok, err := e.admin.CreateToken(e.ctx, netID, req)
	if err != nil {
		e.t.Fatal(err)
	}
	js, err := control.ParseJoinString(tok.JoinString)
	if err != nil {
		e.t.Fatalf("token join string %q: %v", tok.JoinString, err)
	}
	return js.Token
}

// snapshot is everything the admin API shows, to check that bad input
// changed nothing.
func (e *env) snapshot() string {
	e.t.Helper()
	ns, err := e.admin.Networks(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	all := []any{ns}
	for _, n := range ns {
		ms, err := e.admin.Members(e.ctx, n.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		ts, err := e.admin.Tokens(e.ctx, n.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		all = append(all, ms, ts)
	}
	b, _ := json.Marshal(all)
	return string(b)
}

// raw sends a request with a literal body (nil for none) and returns the
// status and the error message.
func (e *env) raw(method, path, body, token string) (int, string) {
	e.t.Helper()
	cfg, err := control.ClientTLS(e.s.Pin(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	defer hc.CloseIdleConnections()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "https://"+e.addr+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var ce control.Error
	if resp.StatusCode/100 != 2 {
		if err := json.Unmarshal(b, &ce); err != nil {
			e.t.Errorf("%s %s: %d answer is not a control.Error: %q", method, path, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, ce.Error
}

// wantAPIError checks that err is an APIError with status and a message
// containing msg.
func wantAPIError(t *testing.T, what string, err error, status int, msg string) {
	t.Helper()
	if !control.IsStatus(err, status) {
		t.Errorf("%s: got %v, want HTTP %d", what, err, status)
		return
	}
	wantErr(t, what, err, msg)
}

// revision is network id's revision now, as the admin API shows it.
func (e *env) revision(id string) uint64 {
	e.t.Helper()
	n, err := e.admin.Network(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return n.Revision
}

func memberByNode(ms []control.Member, node string) (control.Member, bool) {
	for _, m := range ms {
		if m.NodeID == node {
			return m, true
		}
	}
	return control.Member{}, false
}

// undo takes a migration back, as a controller before it left the schema.
var undo = map[int][]string{
	6: {`ALTER TABLE members DROP COLUMN tags`, `ALTER TABLE tokens DROP COLUMN tags`, `ALTER TABLE networks DROP COLUMN rules`},
	7: {`ALTER TABLE routes DROP COLUMN backups`, `ALTER TABLE routes DROP COLUMN failback_ms`, `ALTER TABLE routes DROP COLUMN probes`},
	8: {`ALTER TABLE networks DROP COLUMN gen`, `ALTER TABLE networks DROP COLUMN rules_rev`, `ALTER TABLE networks DROP COLUMN peers_rev`,
		`ALTER TABLE networks DROP COLUMN conf_rev`, `DROP TABLE controller`, `DROP TABLE replicas`},
	9:  {`DROP TABLE admin_tokens`, `DROP TABLE audit_log`},
	10: {`DROP TABLE sessions`, `ALTER TABLE audit_log DROP COLUMN via`},
	11: {`ALTER TABLE tokens DROP COLUMN revoked`},
}

// downgrade takes st's schema back to version v.
func downgrade(t *testing.T, st *Store, v int) {
	t.Helper()
	ctx := context.Background()
	for m := len(migrations) - 1; m > v; m-- {
		if undo[m] == nil {
			t.Fatalf("no undo for migration %d", m)
		}
		for _, q := range append(undo[m], fmt.Sprintf(`DELETE FROM schema_migrations WHERE version = %d`, m)) {
			if _, err := st.db.ExecContext(ctx, q); err != nil {
				t.Fatalf("undoing migration %d: %s: %v", m, q, err)
			}
		}
	}
}
