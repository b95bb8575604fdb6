package controller

import (
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/policy"
)

// TestPolicyAPI: tags on members and tokens, a network's rules set whole,
// checked against the network and compiled into each member's
// configuration, and policy test naming the rule that decided.
func TestPolicyAPI(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	nw := e.mustNetwork("seed", "192.168.254.0/24", false)
	if !slices.EqualFunc(nw.Rules, policy.DefaultRules(), policy.Rule.Equal) {
		t.Fatalf("a new network's rules: %q, want the default", nw.Rules)
	}
	if _, err := e.admin.AddRoute(ctx, nw.ID, control.Route{Dest: netip.MustParsePrefix("172.16.0.0/16"), Via: netip.MustParseAddr("192.168.254.11")}); err != nil {
		t.Fatal(err)
	}
	gate := e.newNode()
	e.mustJoin(gate, nw.ID, "")
	if _, err := e.admin.AllowMember(ctx, nw.ID, gate.id.NodeID()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.SetMemberAddress(ctx, nw.ID, gate.id.NodeID(), netip.MustParseAddr("192.168.254.11")); err != nil {
		t.Fatal(err)
	}

	// A token's tags go to the member that joins with it.
	tok := e.mustToken(nw.ID, control.CreateTokenRequest{Allow: true, Tags: []string{"Web", "prod", "web"}})
	ts, _ := e.admin.Tokens(ctx, nw.ID)
	if len(ts) != 1 || !slices.Equal(ts[0].Tags, []string{"prod", "web"}) {
		t.Fatalf("token tags: %+v", ts)
	}
	droplet := e.newNode()
	mc := e.mustJoin(droplet, nw.ID, tok)
	ms, _ := e.admin.Members(ctx, nw.ID)
	if m, _ := memberByNode(ms, droplet.id.NodeID()); !slices.Equal(m.Tags, []string{"prod", "web"}) {
		t.Fatalf("droplet's tags: %+v", m)
	}
	// The default rule: everything reaches the droplet's address.
	if mc.Policy == nil || len(mc.Policy.Input) != 1 || !mc.Policy.Input[0].Allow {
		t.Fatalf("the droplet's rules under the default: %+v", mc.Policy)
	}

	// Bad tags are refused, named, escaped, and change nothing.
	for _, tc := range []struct {
		tags []string
		want string
	}{
		{[]string{"9lives"}, `tag "9lives": want 1-32 lower-case letters`},
		{[]string{"web\x1b[2J"}, `tag "web\x1b[2J"`},
		{[]string{strings.Repeat("a", 33)}, "want 1-32"},
		{slices.Repeat([]string{"a"}, 17), "at most 16"},
	} {
		_, err := e.admin.SetMemberTags(ctx, nw.ID, gate.id.NodeID(), tc.tags)
		wantAPIError(t, "tags "+strings.Join(tc.tags, ","), err, 400, tc.want)
		if err != nil && strings.Contains(err.Error(), "\x1b") {
			t.Errorf("an error echoes a raw escape: %q", err)
		}
	}
	if _, err := e.admin.SetMemberTags(ctx, nw.ID, gate.id.NodeID(), []string{"gw"}); err != nil {
		t.Fatal(err)
	}

	// Rules: checked against the network, whole; refused ones change
	// nothing.
	before, rev := e.snapshot(), e.revision(nw.ID)
	for _, tc := range []struct {
		rules []string
		want  string
	}{
		{[]string{"allow from any to 10.0.0.0/8"}, "10.0.0.0/8"},
		{[]string{"allow from member:abcdef0123 to any"}, "abcdef0123"},
	} {
		var p policy.Policy
		for _, r := range tc.rules {
			p = append(p, policy.MustParseRule(r))
		}
		_, err := e.admin.SetRules(ctx, nw.ID, control.SetRulesRequest{Rules: p})
		wantAPIError(t, "rules "+strings.Join(tc.rules, "; "), err, 400, tc.want)
	}
	code, msg := e.raw("PUT", "/v1/networks/"+nw.ID+"/rules", `{"rules":["allow form any to any"]}`, e.s.AdminToken())
	if code != 400 || !strings.Contains(msg, `want "from"`) {
		t.Errorf("a misspelt rule: %d %q", code, msg)
	}
	if e.snapshot() != before || e.revision(nw.ID) != rev {
		t.Errorf("refused rules changed the network: revision %d, was %d", e.revision(nw.ID), rev)
	}

	rules := policy.Policy{
		policy.MustParseRule("allow from tag:web to tag:gw on icmp"),
		policy.MustParseRule("deny from tag:web to 172.16.0.0/16 on tcp/22"),
		policy.MustParseRule("allow from tag:web to 172.16.0.0/16"),
		policy.MustParseRule("allow from tag:db to members on tcp/5432"), // no member has tag db yet
	}
	ans, err := e.admin.SetRules(ctx, nw.ID, control.SetRulesRequest{Rules: rules, Revision: e.revision(nw.ID)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ans.Warnings) != 1 || !strings.Contains(ans.Warnings[0], "db") {
		t.Errorf("warnings: %q, want one about tag db", ans.Warnings)
	}
	// Two admins at once: the one who read an older revision is told.
	_, err = e.admin.SetRules(ctx, nw.ID, control.SetRulesRequest{Rules: policy.DefaultRules(), Revision: ans.Network.Revision - 1})
	wantAPIError(t, "stale revision", err, 409, "read them again")

	// The gate gets what it enforces: rules 1 and 4 on what reaches it,
	// 2 and 3 on what it forwards into the VPC.
	gmc, err := gate.c.Sync(ctx, nw.ID, control.SyncRequest{PublicKey: gate.key})
	if err != nil {
		t.Fatal(err)
	}
	p := gmc.Policy
	if p == nil || len(p.Input) != 2 || p.Input[0].Rule != 1 || p.Input[1].Rule != 4 || len(p.Forward) != 2 || p.Forward[0].Rule != 2 || p.Forward[0].Allow || len(p.Sets) != 0 {
		t.Errorf("the gate's rules: %+v", p)
	}
	// It fills in the set of tag web from its peers: the droplet.
	var peers []policy.Member
	for _, pe := range gmc.Peers {
		peers = append(peers, policy.Member{NodeID: pe.NodeID, Addresses: pe.Addresses, Tags: pe.Tags})
	}
	if web := p.Fill(peers).Sets["tag:web"]; !slices.Equal(web, []netip.Prefix{netip.MustParsePrefix(mc.Addresses[0].Addr().String() + "/32")}) {
		t.Errorf("the gate's set of tag web, filled from its peers %+v: %v", gmc.Peers, web)
	}
	// The droplet is a destination of rule 4 only: nothing reaches it
	// but from tag db, on tcp/5432, and replies.
	dmc, err := droplet.c.Sync(ctx, nw.ID, control.SyncRequest{PublicKey: droplet.key})
	if err != nil {
		t.Fatal(err)
	}
	if dmc.Policy == nil || len(dmc.Policy.Input) != 1 || dmc.Policy.Input[0].Rule != 4 || len(dmc.Policy.Forward) != 0 {
		t.Errorf("the droplet's rules: %+v", dmc.Policy)
	}

	// Explain.
	for _, tc := range []struct {
		req   control.PolicyTestRequest
		allow bool
		rule  int
	}{
		{control.PolicyTestRequest{From: droplet.id.NodeID(), To: netip.MustParseAddr("172.16.1.10"), Proto: "tcp", Port: 22}, false, 2},
		{control.PolicyTestRequest{From: droplet.id.Pin(), To: netip.MustParseAddr("172.16.1.10"), Proto: "tcp", Port: 443}, true, 3},
		{control.PolicyTestRequest{From: droplet.id.NodeID(), To: netip.MustParseAddr("192.168.254.11"), Proto: "icmp"}, true, 1},
		{control.PolicyTestRequest{From: "192.168.254.11", To: mc.Addresses[0].Addr(), Proto: "tcp", Port: 80}, false, 0},
	} {
		d, err := e.admin.TestPolicy(ctx, nw.ID, tc.req)
		if err != nil {
			t.Errorf("test %+v: %v", tc.req, err)
			continue
		}
		if d.Allow != tc.allow || d.Rule != tc.rule || d.Reason == "" || tc.rule > 0 && d.Text.String() != rules[tc.rule-1].String() {
			t.Errorf("test %+v = %+v; want allow %v by rule %d", tc.req, d, tc.allow, tc.rule)
		}
	}
	for _, tc := range []struct {
		req  control.PolicyTestRequest
		want string
	}{
		{control.PolicyTestRequest{From: "nobody", To: netip.MustParseAddr("172.16.1.10"), Proto: "tcp", Port: 22}, "want an address, or a member"},
		{control.PolicyTestRequest{From: droplet.id.NodeID(), To: netip.MustParseAddr("172.16.1.10"), Proto: "tcp"}, "needs a destination port"},
		{control.PolicyTestRequest{From: droplet.id.NodeID(), To: netip.MustParseAddr("172.16.1.10"), Proto: "sctp\x00"}, "protocol"},
	} {
		_, err := e.admin.TestPolicy(ctx, nw.ID, tc.req)
		wantAPIError(t, "test "+tc.want, err, 400, tc.want)
	}
}

// TestPolicyMigration: a network made before rules existed keeps working
// after the upgrade: it gets the default rule, which lets everything
// reach everything, and its members keep their reach.
func TestPolicyMigration(t *testing.T) {
	dir := t.TempDir()
	e := startEnv(t, dir)
	nw := e.mustNetwork("old", "10.99.0.0/24", true)
	e.stop()

	// Back to schema 5, as an older controller left it.
	st := openTestStore(t, dir)
	downgrade(t, st, 5)
	st.Close()

	e = startEnv(t, dir)
	n, err := e.admin.Network(e.ctx, nw.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(n.Rules, policy.DefaultRules(), policy.Rule.Equal) {
		t.Errorf("after the upgrade the rules are %q, want the default", n.Rules)
	}
	m := e.mustJoin(e.newNode(), nw.ID, "")
	if m.Policy == nil || len(m.Policy.Input) != 1 || !m.Policy.Input[0].Allow {
		t.Errorf("a member after the upgrade: %+v", m.Policy)
	}
}

// TestAttackPolicyInput: what an admin client sends for tags, rules and
// policy tests is refused with an error that names it, escaped, and
// changes nothing.
func TestAttackPolicyInput(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("p", "10.77.0.0/24", true)
	n := e.newNode()
	e.mustJoin(n, nw.ID, "")
	before := e.snapshot()
	tok := e.s.AdminToken()
	for _, tc := range []struct {
		method, path, body string
		want               string
	}{
		{"PUT", "/rules", `{"rules":["allow from any to any # \u001b]0;pwned\u0007"]}`, "printable"},
		{"PUT", "/rules", `{"rules":["allow from any to any\nallow from any to any"]}`, ""},
		{"PUT", "/rules", `{"rules":["` + strings.Repeat("allow from any to any ", 60) + `"]}`, "1024"},
		{"PUT", "/rules", `{"rules":[` + strings.TrimSuffix(strings.Repeat(`"allow from any to any",`, 1001), ",") + `]}`, "1000"},
		{"PUT", "/rules", `{"rules":["allow from 8.8.8.8 to any"]}`, "8.8.8.8"},
		{"PUT", "/rules", `{"rules":["allow from tag:\u001b[2J to any"]}`, "tag"},
		{"PUT", "/rules", `{"rules":"allow from any to any"}`, "rules"},
		{"PUT", "/rules", `{}`, "missing"},
		{"PUT", "/members/" + n.id.NodeID() + "/tags", `{"tags":["ok","b\u0000d"]}`, "tag"},
		{"PUT", "/members/" + n.id.NodeID() + "/tags", `{"tags":[7]}`, "tags"},
		{"POST", "/policy/test", `{"from":"\u001b[2J","to":"10.77.0.1","proto":"icmp"}`, "from"},
		{"POST", "/policy/test", `{"from":"10.77.0.1","to":"10.77.0.2","proto":"tcp","port":70000}`, "port"},
		{"POST", "/policy/test", `{"from":"10.77.0.1","proto":"icmp"}`, "to"},
	} {
		code, msg := e.raw(tc.method, "/v1/networks/"+nw.ID+tc.path, tc.body, tok)
		if code != 400 || !strings.Contains(msg, tc.want) {
			t.Errorf("%s %s %.60q: %d %q, want 400 naming %q", tc.method, tc.path, tc.body, code, msg, tc.want)
		}
		if strings.ContainsAny(msg, "\x1b\x07\x00") {
			t.Errorf("%s %s: the error echoes raw control characters: %q", tc.method, tc.path, msg)
		}
	}
	if e.snapshot() != before {
		t.Error("refused input changed the network")
	}
}

// TestPeersFollowRules: under rules that do not let everyone reach
// everyone, a member holds only the peers it may reach or that may reach
// it: in a hub-and-spoke network a spoke holds the hubs, a hub the
// spokes; with the default rule back, everyone holds everyone.
func TestPeersFollowRules(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("hub", "10.88.0.0/24", true)
	hubTok := e.mustToken(nw.ID, control.CreateTokenRequest{Reusable: true, Allow: true, Tags: []string{"hub"}})
	spokeTok := e.mustToken(nw.ID, control.CreateTokenRequest{Reusable: true, Allow: true, Tags: []string{"spoke"}})
	var hubs, spokes []*node
	for range 2 {
		n := e.newNode()
		e.mustJoin(n, nw.ID, hubTok)
		hubs = append(hubs, n)
	}
	for range 3 {
		n := e.newNode()
		e.mustJoin(n, nw.ID, spokeTok)
		spokes = append(spokes, n)
	}
	peersOf := func(n *node) []string {
		t.Helper()
		mc, err := n.c.Sync(e.ctx, nw.ID, control.SyncRequest{PublicKey: n.key})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, p := range mc.Peers {
			ids = append(ids, p.NodeID)
		}
		slices.Sort(ids)
		return ids
	}
	ids := func(ns []*node) []string {
		var out []string
		for _, n := range ns {
			out = append(out, n.id.NodeID())
		}
		slices.Sort(out)
		return out
	}
	if got := peersOf(spokes[0]); len(got) != 4 {
		t.Fatalf("under the default rule a spoke holds %d peers, want 4", len(got))
	}
	p, err := policy.ParsePolicy("allow from tag:spoke to tag:hub on tcp/443\nallow from tag:hub to tag:spoke on icmp\n")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.SetRules(e.ctx, nw.ID, control.SetRulesRequest{Rules: p}); err != nil {
		t.Fatal(err)
	}
	for _, s := range spokes {
		if got := peersOf(s); !slices.Equal(got, ids(hubs)) {
			t.Errorf("spoke %s holds %q, want the hubs %q", s.id.NodeID(), got, ids(hubs))
		}
	}
	for _, h := range hubs {
		if got := peersOf(h); !slices.Equal(got, ids(spokes)) {
			t.Errorf("hub %s holds %q, want the spokes %q", h.id.NodeID(), got, ids(spokes))
		}
	}
	// A new spoke reaches the hubs' next deltas, not the other spokes'.
	late := e.newNode()
	e.mustJoin(late, nw.ID, spokeTok)
	if got := peersOf(hubs[0]); !slices.Contains(got, late.id.NodeID()) {
		t.Errorf("a hub does not hold the new spoke: %q", got)
	}
	if got := peersOf(spokes[0]); slices.Contains(got, late.id.NodeID()) {
		t.Errorf("a spoke holds the new spoke: %q", got)
	}
	if _, err := e.admin.SetRules(e.ctx, nw.ID, control.SetRulesRequest{Rules: policy.DefaultRules()}); err != nil {
		t.Fatal(err)
	}
	if got := peersOf(spokes[0]); len(got) != 5 {
		t.Errorf("with the default rule back a spoke holds %d peers, want 5", len(got))
	}
}

// TestQuietChangesWakeNoOne: under rules that keep spokes apart, a spoke
// joining is no news for the other spokes, and their long-polls go on
// waiting; the next change that concerns them answers with a delta from
// the revision they hold, across the changes that did not.
func TestQuietChangesWakeNoOne(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("hub", "10.88.0.0/24", true)
	hubTok := e.mustToken(nw.ID, control.CreateTokenRequest{Reusable: true, Allow: true, Tags: []string{"hub"}})
	spokeTok := e.mustToken(nw.ID, control.CreateTokenRequest{Reusable: true, Allow: true, Tags: []string{"spoke"}})
	hub, spoke := e.newNode(), e.newNode()
	e.mustJoin(hub, nw.ID, hubTok)
	e.mustJoin(spoke, nw.ID, spokeTok)
	p, err := policy.ParsePolicy("allow from tag:spoke to tag:hub on tcp/443\nallow from tag:hub to tag:spoke on icmp\n")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.SetRules(e.ctx, nw.ID, control.SetRulesRequest{Rules: p}); err != nil {
		t.Fatal(err)
	}
	base, err := spoke.c.Sync(e.ctx, nw.ID, control.SyncRequest{PublicKey: spoke.key})
	if err != nil {
		t.Fatal(err)
	}
	wait := func(what string, change func()) control.MemberConfig {
		t.Helper()
		ch := make(chan syncResult, 1)
		go func() {
			mc, err := spoke.c.SyncDelta(e.ctx, nw.ID, control.SyncRequest{PublicKey: spoke.key, Since: base.Revision, Wait: control.Duration(time.Minute)})
			ch <- syncResult{mc, err}
		}()
		// Spokes join: each moves the revision, none concerns this one.
		for range 3 {
			e.mustJoin(e.newNode(), nw.ID, spokeTok)
		}
		select {
		case r := <-ch:
			t.Fatalf("%s: a spoke's long-poll was answered for other spokes joining: %+v, %v", what, r.mc, r.err)
		case <-time.After(500 * time.Millisecond):
		}
		change()
		r := waitSync(t, what, ch)
		if r.err != nil {
			t.Fatalf("%s: %v", what, r.err)
		}
		if !r.mc.Delta || r.mc.Since != base.Revision || len(r.mc.RemovedPeers) != 0 {
			t.Fatalf("%s: want a delta from %d with no removals: %+v", what, base.Revision, r.mc)
		}
		got, err := control.ApplyDelta(base, r.mc)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		full, err := spoke.c.Sync(e.ctx, nw.ID, control.SyncRequest{PublicKey: spoke.key})
		if err != nil {
			t.Fatal(err)
		}
		if got.Revision > full.Revision || got.Name != full.Name || !slices.EqualFunc(got.Peers, full.Peers, func(a, b control.Peer) bool {
			return a.NodeID == b.NodeID && slices.Equal(a.Endpoints, b.Endpoints)
		}) {
			t.Fatalf("%s: delta applied:\n%+v\nwant as the full configuration:\n%+v", what, got, full)
		}
		base = full
		return r.mc
	}
	// The hub's endpoint changes: news for every spoke.
	d := wait("hub endpoint", func() {
		if _, err := hub.c.Sync(e.ctx, nw.ID, control.SyncRequest{PublicKey: hub.key, Endpoints: []netip.AddrPort{netip.MustParseAddrPort("203.0.113.7:51820")}}); err != nil {
			t.Fatal(err)
		}
	})
	if len(d.Peers) != 1 || d.Peers[0].NodeID != hub.id.NodeID() {
		t.Errorf("hub endpoint: the delta carries %+v, want the hub alone", d.Peers)
	}
	// The network is renamed: news for everyone, with no peer in it.
	d = wait("rename", func() {
		if _, err := e.admin.UpdateNetwork(e.ctx, nw.ID, control.UpdateNetworkRequest{Name: new("hub-and-spoke")}); err != nil {
			t.Fatal(err)
		}
	})
	if d.Name != "hub-and-spoke" || len(d.Peers) != 0 {
		t.Errorf("rename: the delta says name %q, peers %+v", d.Name, d.Peers)
	}
}

// SetRulesRequest.Base catches a concurrent edit of the rules, and only
// that: a member joining meanwhile moves the revision, not the rules.
func TestSetRulesBase(t *testing.T) {
	e := newEnv(t)
	nw := e.mustNetwork("n", "10.5.0.0/24", true)
	base := policy.DefaultRules()
	e.mustJoin(e.newNode(), nw.ID, "")
	ssh := policy.Policy{policy.MustParseRule("allow from any to any on tcp/22")}
	if _, err := e.admin.SetRules(e.ctx, nw.ID, control.SetRulesRequest{Rules: ssh, Base: &base}); err != nil {
		t.Fatalf("with the base as it is: %v", err)
	}
	_, err := e.admin.SetRules(e.ctx, nw.ID, control.SetRulesRequest{Rules: base, Base: &base})
	wantAPIError(t, "with a stale base", err, http.StatusConflict, "changed since you read them")
	n, err := e.admin.Network(e.ctx, nw.ID)
	if err != nil || n.Rules.String() != ssh.String() {
		t.Fatalf("rules after a refused change: %q, %v", n.Rules.String(), err)
	}
}
