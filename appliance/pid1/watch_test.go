package pid1

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/logring"
)

// fakeDaemon serves a snapshot on the local API; set bumps its revision.
type fakeDaemon struct {
	mu      sync.Mutex
	snap    localapi.Snapshot
	changed chan struct{}
}

func newFakeDaemon(s localapi.Snapshot) *fakeDaemon {
	s.Rev = 1
	return &fakeDaemon{snap: s, changed: make(chan struct{})}
}

func (d *fakeDaemon) set(f func(*localapi.Snapshot)) {
	d.mu.Lock()
	f(&d.snap)
	d.snap.Rev++
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

func (d *fakeDaemon) Watch(ctx context.Context, since uint64) localapi.Snapshot {
	for {
		d.mu.Lock()
		s, ch := d.snap, d.changed
		d.mu.Unlock()
		if s.Rev > since || ctx.Err() != nil {
			return s
		}
		select {
		case <-ch:
		case <-ctx.Done():
		}
	}
}

func (d *fakeDaemon) Status() localapi.Status      { return d.Watch(context.Background(), 0).Status }
func (d *fakeDaemon) Networks() []localapi.Network { return nil }
func (d *fakeDaemon) Join(context.Context, localapi.JoinRequest) (localapi.Network, error) {
	return localapi.Network{}, errors.New("no")
}
func (d *fakeDaemon) Leave(context.Context, string) error         { return errors.New("no") }
func (d *fakeDaemon) Logs(context.Context, uint64) []logring.Line { return nil }
func (d *fakeDaemon) Interfaces() []localapi.Interface {
	return d.Watch(context.Background(), 0).Interfaces
}

// serve serves the local API on socket until stop.
func (d *fakeDaemon) serve(t *testing.T, socket string) (stop func()) {
	t.Helper()
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: localapi.Handler(d)}
	go srv.Serve(ln)
	// Close, not Shutdown: a daemon that dies drops its connections.
	return func() { srv.Close() }
}

// lockedBuffer is a console that the test reads while the watcher writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSuffix(l.b.String(), "\n"), "\n")
}

// TestWatcherFollowsRestarts runs the watcher against a daemon that is not
// there yet, answers, changes, dies and comes back as a new process: each
// line is printed once, when its state changes, and the ready line (and
// onReady) once in all.
func TestWatcherFollowsRestarts(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "gate.sock")
	console := &lockedBuffer{}
	readies := make(chan struct{}, 10)
	w := &watcher{
		api: localapi.NewClient(socket), wait: 200 * time.Millisecond,
		version: "v1", out: console, logf: func(f string, a ...any) { t.Logf(f, a...) },
		uptime:  func() time.Duration { return time.Second },
		onReady: func() { readies <- struct{}{} },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	const (
		ready    = "gate: ready node=n1 version=v1 hostname=gate firewall=strict uptime=1.00s"
		net10    = "gate: network wan=eth0 address=10.0.0.10/24 gateway=10.0.0.1 dns= mode=dhcp default_route=true uptime=1.00s"
		net11    = "gate: network wan=eth0 address=10.0.0.11/24 gateway=10.0.0.1 dns= mode=dhcp default_route=true uptime=1.00s"
		applied  = `gate: config state=applied source="none" instance=- first_boot=false errors=0 warnings=0 uptime=1.00s`
		rejected = `gate: config state=rejected source="none" instance=- first_boot=false errors=1 warnings=0 uptime=1.00s: error: bad`
	)
	var want []string
	expect := func(lines ...string) {
		t.Helper()
		want = append(want, lines...)
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := console.lines()
			if strings.Join(got, "\n") == strings.Join(want, "\n") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("console:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	eth0 := func(addr string) []localapi.Interface {
		return []localapi.Interface{{Name: "eth0", Mode: "dhcp", WAN: true, DefaultRoute: true,
			Addresses: []netip.Prefix{netip.MustParsePrefix(addr)}, Gateway: netip.MustParseAddr("10.0.0.1")}}
	}
	first := localapi.Snapshot{
		Status:     localapi.Status{NodeID: "n1", Hostname: "gate", Firewall: "strict", Config: &localapi.ConfigStatus{State: "applied", Source: "none"}},
		Interfaces: eth0("10.0.0.10/24"),
	}

	// Not started yet: the watcher keeps trying.
	time.Sleep(300 * time.Millisecond)
	d := newFakeDaemon(first)
	stop := d.serve(t, socket)
	expect(ready, net10, applied)
	d.set(func(s *localapi.Snapshot) { s.Interfaces = eth0("10.0.0.11/24") })
	expect(net11)

	// The daemon dies; a new one starts, first without a firewall or a
	// WAN, then as the old one was: nothing new to say.
	stop()
	time.Sleep(300 * time.Millisecond)
	d = newFakeDaemon(localapi.Snapshot{Status: localapi.Status{NodeID: "n1", Hostname: "gate"}})
	stop = d.serve(t, socket)
	defer stop()
	d.set(func(s *localapi.Snapshot) {
		s.Status.Firewall, s.Status.Config, s.Interfaces = "strict", &localapi.ConfigStatus{State: "applied", Source: "none"}, eth0("10.0.0.11/24")
	})
	d.set(func(s *localapi.Snapshot) {
		s.Status.Config = &localapi.ConfigStatus{State: "rejected", Source: "none", Errors: []string{"bad"}}
	})
	expect(rejected)
	if len(readies) != 1 {
		t.Errorf("onReady ran %d times, want once", len(readies))
	}
}
