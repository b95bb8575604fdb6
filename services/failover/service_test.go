package failover

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/gatenet/gate/services/control"
)

// clock is a test's time, moved by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time           { return c.t }
func (c *clock) add(d time.Duration)      { c.t = c.t.Add(d) }
func newClock() *clock                    { return &clock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)} }
func nopLogf(string, ...any)              {}
func addr(s string) netip.Addr            { return netip.MustParseAddr(s) }
func prefix(s string) netip.Prefix        { return netip.MustParsePrefix(s) }
func states(s ...RouteState) []RouteState { return s }

// haNet is a network where this node (10.99.0.170) routes 172.16.0.0/16
// through 10.99.0.11, then 10.99.0.12, with a failback hold of 10 s.
func haNet() Network {
	return Network{ID: "n1", Iface: "gaten1", Own: []netip.Prefix{prefix("10.99.0.170/24")}, Routes: []control.Route{
		{Dest: prefix("172.16.0.0/16"), Via: addr("10.99.0.11"), Backups: []netip.Addr{addr("10.99.0.12")}, Failback: control.Failback(10 * time.Second)},
		{Dest: prefix("10.20.0.0/16"), Via: addr("10.99.0.11")}, // one gateway: not asked about
	}}
}

// TestServiceFollowsAnswers: what a member hears from the gateways, and
// what it stops hearing, moves the route, and back after the hold.
func TestServiceFollowsAnswers(t *testing.T) {
	c := newClock()
	changes := 0
	s := New(func() { changes++ }, nopLogf)
	s.now = c.now
	s.Set([]Network{haNet()})
	r := haNet().Routes[0]
	gw1, gw2 := addr("10.99.0.11"), addr("10.99.0.12")
	answer := func(gw netip.Addr, st State) {
		s.record("n1", gw, s.nextQuestion(), states(RouteState{Dest: r.Dest, State: st}))
	}
	step := func(d time.Duration, answers ...func()) {
		c.add(d)
		for _, a := range answers {
			a()
		}
		if s.decide() {
			changes++
		}
	}
	both := []func(){func() { answer(gw1, OK) }, func() { answer(gw2, OK) }}
	step(0, both...)
	if got := s.Active("n1", r); got != gw1 || changes != 0 {
		t.Fatalf("both answer: via %s, %d changes", got, changes)
	}
	// gw1 goes silent: out after DownAfter, not before.
	for range 2 {
		step(Interval, func() { answer(gw2, OK) })
	}
	if got := s.Active("n1", r); got != gw1 {
		t.Fatalf("gw1 silent for 1 s: via %s, want still gw1", got)
	}
	step(Interval, func() { answer(gw2, OK) })
	if got := s.Active("n1", r); got != gw2 || changes != 1 {
		t.Fatalf("gw1 silent for 1.5 s: via %s (%d changes), want gw2", got, changes)
	}
	// gw1 is back: the route stays on gw2 for the hold, then moves back.
	for range 20 {
		step(Interval, both...)
	}
	if got := s.Active("n1", r); got != gw2 {
		t.Fatalf("gw1 back for 9.5 s: via %s, want gw2 until the hold of 10 s", got)
	}
	step(Interval, both...)
	if got := s.Active("n1", r); got != gw1 || changes != 2 {
		t.Fatalf("gw1 back for 10 s: via %s (%d changes), want gw1", got, changes)
	}
	// gw1 answers that its LAN is down: out at once.
	step(Interval, func() { answer(gw1, LANDown) }, func() { answer(gw2, OK) })
	if got := s.Active("n1", r); got != gw2 {
		t.Fatalf("gw1 reports its LAN down: via %s, want gw2", got)
	}
	st := s.Status()
	if len(st) != 1 || st[0].Choice.Active != gw2 || st[0].Seen[gw1.String()].Reason != "its LAN link is down" || !st[0].Seen[gw2.String()].Up {
		t.Errorf("status: %+v", st)
	}
	// A route with one gateway goes through it, whatever was heard.
	if got := s.Active("n1", haNet().Routes[1]); got != gw1 {
		t.Errorf("a route with one gateway: via %s", got)
	}
}

// TestAttackHealthAnswers: answers that are stale, never asked for, from
// a member that is no gateway of the route, that came over another
// network's overlay, or about routes the gateway does not serve, move
// nothing.
func TestAttackHealthAnswers(t *testing.T) {
	c := newClock()
	s := New(func() {}, nopLogf)
	s.now = c.now
	other := haNet()
	other.ID, other.Iface = "n2", "gaten2"
	s.Set([]Network{haNet(), other})
	r := haNet().Routes[0]
	gw1, gw2 := addr("10.99.0.11"), addr("10.99.0.12")
	s.nonce = 100
	first := s.nextQuestion()
	for range 4 {
		q := s.nextQuestion()
		// Only gw2 answers with a question's nonce: it takes the route
		// once gw1 has been silent for DownAfter.
		s.record("n1", gw2, q, states(RouteState{Dest: r.Dest, State: OK}))
		// gw1's answers are forged or stale: a nonce not yet asked, one
		// long gone, and one to the first question, which arrives
		// seconds late and tells nothing of now; and a stranger speaks
		// for a route it is no gateway of.
		s.record("n1", gw1, q+1, states(RouteState{Dest: r.Dest, State: OK}))
		s.record("n1", gw1, q-50, states(RouteState{Dest: r.Dest, State: OK}))
		s.record("n1", gw1, first, states(RouteState{Dest: r.Dest, State: OK}))
		s.record("n1", addr("10.99.0.66"), q, states(RouteState{Dest: r.Dest, State: OK}))
		// What arrives on another network's overlay speaks for that
		// network alone, even from the same address.
		s.record("n2", gw1, q, states(RouteState{Dest: r.Dest, State: OK, Active: gw1}))
		s.decide()
		c.add(Interval)
	}
	if got := s.Active("n1", r); got != gw2 {
		t.Fatalf("via %s, want gw2, the only gateway that answered a question", got)
	}
	if _, ok := s.seen[seenKey{routeKey{"n1", r.Dest}, addr("10.99.0.66")}]; ok {
		t.Errorf("a member that is no gateway of the route was recorded")
	}
	// A gateway whose answer leaves the route out does not serve it.
	s.record("n1", gw2, s.nextQuestion(), states(RouteState{Dest: prefix("10.30.0.0/16"), State: OK}))
	s.decide()
	st := s.Status()
	if h := st[0].Seen[gw2.String()]; h.Up || h.Reason != "it does not serve the subnet" {
		t.Errorf("gw2 answered without the route: %+v", h)
	}
}

// TestStateHere: a gateway reports a route it is listed for but does not
// serve as such, and one it serves by its LAN and probes.
func TestStateHere(t *testing.T) {
	s := New(func() {}, nopLogf)
	n := haNet()
	n.Own = []netip.Prefix{prefix("10.99.0.12/24")}
	r := n.Routes[0]
	if got := s.stateHere(n, r); got != NotServing {
		t.Errorf("not set up to serve: %s", got)
	}
	n.Serve = []netip.Prefix{prefix("172.16.0.0/12")}
	if got := s.stateHere(n, r); got != OK {
		t.Errorf("serving a wider prefix, not checked yet: %s", got)
	}
	k := routeKey{n.ID, r.Dest}
	p := control.Probe{Proto: "icmp", Addr: addr("172.16.1.1")}
	s.health[k] = &gwHealth{fails: map[control.Probe]int{p: probeFails - 1}}
	if got := s.stateHere(n, r); got != OK {
		t.Errorf("one probe failure: %s", got)
	}
	s.health[k].fails[p] = probeFails
	if got := s.stateHere(n, r); got != ProbeFails {
		t.Errorf("probe failing: %s", got)
	}
	s.health[k].lanDown = true
	if got := s.stateHere(n, r); got != LANDown {
		t.Errorf("LAN down: %s", got)
	}
	n.Serve = []netip.Prefix{prefix("172.16.1.0/24")}
	if got := s.stateHere(n, r); got != NotServing {
		t.Errorf("serving a narrower prefix: %s", got)
	}
}

// TestGatewaySeesWhoIsActive: a backup gateway asks the others too, and
// knows when the members it sees alike send through it.
func TestGatewaySeesWhoIsActive(t *testing.T) {
	c := newClock()
	logged := []string{}
	s := New(func() {}, func(f string, a ...any) { logged = append(logged, f) })
	s.now = c.now
	n := haNet()
	n.Own, n.Serve = []netip.Prefix{prefix("10.99.0.12/24")}, []netip.Prefix{prefix("172.16.0.0/16")}
	s.Set([]Network{n})
	r := n.Routes[0]
	gw1, me := addr("10.99.0.11"), addr("10.99.0.12")
	s.record("n1", gw1, s.nextQuestion(), states(RouteState{Dest: r.Dest, State: OK}))
	s.decide()
	st := s.Status()
	if len(st) != 1 || !st[0].Serving || st[0].Self != me || st[0].Choice.Active != gw1 || st[0].State != OK || !st[0].Seen[me.String()].Up {
		t.Fatalf("gw1 answers: %+v", st)
	}
	for range 3 {
		c.add(Interval)
		s.decide()
	}
	if st := s.Status(); st[0].Choice.Active != me {
		t.Fatalf("gw1 silent for 1.5 s: active %s, want this node", st[0].Choice.Active)
	}
	if len(logged) != 1 || logged[0] != "network %s: route %s: this node (%s) is %s the active gateway: %s" {
		t.Errorf("logged %q", logged)
	}
}

// TestStartGivesTheDoubt: a backup gateway that starts before it has
// heard from the primary makes no choice until DownAfter has passed (the
// members send through the primary meanwhile), rather than choosing
// itself, which it always hears, first.
func TestStartGivesTheDoubt(t *testing.T) {
	c := newClock()
	s := New(func() {}, nopLogf)
	s.now = c.now
	n := haNet()
	n.Own, n.Serve = []netip.Prefix{prefix("10.99.0.12/24")}, []netip.Prefix{prefix("172.16.0.0/16")}
	s.Set([]Network{n})
	for i := range 3 {
		s.decide()
		if got := s.Status()[0].Choice.Active; got.IsValid() {
			t.Fatalf("after %v without a word from the primary: active %s, want no choice yet", time.Duration(i)*Interval, got)
		}
		c.add(Interval)
	}
	s.decide()
	if got := s.Status()[0].Choice.Active; got != addr("10.99.0.12") {
		t.Errorf("after DownAfter without a word from the primary: active %s, want this node", got)
	}
}

// TestPointsRouteTablesWhenActive: a gateway that becomes a route's
// active gateway points its route tables at itself, for the overlay, the
// subnets reached over it and (a NAT instance) the default route; a
// failure is tried again after repointEvery, a success is not.
func TestPointsRouteTablesWhenActive(t *testing.T) {
	c := newClock()
	s := New(func() {}, nopLogf)
	s.now = c.now
	type call struct {
		tables []string
		dests  []netip.Prefix
	}
	calls := make(chan call, 10)
	fail := true
	s.PointWith(func(_ context.Context, tables []string, dests []netip.Prefix) (string, error) {
		calls <- call{tables, dests}
		if fail {
			return "", errors.New("AccessDenied")
		}
		return "rtb-12345678 replaced", nil
	})
	n := haNet()
	n.Own, n.Serve, n.CIDR = []netip.Prefix{prefix("10.99.0.12/24")}, []netip.Prefix{prefix("172.16.0.0/16")}, prefix("10.99.0.0/24")
	n.RouteTables, n.NATInstance = []string{"rtb-12345678"}, true
	n.Routes = append(n.Routes, control.Route{Dest: prefix("10.10.0.0/16"), Via: addr("10.99.0.170")}) // a DigitalOcean subnet
	s.Set([]Network{n})
	r := n.Routes[0]
	s.record("n1", addr("10.99.0.11"), s.nextQuestion(), states(RouteState{Dest: r.Dest, State: OK}))
	s.decide()
	select {
	case got := <-calls:
		t.Fatalf("pointed while the primary is active: %+v", got)
	default:
	}
	c.add(DownAfter)
	s.decide() // the primary is silent: this node is active
	got := <-calls
	want := []netip.Prefix{prefix("10.99.0.0/24"), prefix("10.20.0.0/16"), prefix("10.10.0.0/16"), prefix("0.0.0.0/0")}
	if len(got.tables) != 1 || got.tables[0] != "rtb-12345678" || !slices.Equal(got.dests, want) {
		t.Fatalf("pointed %+v, want rtb-12345678 for %v", got, want)
	}
	waitFor(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return !s.pointed[routeKey{"n1", r.Dest}].busy })
	if st := s.Status(); st[0].RouteTables != "AccessDenied" {
		t.Errorf("status after a failure: %q", st[0].RouteTables)
	}
	c.add(repointEvery / 2)
	s.decide()
	c.add(repointEvery / 2)
	fail = false
	s.decide()
	<-calls // tried again after repointEvery
	waitFor(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return !s.pointed[routeKey{"n1", r.Dest}].busy })
	c.add(time.Minute)
	s.decide()
	select {
	case got := <-calls:
		t.Errorf("pointed again after a success: %+v", got)
	default:
	}
	if st := s.Status(); st[0].RouteTables != "rtb-12345678 replaced" {
		t.Errorf("status after a success: %q", st[0].RouteTables)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for range 500 {
		if ok() {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("timed out")
}

// TestStartWhereTheGatewaysSay: a node that starts (a member, or the
// primary itself coming back) while the route is on the backup takes it
// there, as the backup says, and moves back only after the hold, with
// everyone else, not at once.
func TestStartWhereTheGatewaysSay(t *testing.T) {
	gw1, gw2 := addr("10.99.0.11"), addr("10.99.0.12")
	for _, own := range []string{"10.99.0.170/24", "10.99.0.11/24"} {
		c := newClock()
		s := New(func() {}, nopLogf)
		s.now = c.now
		n := haNet()
		n.Own, n.Serve = []netip.Prefix{prefix(own)}, []netip.Prefix{prefix("172.16.0.0/16")}
		s.Set([]Network{n})
		r := n.Routes[0]
		answers := func() {
			if own != "10.99.0.11/24" {
				s.record("n1", gw1, s.nextQuestion(), states(RouteState{Dest: r.Dest, State: OK, Active: gw2}))
			}
			s.record("n1", gw2, s.nextQuestion(), states(RouteState{Dest: r.Dest, State: OK, Active: gw2}))
		}
		answers()
		s.decide()
		if got := s.Status()[0].Choice.Active; got != gw2 {
			t.Fatalf("%s starts while the backup is active: takes %s, want the backup", own, got)
		}
		for range 19 {
			c.add(Interval)
			answers()
			s.decide()
		}
		if got := s.Status()[0].Choice.Active; got != gw2 {
			t.Fatalf("%s, 9.5 s later: %s, want still the backup (the hold is 10 s)", own, got)
		}
		c.add(Interval)
		answers()
		s.decide()
		if got := s.Status()[0].Choice.Active; got != gw1 {
			t.Errorf("%s, 10 s later: %s, want the primary again", own, got)
		}
	}
}
