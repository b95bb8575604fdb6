package localapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
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
	if r.Join == "bad" {
		return Network{}, fmt.Errorf("join string: must start with gate://")
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
	if _, err := c.Join(ctx, JoinRequest{Join: "bad"}); err == nil || !strings.Contains(err.Error(), "must start with gate://") {
		t.Errorf("bad join: %v", err)
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
