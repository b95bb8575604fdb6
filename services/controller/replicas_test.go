package controller

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/pgtest"
)

// replicaPair is two controllers on one PostgreSQL database, sharing the
// first one's identity as an operator would copy it.
func replicaPair(t *testing.T) (a, b *env, dsn string) {
	t.Helper()
	dsn = pgtest.NewDB(t)
	a = startEnvWith(t, func(c *Config) { c.DB, c.Advertise = dsn, "a.test:8443" }, nil)
	dir := t.TempDir()
	for _, f := range []string{keyFile, tokenFile} {
		data, err := os.ReadFile(filepath.Join(a.dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b = startEnvIn(t, dir, func(c *Config) { c.DB, c.Advertise = dsn, "b.test:8443" }, nil)
	return a, b, dsn
}

// onReplica is n as a member talking to replica e.
func onReplica(e *env, n *node) *node {
	return &node{id: n.id, key: n.key, c: e.client(&n.id, "")}
}

// TestReplicas: a change made through one replica reaches a member long-
// polling on the other; a member that moves resumes with a delta; join
// strings name both replicas; a replica with another key is refused.
func TestReplicas(t *testing.T) {
	a, b, dsn := replicaPair(t)
	if a.s.Pin() != b.s.Pin() {
		t.Fatalf("replicas with one key have pins %s and %s", a.s.Pin(), b.s.Pin())
	}
	nw := a.mustNetwork("ha", "10.60.0.0/24", true)

	// Join strings made by either replica name both, itself first.
	for _, tc := range []struct {
		e    *env
		want []string
	}{{a, []string{"a.test:8443", "b.test:8443"}}, {b, []string{"b.test:8443", "a.test:8443"}}} {
		tok, err := tc.e.admin.CreateToken(tc.e.ctx, nw.ID, control.CreateTokenRequest{})
		if err != nil {
			t.Fatal(err)
		}
		js, err := control.ParseJoinString(tok.JoinString)
		if err != nil || !slices.Equal(js.Controllers(), tc.want) {
			t.Errorf("join string %q (%v): controllers %q, want %q", tok.JoinString, err, js.Controllers(), tc.want)
		}
	}

	// a started before b: its controller.url names b once its upkeep
	// has run.
	if err := a.s.maintain(a.ctx); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(a.dir, urlFile)); err != nil || !strings.Contains(string(b), "a.test:8443,b.test:8443") {
		t.Errorf("a's controller.url after b started: %q, %v", b, err)
	}

	// m1 joins through a, m2 through b; each sees the other.
	m1, m2 := a.newNode(), b.newNode()
	a.mustJoin(m1, nw.ID, "")
	mc2 := b.mustJoin(m2, nw.ID, "")
	r := waitSync(t, "m2 sees m1", b.syncAsync(m2, nw.ID, control.SyncRequest{Since: 0, Wait: control.Duration(5 * time.Second)}))
	if r.err != nil || len(r.mc.Peers) != 1 {
		t.Fatalf("m2 on b after m1 joined on a: %+v, %v", r.mc, r.err)
	}
	mc2 = r.mc

	// A route added through a reaches m2, long-polling on b.
	ch := b.syncAsync(m2, nw.ID, control.SyncRequest{Since: mc2.Revision, Wait: control.Duration(time.Minute)})
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	route := control.Route{Dest: netip.MustParsePrefix("172.16.0.0/16"), Via: mc2.Addresses[0].Addr()}
	if _, err := a.admin.AddRoute(a.ctx, nw.ID, route); err != nil {
		t.Fatal(err)
	}
	r = waitSync(t, "route through a, m2 on b", ch)
	if r.err != nil || len(r.mc.Routes) != 1 || !r.mc.Routes[0].Equal(route) {
		t.Fatalf("m2's answer on b: %+v, %v", r.mc, r.err)
	}
	t.Logf("a change through replica a reached a member on replica b in %v", time.Since(start))

	// m2 moves to a (its replica is gone) with the revision it holds: a
	// change made through b meanwhile comes as a delta.
	m2a := onReplica(a, m2)
	held := r.mc.Revision
	m3 := b.newNode()
	b.mustJoin(m3, nw.ID, "")
	mc, err := m2a.c.SyncDelta(a.ctx, nw.ID, control.SyncRequest{Since: held, Wait: control.Duration(5 * time.Second)})
	if err != nil || !mc.Delta || mc.Since != held || len(mc.Peers) != 1 || mc.Peers[0].NodeID != m3.id.NodeID() {
		t.Fatalf("m2 moved to a, since %d: %+v, %v; want a delta with m3 alone", held, mc, err)
	}

	// A replica started with a key of its own is refused: members would
	// not trust the pin it gives.
	_, err = New(Config{StateDir: t.TempDir(), DB: dsn, Listen: "127.0.0.1:0", Advertise: "c.test:8443", Logf: t.Logf})
	if err == nil || !strings.Contains(err.Error(), "is not the one its database was made with") {
		t.Errorf("a replica with another key: %v", err)
	}
}

// TestReplicasWriteTogether: admins changing one network through two
// replicas at once all succeed, nothing is lost, and every change gets a
// revision of its own.
func TestReplicasWriteTogether(t *testing.T) {
	a, b, _ := replicaPair(t)
	nw := a.mustNetwork("busy", "10.61.0.0/24", true)
	gw := a.newNode()
	mc := a.mustJoin(gw, nw.ID, "")
	via := mc.Addresses[0].Addr()
	const each = 15
	var mu sync.Mutex
	revs := map[uint64]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	for i, e := range []*env{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				dest := netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", 100+i, j))
				n, err := e.admin.AddRoute(e.ctx, nw.ID, control.Route{Dest: dest, Via: via})
				if err != nil {
					errs <- fmt.Errorf("route %s: %w", dest, err)
					continue
				}
				mu.Lock()
				if other, ok := revs[n.Revision]; ok {
					errs <- fmt.Errorf("routes %s and %s both answered revision %d", other, dest, n.Revision)
				}
				revs[n.Revision] = dest.String()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, e := range []*env{a, b} {
		n, err := e.admin.Network(e.ctx, nw.ID)
		if err != nil || len(n.Routes) != 2*each {
			t.Errorf("%s sees %d routes (%v), want %d", e.s.advertise, len(n.Routes), err, 2*each)
		}
	}
	// One member changed through both at once, a field each: neither
	// change is lost to the other's (a write read the member, changed
	// its field and wrote it whole).
	wg.Add(2)
	errs = make(chan error, 2*each)
	go func() {
		defer wg.Done()
		for j := range each {
			if _, err := a.admin.SetMemberTags(a.ctx, nw.ID, gw.id.NodeID(), []string{fmt.Sprintf("tag-%d", j)}); err != nil {
				errs <- err
			}
		}
	}()
	go func() {
		defer wg.Done()
		for j := range each {
			if _, err := b.admin.SetMemberAddress(b.ctx, nw.ID, gw.id.NodeID(), netip.AddrFrom4([4]byte{10, 61, 0, byte(100 + j)})); err != nil {
				errs <- err
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ms, err := b.admin.Members(b.ctx, nw.ID)
	if m, ok := memberByNode(ms, gw.id.NodeID()); err != nil || !ok || !slices.Equal(m.Tags, []string{fmt.Sprintf("tag-%d", each-1)}) || !slices.Equal(m.Addresses, []netip.Addr{netip.AddrFrom4([4]byte{10, 61, 0, 100 + each - 1})}) {
		t.Errorf("after tags through a and addresses through b: %+v, %v", m, err)
	}
	// The member, on either replica, gets every route.
	for _, e := range []*env{a, b} {
		mc, err := onReplica(e, gw).c.Sync(e.ctx, nw.ID, control.SyncRequest{})
		if err != nil || len(mc.Routes) != 2*each {
			t.Errorf("member on %s: %d routes, %v", e.s.advertise, len(mc.Routes), err)
		}
	}
}

// TestReplicaDeletesNetwork: a network deleted through one replica is gone
// for the members of the other.
func TestReplicaDeletesNetwork(t *testing.T) {
	a, b, _ := replicaPair(t)
	nw := a.mustNetwork("short", "10.62.0.0/24", true)
	m := b.newNode()
	mc := b.mustJoin(m, nw.ID, "")
	ch := b.syncAsync(m, nw.ID, control.SyncRequest{Since: mc.Revision, Wait: control.Duration(time.Minute)})
	time.Sleep(100 * time.Millisecond)
	if err := a.admin.DeleteNetwork(context.Background(), nw.ID); err != nil {
		t.Fatal(err)
	}
	r := waitSync(t, "network deleted through a, member on b", ch)
	if !control.IsStatus(r.err, 404) {
		t.Errorf("member on b after the network was deleted through a: %+v, %v; want 404", r.mc, r.err)
	}
}

// TestHealth: the health endpoint says whether this replica can serve,
// for a load balancer: 503 when its database does not answer, without
// saying why to whoever asks.
func TestHealth(t *testing.T) {
	e := newEnv(t)
	if st, msg := e.raw("GET", "/v1/health", "", ""); st != 200 {
		t.Fatalf("health: %d %s", st, msg)
	}
	e.s.store.db.Close() // the database is gone
	st, msg := e.raw("GET", "/v1/health", "", "")
	if st != 503 || strings.Contains(msg, "sql") {
		t.Errorf("health without a database: %d %q, want 503 saying nothing of the cause", st, msg)
	}
	if !strings.Contains(e.allLogs(), "health: not serving: sql: database is closed") {
		t.Errorf("the cause is not logged:\n%s", e.allLogs())
	}
}
