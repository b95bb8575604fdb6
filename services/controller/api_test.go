package controller

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatenet/gate/services/control"
)

// TestSeedScenario walks the acceptance story of DESIGN.md through the API.
func TestSeedScenario(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	nw := e.mustNetwork("seed", "192.168.254.0/24", false)
	if nw.MTU != control.DefaultMTU || nw.Revision == 0 || control.CheckNetworkID(nw.ID) != nil {
		t.Fatalf("created network %+v", nw)
	}
	route := control.Route{Dest: netip.MustParsePrefix("172.16.0.0/16"), Via: netip.MustParseAddr("192.168.254.11")}
	if _, err := e.admin.AddRoute(ctx, nw.ID, route); err != nil {
		t.Fatal(err)
	}

	// The AWS gate joins without a token and waits for an admin.
	gate := e.newNode()
	mc := e.mustJoin(gate, nw.ID, "")
	if mc.Status != control.StatusRequesting || len(mc.Peers) != 0 || len(mc.Addresses) != 0 || mc.NodeID != gate.id.NodeID() {
		t.Fatalf("pending join: %+v", mc)
	}
	ms, _ := e.admin.Members(ctx, nw.ID)
	if len(ms) != 1 || ms[0].State != control.StatePending {
		t.Fatalf("members after join: %+v", ms)
	}
	m, err := e.admin.AllowMember(ctx, nw.ID, strings.ToUpper(gate.id.NodeID())) // IDs are case-insensitive
	if err != nil {
		t.Fatal(err)
	}
	if m.State != control.StateAllowed || len(m.Addresses) != 1 || m.Addresses[0].String() != "192.168.254.1" {
		t.Fatalf("allowed gate: %+v", m)
	}
	m, err = e.admin.SetMemberAddress(ctx, nw.ID, gate.id.NodeID(), netip.MustParseAddr("192.168.254.11"))
	if err != nil || m.Addresses[0].String() != "192.168.254.11" {
		t.Fatalf("static address: %+v, %v", m, err)
	}

	// The droplet joins with an allowing token and asks for .170.
	tok := e.mustToken(nw.ID, control.CreateTokenRequest{Allow: true})
	droplet := e.newNode()
	req := droplet.joinReq(tok)
	req.RequestedAddress = netip.MustParseAddr("192.168.254.170")
	mc, err = droplet.c.Join(ctx, nw.ID, req)
	if err != nil {
		t.Fatal(err)
	}
	if mc.Status != control.StatusOK || !slices.Equal(mc.Addresses, []netip.Prefix{netip.MustParsePrefix("192.168.254.170/24")}) {
		t.Fatalf("droplet config: %+v", mc)
	}
	if len(mc.Peers) != 1 || mc.Peers[0].NodeID != gate.id.NodeID() || mc.Peers[0].PublicKey != gate.key {
		t.Fatalf("droplet peers: %+v", mc.Peers)
	}
	wantAllowed := []netip.Prefix{netip.MustParsePrefix("192.168.254.11/32"), route.Dest}
	if !slices.Equal(mc.Peers[0].AllowedIPs, wantAllowed) {
		t.Errorf("gate's allowed IPs seen by the droplet: %v, want %v", mc.Peers[0].AllowedIPs, wantAllowed)
	}
	if !slices.EqualFunc(mc.Routes, []control.Route{route}, control.Route.Equal) || mc.MTU != control.DefaultMTU || mc.CIDR != nw.CIDR {
		t.Errorf("droplet routes/mtu/cidr: %+v", mc)
	}
	// The gate's own endpoint, seen from loopback, is first.
	if eps := mc.Peers[0].Endpoints; len(eps) == 0 || eps[0].String() != "127.0.0.1:51820" {
		t.Errorf("gate endpoints: %v", eps)
	}

	// The gate sees the droplet on its next sync.
	mc, err = gate.c.Sync(ctx, nw.ID, control.SyncRequest{Since: 0})
	if err != nil {
		t.Fatal(err)
	}
	if mc.Status != control.StatusOK || len(mc.Peers) != 1 || mc.Peers[0].NodeID != droplet.id.NodeID() ||
		!slices.Equal(mc.Peers[0].AllowedIPs, []netip.Prefix{netip.MustParsePrefix("192.168.254.170/32")}) {
		t.Fatalf("gate config: %+v", mc)
	}
	if mc.Keepalive != 0 {
		t.Errorf("gate keepalive %d, want 0 (its endpoint is the one seen)", mc.Keepalive)
	}

	// Listing: by address.
	ms, _ = e.admin.Members(ctx, nw.ID)
	if len(ms) != 2 || ms[0].NodeID != gate.id.NodeID() || ms[1].NodeID != droplet.id.NodeID() {
		t.Fatalf("members: %+v", ms)
	}
	ts, _ := e.admin.Tokens(ctx, nw.ID)
	if len(ts) != 1 || ts[0].Uses != 1 || ts[0].JoinString != "" {
		t.Errorf("tokens: %+v", ts)
	}

	// A denied gate vanishes from the droplet's peers, keeps its address.
	if _, err := e.admin.DenyMember(ctx, nw.ID, gate.id.NodeID()); err != nil {
		t.Fatal(err)
	}
	mc, _ = droplet.c.Sync(ctx, nw.ID, control.SyncRequest{})
	if len(mc.Peers) != 0 {
		t.Errorf("droplet still sees the denied gate: %+v", mc.Peers)
	}
	mc, _ = gate.c.Sync(ctx, nw.ID, control.SyncRequest{})
	if mc.Status != control.StatusDenied || len(mc.Peers) != 0 || len(mc.Addresses) != 0 {
		t.Errorf("denied gate config: %+v", mc)
	}
	// A token cannot undo a denial.
	tok2 := e.mustToken(nw.ID, control.CreateTokenRequest{Allow: true})
	if mc := e.mustJoin(gate, nw.ID, tok2); mc.Status != control.StatusDenied {
		t.Errorf("denied gate rejoined with a token: %+v", mc)
	}
	ms, _ = e.admin.Members(ctx, nw.ID)
	if g, _ := memberByNode(ms, gate.id.NodeID()); g.State != control.StateDenied || g.Addresses[0].String() != "192.168.254.11" {
		t.Errorf("denied gate: %+v", g)
	}

	// Removing it frees .11 for someone else.
	if err := e.admin.RemoveMember(ctx, nw.ID, gate.id.NodeID()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.SetMemberAddress(ctx, nw.ID, droplet.id.NodeID(), netip.MustParseAddr("192.168.254.11")); err != nil {
		t.Errorf("freed address: %v", err)
	}
	_, err = gate.c.Sync(ctx, nw.ID, control.SyncRequest{})
	wantAPIError(t, "removed member syncs", err, 404, "member "+gate.id.NodeID()+" is not in network "+nw.ID)

	// Leave.
	if err := droplet.c.Leave(ctx, nw.ID); err != nil {
		t.Fatal(err)
	}
	if ms, _ := e.admin.Members(ctx, nw.ID); len(ms) != 0 {
		t.Errorf("members after leave: %+v", ms)
	}
	logs := e.allLogs()
	for _, secret := range []string{tok, tok2, e.s.AdminToken()} {
		if strings.Contains(logs, secret) {
			t.Errorf("a secret was logged")
		}
	}
	if !strings.Contains(logs, "allowed") || !strings.Contains(logs, "route 172.16.0.0/16 via 192.168.254.11 added") {
		t.Errorf("logs lack mutations:\n%s", logs)
	}
}

func TestStaticAddressRules(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("seed", "192.168.254.0/24", true)
	a, b := e.newNode(), e.newNode()
	e.mustJoin(a, nw.ID, "")
	e.mustJoin(b, nw.ID, "")
	if _, err := e.admin.SetMemberAddress(e.ctx, nw.ID, a.id.NodeID(), netip.MustParseAddr("192.168.254.11")); err != nil {
		t.Fatal(err)
	}
	before := e.snapshot()
	for _, tc := range []struct {
		addr, msg string
		status    int
	}{
		{"192.168.254.11", "192.168.254.11 is already assigned to member " + a.id.NodeID(), 409},
		{"192.168.254.0", "is the network address", 400},
		{"192.168.254.255", "is the broadcast address", 400},
		{"10.0.0.1", "outside the network", 400},
		{"fd00::1", "only IPv4", 400},
	} {
		_, err := e.admin.SetMemberAddress(e.ctx, nw.ID, b.id.NodeID(), netip.MustParseAddr(tc.addr))
		wantAPIError(t, tc.addr, err, tc.status, tc.msg)
	}
	_, err := e.admin.SetMemberAddress(e.ctx, nw.ID, "0000000000", netip.MustParseAddr("192.168.254.50"))
	wantAPIError(t, "unknown member", err, 404, "member 0000000000 is not in network")
	if after := e.snapshot(); after != before {
		t.Errorf("bad input changed state:\n%s\n%s", before, after)
	}
	// Setting a member's own address again is fine.
	if _, err := e.admin.SetMemberAddress(e.ctx, nw.ID, a.id.NodeID(), netip.MustParseAddr("192.168.254.11")); err != nil {
		t.Error(err)
	}
}

func TestPoolExhaustion(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("tiny", "10.9.0.0/30", true)
	n1, n2, n3 := e.newNode(), e.newNode(), e.newNode()
	got := map[string]bool{}
	for _, n := range []*node{n1, n2} {
		mc := e.mustJoin(n, nw.ID, "")
		if mc.Status != control.StatusOK {
			t.Fatalf("join: %+v", mc)
		}
		got[mc.Addresses[0].String()] = true
	}
	if !got["10.9.0.1/30"] || !got["10.9.0.2/30"] {
		t.Fatalf("addresses %v", got)
	}
	mc := e.mustJoin(n3, nw.ID, "")
	if mc.Status != control.StatusRequesting || len(mc.Addresses) != 0 {
		t.Fatalf("third member of a /30: %+v", mc)
	}
	if !strings.Contains(e.allLogs(), "no free addresses") {
		t.Errorf("exhaustion not logged")
	}
	if err := e.admin.RemoveMember(e.ctx, nw.ID, n1.id.NodeID()); err != nil {
		t.Fatal(err)
	}
	m, err := e.admin.AllowMember(e.ctx, nw.ID, n3.id.NodeID())
	if err != nil || len(m.Addresses) != 1 || m.Addresses[0].String() != "10.9.0.1" {
		t.Fatalf("allow after free: %+v, %v", m, err)
	}
}

func TestNetworkRules(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("seed", "192.168.254.0/24", false)
	e.mustNetwork("other", "10.0.0.0/16", false)
	before := e.snapshot()
	for _, tc := range []struct {
		name, cidr string
		mtu        int
		status     int
		msg        string
	}{
		{"x", "192.168.254.1/24", 0, 400, "cidr 192.168.254.1/24 is not a network address; did you mean 192.168.254.0/24?"},
		{"x", "192.168.0.0/16", 0, 409, `overlaps network "seed" (` + nw.ID},
		{"x", "10.0.5.0/24", 0, 409, `overlaps network "other"`},
		{"x", "fd00::/64", 0, 400, "IPv6 networks are not supported yet"},
		{"x", "172.20.0.0/31", 0, 400, "prefix length"},
		{"x", "172.20.0.0/24", 100, 400, "mtu 100"},
		{"", "172.20.0.0/24", 0, 400, "name"},
	} {
		_, err := e.admin.CreateNetwork(e.ctx, control.CreateNetworkRequest{Name: tc.name, CIDR: netip.MustParsePrefix(tc.cidr), MTU: tc.mtu})
		wantAPIError(t, tc.cidr, err, tc.status, tc.msg)
	}
	for _, tc := range []struct {
		dest, via string
		status    int
		msg       string
	}{
		{"192.168.254.0/25", "192.168.254.11", 400, "overlaps the network's own CIDR"},
		{"172.16.0.1/16", "192.168.254.11", 400, "did you mean 172.16.0.0/16?"},
		{"172.16.0.0/16", "192.168.254.255", 400, "route via 192.168.254.255 is the broadcast address"},
		{"172.16.0.0/16", "10.0.0.1", 400, "route via 10.0.0.1 is outside"},
	} {
		_, err := e.admin.AddRoute(e.ctx, nw.ID, control.Route{Dest: netip.MustParsePrefix(tc.dest), Via: netip.MustParseAddr(tc.via)})
		wantAPIError(t, tc.dest+" via "+tc.via, err, tc.status, tc.msg)
	}
	bad := 1000
	empty := ""
	_, err := e.admin.UpdateNetwork(e.ctx, nw.ID, control.UpdateNetworkRequest{MTU: &bad})
	wantAPIError(t, "patch mtu", err, 400, "mtu 1000")
	_, err = e.admin.UpdateNetwork(e.ctx, nw.ID, control.UpdateNetworkRequest{Name: &empty})
	wantAPIError(t, "patch name", err, 400, "name")
	_, err = e.admin.DeleteRoute(e.ctx, nw.ID, netip.MustParsePrefix("172.16.0.0/16"))
	wantAPIError(t, "delete missing route", err, 404, "has no route to 172.16.0.0/16")
	if after := e.snapshot(); after != before {
		t.Errorf("bad input changed state:\n%s\n%s", before, after)
	}

	// Good changes bump the revision; auto_allow alone does not.
	rev := nw.Revision
	r := control.Route{Dest: netip.MustParsePrefix("172.16.0.0/16"), Via: netip.MustParseAddr("192.168.254.11")}
	got, err := e.admin.AddRoute(e.ctx, nw.ID, r)
	if err != nil || got.Revision != rev+1 || !slices.EqualFunc(got.Routes, []control.Route{r}, control.Route.Equal) {
		t.Fatalf("add route: %+v, %v", got, err)
	}
	_, err = e.admin.AddRoute(e.ctx, nw.ID, r)
	wantAPIError(t, "duplicate route", err, 409, "a route to 172.16.0.0/16 already exists")
	yes, mtu, name := true, 1380, "renamed"
	got, err = e.admin.UpdateNetwork(e.ctx, nw.ID, control.UpdateNetworkRequest{AutoAllow: &yes})
	if err != nil || !got.AutoAllow || got.Revision != rev+1 {
		t.Fatalf("patch auto_allow: %+v, %v", got, err)
	}
	got, err = e.admin.UpdateNetwork(e.ctx, nw.ID, control.UpdateNetworkRequest{MTU: &mtu, Name: &name})
	if err != nil || got.MTU != 1380 || got.Name != "renamed" || got.Revision != rev+2 {
		t.Fatalf("patch: %+v, %v", got, err)
	}
	got, err = e.admin.DeleteRoute(e.ctx, nw.ID, r.Dest)
	if err != nil || len(got.Routes) != 0 || got.Revision != rev+3 {
		t.Fatalf("delete route: %+v, %v", got, err)
	}
	ns, _ := e.admin.Networks(e.ctx)
	if len(ns) != 2 || ns[0].Name != "other" || ns[1].Name != "renamed" {
		t.Errorf("networks not by name: %+v", ns)
	}
	if err := e.admin.DeleteNetwork(e.ctx, nw.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.admin.Network(e.ctx, nw.ID)
	wantAPIError(t, "deleted network", err, 404, "network "+nw.ID+" not found")
	// Its CIDR is free again.
	e.mustNetwork("again", "192.168.254.0/24", false)
}

func TestAuthAndErrors(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("seed", "192.168.254.0/24", true)
	n := e.newNode()

	// Member calls need the client certificate; the admin token is no identity.
	_, err := e.admin.Join(e.ctx, nw.ID, n.joinReq(""))
	wantAPIError(t, "join without certificate", err, 401, "client certificate")
	// Admin calls need the admin token.
	noToken := e.client(nil, "")
	_, err = noToken.Networks(e.ctx)
	wantAPIError(t, "no token", err, 401, "admin token required")
	_, err = e.client(nil, "wrong-token-wrong-token").Networks(e.ctx)
	wantAPIError(t, "wrong token", err, 401, "wrong admin token")
	_, err = n.c.Members(e.ctx, nw.ID)
	wantAPIError(t, "member as admin", err, 401, "admin token")
	// Health needs nothing.
	if st, _ := e.raw("GET", "/v1/health", "", ""); st != 200 {
		t.Errorf("health: %d", st)
	}
	// A wrong pin is refused by the client.
	other, _ := control.NewIdentity()
	c, err := control.NewClient(e.addr, other.Pin(), nil, e.s.AdminToken())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Networks(e.ctx); err == nil || !strings.Contains(err.Error(), "does not match pin") {
		t.Errorf("wrong pin: %v", err)
	}

	before := e.snapshot()
	tok := e.s.AdminToken()
	for _, tc := range []struct {
		method, path, body string
		status             int
		msg                string
	}{
		{"POST", "/v1/networks", `{"name":"x","cidr":"10.1.0.0/16"`, 400, "request body: truncated JSON"},
		{"POST", "/v1/networks", `{"name":"x",}`, 400, "request body: invalid JSON at byte"},
		{"POST", "/v1/networks", `{"name":"x","cidr":"10.1.0.0/16","colour":"red"}`, 400, `request body: unknown field "colour"`},
		{"POST", "/v1/networks", `{"name":"x","cidr":"bogus"}`, 400, `request body: field "cidr": `},
		{"POST", "/v1/networks", `{"name":"x","cidr":"10.1.0.0/16","mtu":"big"}`, 400, `request body: field "mtu": want an integer, got string`},
		{"POST", "/v1/networks", `[1,2]`, 400, "request body: want a JSON object"},
		{"POST", "/v1/networks", ``, 400, "request body: empty"},
		{"POST", "/v1/networks", `{"name":"x","cidr":"10.1.0.0/16"} {}`, 400, "unexpected data after"},
		{"POST", "/v1/networks", `{"name":"x","cidr":"10.1.0.0/16","pad":"` + strings.Repeat("a", 1<<20) + `"}`, 413, "larger than"},
		{"POST", "/v1/networks/" + nw.ID + "/tokens", `{"expires_in":"soon"}`, 400, `field "expires_in"`},
		{"POST", "/v1/networks/" + nw.ID + "/routes", `{"dest":"10.1.0.0/16","via":"x"}`, 400, `field "via"`},
		{"GET", "/v1/networks/nothex", "", 400, `network ID "nothex"`},
		{"GET", "/v1/networks/00000000000000aa", "", 404, "network 00000000000000aa not found"},
		{"POST", "/v1/networks/00000000000000aa/members/zz/allow", "", 400, "node ID"},
		{"DELETE", "/v1/networks/" + nw.ID + "/routes?dest=banana", "", 400, "dest query parameter"},
		{"PUT", "/v1/networks", "{}", 405, "PUT is not allowed"},
		{"GET", "/v2/whatever", "", 404, "no such API path"},
	} {
		st, msg := e.raw(tc.method, tc.path, tc.body, tok)
		if st != tc.status || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s %s %.40q: %d %q, want %d %q", tc.method, tc.path, tc.body, st, msg, tc.status, tc.msg)
		}
	}
	// Member calls on unknown networks and members.
	_, err = n.c.Join(e.ctx, "00000000000000aa", n.joinReq(""))
	wantAPIError(t, "join unknown network", err, 404, "network 00000000000000aa not found")
	_, err = n.c.Sync(e.ctx, nw.ID, control.SyncRequest{})
	wantAPIError(t, "sync before join", err, 404, "is not in network")
	bad := n.joinReq("")
	bad.PublicKey = "nope"
	_, err = n.c.Join(e.ctx, nw.ID, bad)
	wantAPIError(t, "bad key", err, 400, "public_key")
	if after := e.snapshot(); after != before {
		t.Errorf("bad input changed state:\n%s\n%s", before, after)
	}
}

func TestStateDir(t *testing.T) {
	e := newEnv(t)
	for name, want := range map[string]os.FileMode{keyFile: 0o600, tokenFile: 0o600, urlFile: 0o644} {
		fi, err := os.Stat(filepath.Join(e.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
	b, err := os.ReadFile(filepath.Join(e.dir, urlFile))
	if err != nil {
		t.Fatal(err)
	}
	js, err := control.ParseControllerAddress(string(b))
	if err != nil || js.Pin != e.s.Pin() || js.Controller != "controller.test:8443" {
		t.Errorf("controller.url %q: %+v, %v", b, js, err)
	}
	for _, tc := range []struct{ listen, advertise, want string }{
		{":8443", "", "set the advertise address"},
		{"0.0.0.0:8443", "", "set the advertise address"},
		{"8443", "", "listen address"},
		{":8443", "example.com", "advertise address"},
		{":8443", "example.com:0", "port must be"},
	} {
		_, err := New(Config{StateDir: t.TempDir(), Listen: tc.listen, Advertise: tc.advertise})
		wantErr(t, tc.listen+" "+tc.advertise, err, tc.want)
	}
	s, err := New(Config{StateDir: filepath.Join(t.TempDir(), "new"), Listen: "10.0.0.1:8443", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.advertise != "10.0.0.1:8443" {
		t.Errorf("advertise %q", s.advertise)
	}
	if fi, err := os.Stat(filepath.Join(filepath.Dir(s.cfg.StateDir), "new")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir: %v, %v", fi.Mode(), err)
	}
}

// TestConcurrentJoins: members joining at once never share an address.
func TestConcurrentJoins(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("busy", "10.20.0.0/24", true)
	const n = 24
	nodes := make([]*node, n)
	for i := range nodes {
		nodes[i] = e.newNode()
	}
	errs := make(chan error, n)
	for _, nd := range nodes {
		go func() {
			_, err := nd.c.Join(e.ctx, nw.ID, nd.joinReq(""))
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	ms, err := e.admin.Members(e.ctx, nw.ID)
	if err != nil || len(ms) != n {
		t.Fatalf("members: %d, %v", len(ms), err)
	}
	for i, m := range ms {
		if want := netip.AddrFrom4([4]byte{10, 20, 0, byte(i + 1)}); len(m.Addresses) != 1 || m.Addresses[0] != want {
			t.Errorf("member %d: %v, want %v (sorted, lowest first, no gaps)", i, m.Addresses, want)
		}
	}
}

// TestIdentityPinned: a node whose key has the same (short) node ID as a
// member's, but is another key, can neither join as it, sync as it, nor
// make it leave. Such a key would take about 2^40 tries to find; here the
// caller is forged directly.
func TestIdentityPinned(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("seed", "192.168.254.0/24", true)
	a := e.newNode()
	e.mustJoin(a, nw.ID, "")
	before := e.snapshot()
	other, _ := control.NewIdentity()
	forged := caller{node: a.id.NodeID(), key: other.Pin()}
	evil := e.newNode().joinReq("")
	_, err := e.s.join(e.ctx, nw.ID, forged, evil, netip.MustParseAddr("198.51.100.66"))
	wantErr(t, "join", err, "registered with a different identity key")
	_, err = e.s.sync(e.ctx, nw.ID, forged, control.SyncRequest{PublicKey: evil.PublicKey}, netip.MustParseAddr("198.51.100.66"), true)
	wantErr(t, "sync", err, "registered with a different identity key")
	err = e.s.removeMember(e.ctx, nw.ID, memberRef{node: a.id.NodeID(), key: other.Pin()}, true)
	wantErr(t, "leave", err, "registered with a different identity key")
	if statusOf(err) != 403 {
		t.Errorf("status %d, want 403", statusOf(err))
	}
	if after := e.snapshot(); after != before {
		t.Errorf("forged calls changed state:\n%s\n%s", before, after)
	}
	// The real node still works.
	if _, err := a.c.Sync(e.ctx, nw.ID, control.SyncRequest{Wait: control.Duration(time.Millisecond)}); err != nil {
		t.Error(err)
	}
}

// TestRequestedAddressKeptUntilAllowed: a pending member's requested
// address is given when an admin allows it.
func TestRequestedAddressKeptUntilAllowed(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("seed", "192.168.254.0/24", false)
	a := e.newNode()
	req := a.joinReq("")
	req.RequestedAddress = netip.MustParseAddr("192.168.254.77")
	if mc, err := a.c.Join(e.ctx, nw.ID, req); err != nil || mc.Status != control.StatusRequesting {
		t.Fatalf("join: %+v, %v", mc, err)
	}
	m, err := e.admin.AllowMember(e.ctx, nw.ID, a.id.NodeID())
	if err != nil || len(m.Addresses) != 1 || m.Addresses[0].String() != "192.168.254.77" {
		t.Fatalf("allow: %+v, %v", m, err)
	}
}

// Setting a route replaces the one to its destination in one change:
// members see the new gateways at the next revision, never no route.
func TestSetRoute(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("n", "192.168.254.0/24", true)
	first := control.Route{Dest: netip.MustParsePrefix("172.16.0.0/16"), Via: netip.MustParseAddr("192.168.254.11")}
	if _, err := e.admin.SetRoute(e.ctx, nw.ID, first); err != nil {
		t.Fatalf("set a new route: %v", err)
	}
	rev := e.revision(nw.ID)
	second := control.Route{Dest: first.Dest, Via: netip.MustParseAddr("192.168.254.12"), Backups: []netip.Addr{netip.MustParseAddr("192.168.254.11")}}
	n, err := e.admin.SetRoute(e.ctx, nw.ID, second)
	if err != nil {
		t.Fatalf("replace: %v", err)
	}
	if len(n.Routes) != 1 || n.Routes[0].Via != second.Via || len(n.Routes[0].Backups) != 1 || n.Revision != rev+1 {
		t.Fatalf("after replacing: %+v at revision %d (was %d)", n.Routes, n.Revision, rev)
	}
	// Adding still refuses a duplicate, and says how to replace.
	_, err = e.admin.AddRoute(e.ctx, nw.ID, first)
	wantAPIError(t, "add over an existing route", err, 409, "replace it in one change")
	// A replacement that is wrong changes nothing.
	bad := control.Route{Dest: first.Dest, Via: netip.MustParseAddr("10.0.0.1")}
	_, err = e.admin.SetRoute(e.ctx, nw.ID, bad)
	wantAPIError(t, "a replacement outside the network", err, 400, "10.0.0.1")
	got, _ := e.admin.Network(e.ctx, nw.ID)
	if len(got.Routes) != 1 || got.Routes[0].Via != second.Via {
		t.Fatalf("a refused replacement changed the route: %+v", got.Routes)
	}
	es, _ := e.admin.Audit(e.ctx, control.AuditQuery{NetworkID: nw.ID})
	sets := 0
	for _, a := range es {
		if a.Action == "route.set" {
			sets++
		}
	}
	if sets != 3 {
		t.Errorf("%d route.set audit entries, want 3 (two made, one refused)", sets)
	}
}
