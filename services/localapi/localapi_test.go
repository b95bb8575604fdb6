package localapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatenet/gate/services/logring"
)

// backend is a small in-memory Backend: the local API is a transport, and
// this checks what it carries.
type backend struct{ joined []string }

func (b *backend) Status() Status { return Status{NodeID: "9788637428", Networks: len(b.joined)} }
func (b *backend) Networks() []Network {
	var ns []Network
	for _, id := range b.joined {
		ns = append(ns, Network{ID: id, Status: "OK"})
	}
	return ns
}
func (b *backend) Join(_ context.Context, r JoinRequest) (Network, error) {
	if r.Join == "0000000000000000" {
		return Network{}, fmt.Errorf("network 0000000000000000: not found")
	}
	b.joined = append(b.joined, r.Join)
	return Network{ID: r.Join, Status: "REQUESTING_CONFIGURATION"}, nil
}
func (b *backend) Leave(_ context.Context, id string) error {
	for i, j := range b.joined {
		if j == id {
			b.joined = append(b.joined[:i], b.joined[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("network %s: %w", id, ErrNotFound)
}

func (b *backend) Watch(ctx context.Context, since uint64) Snapshot {
	if since >= uint64(len(b.joined)) {
		<-ctx.Done()
	}
	return Snapshot{Rev: uint64(len(b.joined)), Status: b.Status(), Networks: b.Networks()}
}

func (b *backend) Logs(ctx context.Context, since uint64) []logring.Line {
	r := logring.New(10)
	r.Add("first")
	r.Add("second")
	return r.Since(since)
}

func serve(t *testing.T, b Backend) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "run", "gate.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, Handler(b)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return sock
}

func TestRoundTrip(t *testing.T) {
	sock := serve(t, &backend{})
	c := NewClient(sock)
	ctx := context.Background()
	n, err := c.Join(ctx, JoinRequest{Join: "d363b4e9bd3d6aa8"})
	if err != nil || n.Status != "REQUESTING_CONFIGURATION" {
		t.Fatalf("Join = %+v, %v", n, err)
	}
	// The daemon's refusal reaches the client, with its words.
	if _, err := c.Join(ctx, JoinRequest{Join: "0000000000000000"}); err == nil || !strings.Contains(err.Error(), "network 0000000000000000: not found") {
		t.Errorf("refused join: %v", err)
	}
	// A malformed request is the API's to refuse, in the domain's words
	// (nodeconfig.JoinRequest.Check), before the daemon sees it.
	for _, bad := range []struct{ req JoinRequest }{
		{JoinRequest{Join: "bad"}},
		{JoinRequest{Join: "gate://h:1/d363b4e9bd3d6aa8"}},
		{JoinRequest{Join: "d363b4e9bd3d6aa8", Gateway: &Gateway{MasqueradeInternet: true}}},
	} {
		_, err := c.Join(ctx, bad.req)
		if want := bad.req.Check(); err == nil || want == nil || !strings.Contains(err.Error(), want.Error()) {
			t.Errorf("join %+v: %v, want %v", bad.req, err, want)
		}
	}
	st, err := c.Status(ctx)
	if err != nil || st.NodeID != "9788637428" || st.Networks != 1 {
		t.Errorf("Status = %+v, %v", st, err)
	}
	ns, err := c.Networks(ctx)
	if err != nil || len(ns) != 1 {
		t.Errorf("Networks = %+v, %v", ns, err)
	}
	snap, err := c.Watch(ctx, 0, time.Second)
	if err != nil || snap.Rev != 1 || len(snap.Networks) != 1 {
		t.Errorf("Watch(0) = %+v, %v", snap, err)
	}
	t0 := time.Now()
	if snap, err := c.Watch(ctx, 1, 200*time.Millisecond); err != nil || snap.Rev != 1 || time.Since(t0) < 150*time.Millisecond {
		t.Errorf("Watch(1) = %+v, %v after %v; want the current state after the wait", snap, err, time.Since(t0))
	}
	if ls, err := c.Logs(ctx, 1, 0); err != nil || len(ls) != 1 || ls[0].Text != "second" {
		t.Errorf("Logs(1) = %+v, %v", ls, err)
	}
	if err := c.Leave(ctx, "d363b4e9bd3d6aa8"); err != nil {
		t.Error(err)
	}
	if err := c.Leave(ctx, "d363b4e9bd3d6aa8"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("second Leave = %v", err)
	}
}

func TestMalformedRequests(t *testing.T) {
	sock := serve(t, &backend{})
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	for _, body := range []string{`{`, `{"join": 5}`, `{"join":"x","colour":"blue"}`} {
		resp, err := hc.Post("http://gate/v1/join", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 512)
		n, _ := resp.Body.Read(b)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b[:n]), "request body") {
			t.Errorf("POST %s: %d %s", body, resp.StatusCode, b[:n])
		}
	}
}

func TestSocketIsPrivateAndExclusive(t *testing.T) {
	sock := serve(t, &backend{})
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(filepath.Dir(sock)); di.Mode().Perm() != 0o700 {
		t.Errorf("socket directory mode %v, want 0700", di.Mode().Perm())
	}
	if _, err := Listen(sock); err == nil || !strings.Contains(err.Error(), "another daemon") {
		t.Errorf("second Listen on a live socket: %v", err)
	}
}

func TestStaleSocketIsReplaced(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "gate.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	// Simulate a crash: the file stays, nobody listens.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	ln2, err := Listen(sock)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	ln2.Close()
}

// TestAttackRequestBodies: what the local API decodes is one JSON value
// of a bounded size, typed, with no control characters in its strings,
// and nothing of a refused request reaches the daemon; its refusal is
// printable ASCII.
func TestAttackRequestBodies(t *testing.T) {
	b := &backend{}
	sock := serve(t, b)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	for _, tc := range []struct{ path, body string }{
		{"/v1/join", `{"join":"d363b4e9bd3d6aa8"}{"join":"0123456789abcdef"}`},
		{"/v1/join", `{"join":"d363b4e9bd3d6aa8"} x`},
		{"/v1/join", `{"join":"d363b4e9bd3d6aa8","instance_id":"` + strings.Repeat(" ", 70<<10) + `"}`},
		{"/v1/join", `{"join":"\u001b[2Jd363b4e9bd3d6aa8"}`},
		{"/v1/join", `{"join":"d363b4e9bd3d6aa8","instance_id":"i-\u009b31m"}`},
		{"/v1/join", `{"join":"d363b4e9bd3d6aa8","gateway":{"serve":["10.0.0.0/8"],"lan":"\u001b]0;x\u0007"}}`},
		{"/v1/join", `{"join":"d363b4e9bd3d6aa8","controller":"gate://h:1?pin=\u00e9"}`},
		{"/v1/leave", `{"network":"\u001b[2J\u00e9"}`},
		{"/v1/hold-port", `{"port":70000,"for":"controller"}`},
		{"/v1/hold-port", `{"port":8443,"for":"controller","pid":1}`},
		{"/v1/hold-port", `{"port":8443,"for":"\u001b[2J"}`},
	} {
		resp, err := hc.Post("http://gate"+tc.path, "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST %s %.80q: %d %s", tc.path, tc.body, resp.StatusCode, body)
		}
		var e struct{ Error string }
		json.Unmarshal(body, &e)
		for _, c := range []byte(e.Error) {
			if c < ' ' || c > '~' {
				t.Errorf("POST %s %.80q: error not printable ASCII: %q", tc.path, tc.body, e.Error)
				break
			}
		}
	}
	if len(b.joined) != 0 {
		t.Errorf("refused requests reached the daemon: %q", b.joined)
	}
}

// TestJoinRequestWireIsUnchanged: the body of POST /v1/join, and a
// network's gateway, as today's CLIs and consoles send and read them,
// decode into the domain's types and encode back to the same bytes.
// (Written by the code before localapi.JoinRequest and Gateway became
// nodeconfig's.)
func TestJoinRequestWireIsUnchanged(t *testing.T) {
	for _, wire := range []string{
		`{"join":"d363b4e9bd3d6aa8","controller":"gate://198.51.100.10:8443?pin=sha256:ab","address":"192.168.254.11","gateway":{"serve":["172.16.0.0/16","10.1.0.0/24"],"lan":"eth1","masquerade_lan":true,"masquerade_internet":false},"instance_id":"i-0abc"}`,
		`{"join":"x"}`,
	} {
		dec := json.NewDecoder(strings.NewReader(wire))
		dec.DisallowUnknownFields() // as the server decodes
		var r JoinRequest
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("decoding %s: %v", wire, err)
		}
		b, err := json.Marshal(r)
		if err != nil || string(b) != wire {
			t.Errorf("round trip:\n got %s\nwant %s", b, wire)
		}
	}
	r := JoinRequest{Join: "d363b4e9bd3d6aa8"}
	json.Unmarshal([]byte(`{"join":"d363b4e9bd3d6aa8","gateway":{"serve":["172.16.0.0/16"],"lan":"eth1","masquerade_lan":true,"masquerade_internet":false}}`), &r)
	if g := r.Gateway; g == nil || len(g.Serve) != 1 || g.Serve[0] != netip.MustParsePrefix("172.16.0.0/16") || g.LAN != "eth1" || !g.MasqueradeLAN || g.MasqueradeInternet {
		t.Errorf("gateway decoded as %+v", r.Gateway)
	}
	n := Network{ID: "d363b4e9bd3d6aa8", Gateway: &Gateway{Serve: []netip.Prefix{netip.MustParsePrefix("172.16.0.0/16")}}}
	want := `{"id":"d363b4e9bd3d6aa8","name":"","status":"","controller":"","listen_port":0,"addresses":null,"routes":null,"peers":null,"gateway":{"serve":["172.16.0.0/16"],"masquerade_lan":false,"masquerade_internet":false},"online":false}`
	if b, _ := json.Marshal(n); string(b) != want {
		t.Errorf("network:\n got %s\nwant %s", b, want)
	}
}
