package cli

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/logring"
)

// portDaemon is a local API that holds ports, and says which.
type portDaemon struct {
	mu   sync.Mutex
	held map[uint16]int
}

func (p *portDaemon) Status() localapi.Status                         { return localapi.Status{} }
func (p *portDaemon) Networks() []localapi.Network                    { return nil }
func (p *portDaemon) Watch(context.Context, uint64) localapi.Snapshot { return localapi.Snapshot{} }
func (p *portDaemon) Logs(context.Context, uint64) []logring.Line     { return nil }
func (p *portDaemon) Leave(context.Context, string) error             { return nil }
func (p *portDaemon) Join(context.Context, localapi.JoinRequest) (localapi.Network, error) {
	return localapi.Network{}, fmt.Errorf("no")
}
func (p *portDaemon) HoldPort(r localapi.HoldRequest) (func(), error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held[r.Port]++
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.held[r.Port]--
		})
	}, nil
}
func (p *portDaemon) holds(port uint16) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held[port]
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !f(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: not %s", what)
		}
	}
}

// TestHoldBeside: `gate controller` asks the daemon on its host to hold
// its port open while it runs (not when it listens on loopback only), and
// finds a daemon that starts after it; without one it says nothing.
func TestHoldBeside(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "gate.sock")
	var mu sync.Mutex
	var logged []string
	logf := func(f string, a ...any) { mu.Lock(); logged = append(logged, fmt.Sprintf(f, a...)); mu.Unlock() }

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { holdBeside(ctx, sock, ":18462", logf); close(done) }()
	lctx, lcancel := context.WithCancel(context.Background())
	go func() { holdBeside(lctx, sock, "127.0.0.1:18463", logf) }()
	defer lcancel()
	time.Sleep(100 * time.Millisecond) // no daemon yet: quiet
	mu.Lock()
	if len(logged) != 0 {
		t.Errorf("without a daemon: logged %q", logged)
	}
	mu.Unlock()

	d := &portDaemon{held: map[uint16]int{}}
	ln, err := localapi.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	defer scancel()
	go localapi.Serve(sctx, ln, localapi.Handler(d))
	waitFor(t, "tcp/18462 held", func() bool { return d.holds(18462) == 1 })
	if d.holds(18463) != 0 {
		t.Errorf("a controller on loopback asked for its port")
	}
	cancel()
	<-done
	waitFor(t, "tcp/18462 released", func() bool { return d.holds(18462) == 0 })
	mu.Lock()
	defer mu.Unlock()
	if len(logged) != 1 {
		t.Errorf("logged %q, want the one line saying the port is open", logged)
	}
}

// TestReachable: the admin CLI talks to the first replica that takes a
// connection, and to the first named when none does.
func TestReachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	live := ln.Addr().String()
	for _, tc := range []struct {
		addrs []string
		want  string
	}{
		{[]string{live}, live},
		{[]string{deadAddr, live}, live},
		{[]string{live, deadAddr}, live},
		{[]string{deadAddr}, deadAddr},
		{[]string{deadAddr, deadAddr + "0"}, deadAddr},
	} {
		if got := reachable(tc.addrs); got != tc.want {
			t.Errorf("reachable(%q) = %s, want %s", tc.addrs, got, tc.want)
		}
	}
}
