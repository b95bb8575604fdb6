package agent

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/state"
)

// proxy is a second address of a controller: a TCP relay on loopback to
// it, which kill takes away as a replica's host going down would (its
// connections cut, its port refusing).
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	dead  bool
}

func startProxy(t *testing.T, to string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	t.Cleanup(p.kill)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.dead {
				p.mu.Unlock()
				c.Close()
				up.Close()
				return
			}
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dead = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
}

// deadAddr is a loopback address where nothing listens: connections are
// refused.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// syncSeen is one sync the agent made, as observe saw it.
type syncSeen struct {
	addr  string
	since uint64
	wait  time.Duration
	delta bool
	rev   uint64
	err   error
}

type syncLog struct {
	mu  sync.Mutex
	all []syncSeen
}

func (l *syncLog) observe(addr string, req control.SyncRequest, mc control.MemberConfig, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, syncSeen{addr, req.Since, time.Duration(req.Wait), mc.Delta, mc.Revision, err})
}

func (l *syncLog) seen() []syncSeen {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.all)
}

// newObservedAgent is newAgent with every sync logged.
func newObservedAgent(t *testing.T, dir string) (*Agent, *syncLog, context.CancelFunc) {
	t.Helper()
	log := &syncLog{}
	a, stop := startAgent(t, dir, func(a *Agent) { a.observe = log.observe })
	return a, log, stop
}

// waitFor polls cond for up to 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// joinOther adds another member to network id, which bumps its revision.
func joinOther(t *testing.T, addr, pin, id string, i int) {
	t.Helper()
	nid, _ := control.NewIdentity()
	c, err := control.NewClient(addr, pin, &nid, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Join(context.Background(), id, control.JoinRequest{PublicKey: base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{byte(i)}, 32)), Hostname: fmt.Sprint("o", i), ListenPort: 51820}); err != nil {
		t.Fatal(err)
	}
}

// TestMovesToTheNextReplicaMidWay: a membership with two addresses of one
// controller syncs through the first; when it goes away in the middle of
// a long-poll, the agent moves to the second at once, asks from the
// revision it holds (and gets a delta, not a full configuration), and
// keeps following changes there.
func TestMovesToTheNextReplicaMidWay(t *testing.T) {
	ctl, real, admin := startController(t)
	ctx := context.Background()
	n, err := admin.CreateNetwork(ctx, control.CreateNetworkRequest{Name: "t", CIDR: netip.MustParsePrefix("10.8.0.0/24"), AutoAllow: true})
	if err != nil {
		t.Fatal(err)
	}
	first := startProxy(t, real)
	dir := t.TempDir()
	a, log, stop := newObservedAgent(t, dir)
	defer stop()
	js := control.JoinString{Controller: first.addr(), Replicas: []string{real}, NetworkID: n.ID, Pin: ctl.Pin()}
	if !strings.Contains(js.String(), first.addr()+","+real+"/") {
		t.Fatalf("join string %s", js)
	}
	m, err := a.Join(ctx, localapi.JoinRequest{Join: js.String()})
	if err != nil {
		t.Fatal(err)
	}
	if m.Status() != control.StatusOK || m.Now() != first.addr() || !slices.Equal(m.Controllers(), []string{first.addr(), real}) {
		t.Fatalf("joined: %+v", m)
	}
	joinOther(t, real, ctl.Pin(), n.ID, 1)
	var held uint64
	waitFor(t, "the change through the first address", func() bool {
		m := a.Membership(n.ID)
		want := fullConfigOf(t, real, ctl.Pin(), a.cfg.Identity, n.ID)
		held = want.Revision
		return m.Config != nil && m.Config.Revision == want.Revision && len(m.Config.Peers) == 1
	})
	// Long-polling at the first address, at revision held.
	waitFor(t, "a long-poll from the revision held", func() bool {
		s := log.seen()
		return len(s) > 0 && s[len(s)-1].addr == first.addr() && s[len(s)-1].rev == held
	})
	// The next long-poll is under way within microseconds of that
	// answer: the kill cuts it, mid-way.
	time.Sleep(100 * time.Millisecond)
	before := len(log.seen())
	first.kill()

	waitFor(t, "the move to the second address", func() bool { m := a.Membership(n.ID); return m.Now() == real })
	var moved *syncSeen
	for _, s := range log.seen()[before:] {
		if s.addr == real && s.err == nil {
			moved = &s
			break
		}
		if s.since == 0 {
			t.Errorf("a sync after the first address went away reset its revision: %+v", s)
		}
	}
	if moved == nil {
		t.Fatalf("no sync at the second address: %+v", log.seen()[before:])
	}
	if moved.since != held || !moved.delta || moved.wait != promptWait {
		t.Errorf("first sync at the second address: since %d (want %d), delta %t, wait %v; want a prompt delta from the revision held", moved.since, held, moved.delta, moved.wait)
	}
	if m := a.Membership(n.ID); !m.Online || m.Error != "" {
		t.Errorf("after the move: online %t, error %q", m.Online, m.Error)
	}

	// Changes keep coming, through the second address.
	joinOther(t, real, ctl.Pin(), n.ID, 2)
	waitFor(t, "the next change through the second address", func() bool {
		m := a.Membership(n.ID)
		return m.Config != nil && m.Config.Revision > held && len(m.Config.Peers) == 2
	})
	for _, s := range log.seen()[before:] {
		if s.err == nil && s.addr != real {
			t.Errorf("answered at %s after the move", s.addr)
		}
		if s.err == nil && s.since != 0 && s.rev > held && !s.delta {
			t.Errorf("a full configuration after the move: %+v", s)
		}
	}

	// The address it is on, and every address, are kept for a restart.
	stop()
	var doc struct {
		Networks []struct {
			Controller    string   `json:"controller"`
			Replicas      []string `json:"replicas"`
			ControllerNow string   `json:"controller_now"`
		} `json:"networks"`
	}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Networks) != 1 || doc.Networks[0].Controller != first.addr() || !slices.Equal(doc.Networks[0].Replicas, []string{real}) || doc.Networks[0].ControllerNow != real {
		t.Errorf("state file: %s", b)
	}
	st, _ := state.Open(dir)
	again, err := New(Config{State: st})
	if err != nil {
		t.Fatal(err)
	}
	if ms := again.Memberships(); len(ms) != 1 || ms[0].Now() != real {
		t.Errorf("reloaded: %+v", ms)
	}
}

// TestFirstAddressRefuses: the first address refuses connections from the
// start; the join goes through the second, which the node then stays on.
func TestFirstAddressRefuses(t *testing.T) {
	ctl, real, admin := startController(t)
	ctx := context.Background()
	n, err := admin.CreateNetwork(ctx, control.CreateNetworkRequest{Name: "t", CIDR: netip.MustParsePrefix("10.9.0.0/24"), AutoAllow: true})
	if err != nil {
		t.Fatal(err)
	}
	dead := deadAddr(t)
	a, log, stop := newObservedAgent(t, t.TempDir())
	defer stop()
	js := control.JoinString{Controller: dead, Replicas: []string{real}, NetworkID: n.ID, Pin: ctl.Pin()}.String()
	m, err := a.Join(ctx, localapi.JoinRequest{Join: js})
	if err != nil {
		t.Fatal(err)
	}
	if m.Status() != control.StatusOK || m.Now() != real || !m.Online {
		t.Fatalf("joined: %+v", m)
	}
	joinOther(t, real, ctl.Pin(), n.ID, 1)
	waitFor(t, "the change", func() bool {
		m := a.Membership(n.ID)
		return m.Config != nil && len(m.Config.Peers) == 1
	})
	for _, s := range log.seen() {
		if s.addr != real {
			t.Errorf("synced at %s, after the join went through %s", s.addr, real)
		}
	}
	// Joined again with the dead address dropped: the same controller
	// (an address in common, the pin), now with one address.
	again := control.JoinString{Controller: real, NetworkID: n.ID, Pin: ctl.Pin()}.String()
	if m, err := a.Join(ctx, localapi.JoinRequest{Join: again}); err != nil || !slices.Equal(m.Controllers(), []string{real}) || m.Now() != real {
		t.Fatalf("joined again through %s: %+v, %v", real, m, err)
	}
	other := control.JoinString{Controller: deadAddr(t), NetworkID: n.ID, Pin: ctl.Pin()}.String()
	if _, err := a.Join(ctx, localapi.JoinRequest{Join: other}); err == nil || !strings.Contains(err.Error(), "already joined through controller "+real+"; leave it first") {
		t.Fatalf("joined again through another controller: %v", err)
	}
}

// TestEveryAddressFails: with no address answering, the error says so and
// the membership is kept and retried (backing off), not dropped.
func TestEveryAddressFails(t *testing.T) {
	a, _, stop := newObservedAgent(t, t.TempDir())
	defer stop()
	d1, d2 := deadAddr(t), deadAddr(t)
	pin := "sha256:" + strings.Repeat("ab", 32)
	js := "gate://" + d1 + "," + d2 + "/d363b4e9bd3d6aa8?pin=" + pin
	m, err := a.Join(context.Background(), localapi.JoinRequest{Join: js})
	if err != nil {
		t.Fatal(err)
	}
	if m.Online || !strings.Contains(m.Error, "every address of the controller failed (2 tried)") || !strings.Contains(m.Error, "refused") {
		t.Fatalf("membership: online %t, error %q", m.Online, m.Error)
	}
	if ms := a.Memberships(); len(ms) != 1 || !slices.Equal(ms[0].Controllers(), []string{d1, d2}) {
		t.Fatalf("memberships: %+v", ms)
	}
}

// TestOldStateFileLoads: a state file from before replicas (one address,
// no replicas, no controller_now) loads as a membership with one address.
func TestOldStateFileLoads(t *testing.T) {
	dir := t.TempDir()
	old := `{"version":1,"default_controller":"gate://198.51.100.10:8443/?pin=sha256%3A` + strings.Repeat("ab", 32) + `",
"networks":[{"id":"d363b4e9bd3d6aa8","controller":"198.51.100.10:8443","pin":"sha256:` + strings.Repeat("ab", 32) + `","iface":"gated363b4e9bd","listen_port":51820,"joined":"2025-01-02T03:04:05Z"}]}`
	if err := os.WriteFile(filepath.Join(dir, stateFile), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	st, _ := state.Open(dir)
	a, err := New(Config{State: st})
	if err != nil {
		t.Fatal(err)
	}
	ms := a.Memberships()
	if len(ms) != 1 || !slices.Equal(ms[0].Controllers(), []string{"198.51.100.10:8443"}) || ms[0].Now() != "198.51.100.10:8443" {
		t.Fatalf("loaded %+v", ms)
	}
	// Saved again, one address stays as it was written: no new fields.
	a.mu.Lock()
	err = a.saveLocked()
	a.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, stateFile))
	if bytes.Contains(b, []byte("replicas")) || bytes.Contains(b, []byte("controller_now")) {
		t.Errorf("saved with one address: %s", b)
	}
}

// TestSameControllerMoreReplicas: joining again through a list that shares
// an address and the pin updates the addresses; another controller (no
// address in common, or another pin) is refused as before.
func TestSameControllerMoreReplicas(t *testing.T) {
	pin := "sha256:" + strings.Repeat("ab", 32)
	old := &Membership{Controller: "a.example:1", Pin: pin}
	for _, tt := range []struct {
		m    Membership
		want bool
	}{
		{Membership{Controller: "a.example:1", Pin: pin}, true},
		{Membership{Controller: "a.example:1", Replicas: []string{"b.example:1"}, Pin: pin}, true},
		{Membership{Controller: "b.example:1", Replicas: []string{"a.example:1"}, Pin: pin}, true},
		{Membership{Controller: "b.example:1", Pin: pin}, false},
		{Membership{Controller: "a.example:1", Pin: "sha256:" + strings.Repeat("cd", 32)}, false},
	} {
		if got := sameController(old, &tt.m); got != tt.want {
			t.Errorf("sameController(%+v) = %t", tt.m, got)
		}
	}
}

func TestMoveOn(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("dial tcp: connection refused"), true},
		{context.DeadlineExceeded, true},
		{&control.APIError{Status: 503}, true},
		{fmt.Errorf("x: %w", &control.APIError{Status: 500}), true},
		{&control.APIError{Status: 404}, false},
		{&control.APIError{Status: 429}, false},
		{&control.APIError{Status: 403}, false},
		{&badAnswer{fmt.Errorf("bad config")}, false},
		{fmt.Errorf("%w: pin", errNoClient), false},
	} {
		if got := moveOn(tt.err); got != tt.want {
			t.Errorf("moveOn(%v) = %t", tt.err, got)
		}
	}
	if got := rotate([]string{"a", "b", "c"}, "b"); !slices.Equal(got, []string{"b", "c", "a"}) {
		t.Errorf("rotate = %q", got)
	}
	if got := rotate([]string{"a", "b"}, "x"); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("rotate = %q", got)
	}
}
