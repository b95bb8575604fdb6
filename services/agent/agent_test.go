package agent

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/controller"
	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/state"
)

// startController runs a real controller on loopback.
func startController(t *testing.T) (*controller.Server, string, *control.Client) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s, err := controller.New(controller.Config{StateDir: t.TempDir(), Listen: addr, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ctx) }()
	admin, err := control.NewClient(addr, s.Pin(), nil, s.AdminToken())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(); cancel(); <-done; s.Close() })
	for i := 0; ; i++ {
		if _, err := admin.Networks(ctx); err == nil {
			break
		} else if i > 100 {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s, addr, admin
}

func newAgent(t *testing.T, dir string) (*Agent, context.CancelFunc) {
	t.Helper()
	return startAgent(t, dir, nil)
}

// startAgent starts an agent on dir; before, if set, runs before Start.
func startAgent(t *testing.T, dir string, before func(*Agent)) (*Agent, context.CancelFunc) {
	t.Helper()
	st, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	id, err := control.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{State: st, Identity: id, PublicKey: "V8FjWmnFFHIIvnVvwmwRPOu7JhW92odFepoHGki3alQ=", Hostname: "t", Version: "t", Logf: t.Logf,
		Endpoints: func() []netip.Addr { return []netip.Addr{netip.MustParseAddr("127.0.0.1")} }})
	if err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.Start(ctx)
	return a, func() { cancel(); a.Wait() }
}

func TestTokenJoinIsKeptWithoutTheToken(t *testing.T) {
	ctl, addr, admin := startController(t)
	ctx := context.Background()
	n, err := admin.CreateNetwork(ctx, control.CreateNetworkRequest{Name: "t", CIDR: netip.MustParsePrefix("10.5.0.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := admin.CreateToken(ctx, n.ID, control.CreateTokenRequest{Allow: true, Address: netip.MustParseAddr("10.5.0.9")})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a, stop := newAgent(t, dir)
	m, err := a.Join(ctx, localapi.JoinRequest{Join: tok.JoinString})
	if err != nil {
		t.Fatal(err)
	}
	if m.Status() != control.StatusOK || len(m.Config.Addresses) != 1 || m.Config.Addresses[0] != netip.MustParsePrefix("10.5.0.9/24") {
		t.Fatalf("membership = %+v", m.Config)
	}
	stop()

	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	secret := tok.JoinString[strings.Index(tok.JoinString, "token=")+len("token="):]
	if strings.Contains(string(b), secret) {
		t.Error("the state file still holds the join token after it was accepted")
	}
	if fi, _ := os.Stat(filepath.Join(dir, stateFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v", fi.Mode().Perm())
	}

	// Offline first: a new agent knows its last good configuration before
	// it has talked to anyone.
	st, _ := state.Open(dir)
	again, err := New(Config{State: st})
	if err != nil {
		t.Fatal(err)
	}
	ms := again.Memberships()
	if len(ms) != 1 || ms[0].Status() != control.StatusOK || ms[0].Controller != addr || ms[0].Pin != ctl.Pin() {
		t.Fatalf("reloaded memberships = %+v", ms)
	}
}

func TestRefusedJoinIsNotKept(t *testing.T) {
	ctl, addr, admin := startController(t)
	ctx := context.Background()
	n, err := admin.CreateNetwork(ctx, control.CreateNetworkRequest{Name: "t", CIDR: netip.MustParsePrefix("10.6.0.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	a, stop := newAgent(t, t.TempDir())
	defer stop()
	bad := control.JoinString{Controller: addr, NetworkID: n.ID, Pin: ctl.Pin(), Token: "nonexistenttoken0000"}.String()
	if _, err := a.Join(ctx, localapi.JoinRequest{Join: bad}); err == nil || !strings.Contains(err.Error(), "invalid join token") {
		t.Fatalf("join with an unknown token: %v", err)
	}
	if ms := a.Memberships(); len(ms) != 0 {
		t.Fatalf("refused join kept: %+v", ms)
	}
}

// FuzzParseJoin: whatever arrives on the local API's join call is parsed
// into a membership or refused with an error, never a panic, and what is
// accepted is well-formed.
func FuzzParseJoin(f *testing.F) {
	f.Add("gate://198.51.100.10:8443/d363b4e9bd3d6aa8?pin=sha256:"+strings.Repeat("ab", 32), "", "172.16.0.0/16", "eth0")
	f.Add("d363b4e9bd3d6aa8", "gate://198.51.100.10:8443?pin=sha256:"+strings.Repeat("ab", 32), "", "")
	f.Add("d363b4e9bd3d6aa8", "", "10.0.0.1/8", "x/y")
	f.Add("gate://198.51.100.10:8443,[2001:db8::1]:8443/d363b4e9bd3d6aa8?pin=sha256:"+strings.Repeat("ab", 32), "", "", "")
	f.Add("d363b4e9bd3d6aa8", "gate://198.51.100.10:8443,,198.51.100.11:8443?pin=sha256:"+strings.Repeat("ab", 32), "", "")
	f.Fuzz(func(t *testing.T, join, ctl, serve, lan string) {
		a := &Agent{}
		req := localapi.JoinRequest{Join: join, Controller: ctl}
		if pr, err := netip.ParsePrefix(serve); err == nil {
			req.Gateway = &localapi.Gateway{Serve: []netip.Prefix{pr}, LAN: lan}
		}
		m, err := a.parseJoin(req)
		if err != nil {
			return
		}
		if control.CheckNetworkID(m.ID) != nil || m.Controller == "" || m.Pin == "" || m.Gateway.Check() != nil ||
			len(m.Controllers()) > control.MaxControllers || slices.Contains(m.Replicas, "") || m.Now() != m.Controller {
			t.Fatalf("accepted %+v as %+v", req, m)
		}
	})
}

// TestDeltasKeepTheFullConfiguration: the agent syncs with deltas and keeps
// (and persists) the full configuration, the same as a full sync gives.
func TestDeltasKeepTheFullConfiguration(t *testing.T) {
	ctl, addr, admin := startController(t)
	ctx := context.Background()
	n, err := admin.CreateNetwork(ctx, control.CreateNetworkRequest{Name: "t", CIDR: netip.MustParsePrefix("10.7.0.0/24"), AutoAllow: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a, stop := newAgent(t, dir)
	defer stop()
	js := control.JoinString{Controller: addr, NetworkID: n.ID, Pin: ctl.Pin()}.String()
	if _, err := a.Join(ctx, localapi.JoinRequest{Join: js}); err != nil {
		t.Fatal(err)
	}
	// Other members come and go and move; the agent follows by deltas.
	var others []*control.Client
	for i := range 3 {
		id, _ := control.NewIdentity()
		c, err := control.NewClient(addr, ctl.Pin(), &id, "")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		others = append(others, c)
		if _, err := c.Join(ctx, n.ID, control.JoinRequest{PublicKey: base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{byte(i + 1)}, 32)), Hostname: fmt.Sprint("o", i), ListenPort: 51820}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := others[1].SyncDelta(ctx, n.ID, control.SyncRequest{Endpoints: []netip.AddrPort{netip.MustParseAddrPort("203.0.113.7:51820")}}); err != nil {
		t.Fatal(err)
	}
	if err := others[2].Leave(ctx, n.ID); err != nil {
		t.Fatal(err)
	}
	var want control.MemberConfig
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := a.Membership(n.ID)
		// A full sync of the same member: what the agent must hold.
		want = fullConfigOf(t, addr, ctl.Pin(), a.cfg.Identity, n.ID)
		if m.Config != nil && m.Config.Revision == want.Revision {
			if !reflect.DeepEqual(*m.Config, want) {
				t.Fatalf("agent holds\n%+v\nfull sync gives\n%+v", *m.Config, want)
			}
			if len(m.Config.Peers) != 2 || m.Config.Delta {
				t.Fatalf("agent holds %d peers (delta %t), want 2", len(m.Config.Peers), m.Config.Delta)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent at revision %v, controller at %d", m.Config, want.Revision)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fullConfigOf asks the controller, as the agent's node, for a full
// configuration without waiting.
func fullConfigOf(t *testing.T, addr, pin string, id control.Identity, netID string) control.MemberConfig {
	t.Helper()
	c, err := control.NewClient(addr, pin, &id, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mc, err := c.Sync(context.Background(), netID, control.SyncRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

func TestApplyDeltaWithoutBase(t *testing.T) {
	if _, err := applyDelta(nil, control.MemberConfig{Delta: true, Since: 3}); err == nil {
		t.Fatal("a delta with no configuration to apply it to was accepted")
	}
}
