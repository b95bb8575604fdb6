package failover

import (
	"net/netip"
	"testing"
	"time"
)

func TestChoose(t *testing.T) {
	a, b, c := netip.MustParseAddr("10.99.0.11"), netip.MustParseAddr("10.99.0.12"), netip.MustParseAddr("10.99.0.13")
	gws := []netip.Addr{a, b, c}
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	up := func(since time.Duration) Health { return Health{Up: true, Since: t0.Add(since)} }
	down := Health{Reason: "silent for 1.5s"}
	type seen map[netip.Addr]Health
	tests := []struct {
		name     string
		health   seen
		prev     Choice
		hold     time.Duration
		failback bool
		now      time.Duration
		want     netip.Addr
		reason   string
	}{
		{name: "first choice: the preferred, all up", health: seen{a: up(0), b: up(0), c: up(0)}, now: 1 * time.Second, want: a, reason: "preferred"},
		{name: "first choice: the preferred is down", health: seen{a: down, b: up(0), c: up(0)}, want: b, reason: "the most preferred that works"},
		{name: "first choice: nothing heard yet", health: seen{}, want: a, reason: "preferred; not heard from yet"},
		{name: "active up stays", health: seen{a: up(0), b: up(0)}, prev: Choice{Active: a, Reason: "preferred"}, want: a, reason: "preferred"},
		{name: "active down: next preferred takes over at once", health: seen{a: down, b: up(0), c: up(0)}, prev: Choice{Active: a}, want: b, reason: "10.99.0.11 is down: silent for 1.5s"},
		{name: "active and next down: the third", health: seen{a: down, b: down, c: up(0)}, prev: Choice{Active: a}, want: c, reason: "10.99.0.11 is down: silent for 1.5s"},
		{name: "backup down while primary is back but not for the hold: primary at once", health: seen{a: up(9 * time.Second), b: down}, prev: Choice{Active: b},
			hold: 10 * time.Second, failback: true, now: 10 * time.Second, want: a, reason: "10.99.0.12 is down: silent for 1.5s"},
		{name: "primary back, held", health: seen{a: up(5 * time.Second), b: up(0)}, prev: Choice{Active: b, Reason: "x"}, hold: 10 * time.Second, failback: true,
			now: 14 * time.Second, want: b, reason: "x"},
		{name: "primary back for the hold: fail back", health: seen{a: up(5 * time.Second), b: up(0)}, prev: Choice{Active: b}, hold: 10 * time.Second, failback: true,
			now: 15 * time.Second, want: a, reason: "preferred, back for 10s"},
		{name: "never fail back", health: seen{a: up(0), b: up(0)}, prev: Choice{Active: b, Reason: "x"}, hold: 10 * time.Second, now: time.Hour, want: b, reason: "x"},
		{name: "fail back to the most preferred of those held long enough", health: seen{a: up(8 * time.Second), b: up(0), c: up(0)}, prev: Choice{Active: c},
			hold: 10 * time.Second, failback: true, now: 12 * time.Second, want: b, reason: "preferred, back for 10s"},
		{name: "none up: stay", health: seen{a: down, b: down, c: down}, prev: Choice{Active: b}, want: b, reason: "no gateway of the route works; staying"},
		{name: "previous gateway no longer in the route", health: seen{a: up(0), b: up(0)}, prev: Choice{Active: netip.MustParseAddr("10.99.0.99")}, want: a, reason: "preferred"},
	}
	for _, tt := range tests {
		h := func(g netip.Addr) Health { return tt.health[g] }
		got := Choose(gws, h, tt.prev, tt.hold, tt.failback, t0.Add(tt.now))
		if got.Active != tt.want || got.Reason != tt.reason {
			t.Errorf("%s: chose %s (%q), want %s (%q)", tt.name, got.Active, got.Reason, tt.want, tt.reason)
		}
	}
	if got := Choose(nil, func(netip.Addr) Health { return Health{} }, Choice{}, 0, true, t0); got.Active.IsValid() {
		t.Errorf("no gateways: %+v", got)
	}
}

// TestChooseDoesNotFlap: a preferred gateway that comes and goes more
// often than the hold never takes the traffic back; the active one moves
// only when it fails.
func TestChooseDoesNotFlap(t *testing.T) {
	a, b := netip.MustParseAddr("10.99.0.11"), netip.MustParseAddr("10.99.0.12")
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	hold := 10 * time.Second
	aUp, aSince := false, t0
	choice := Choice{Active: b, Since: t0}
	moves := 0
	for step := range 600 { // a minute, every 100 ms
		now := t0.Add(time.Duration(step) * 100 * time.Millisecond)
		if step%40 == 0 { // a changes every 4 s
			aUp, aSince = !aUp, now
		}
		h := func(g netip.Addr) Health {
			if g == a {
				return Health{Up: aUp, Since: aSince}
			}
			return Health{Up: true, Since: t0}
		}
		next := Choose([]netip.Addr{a, b}, h, choice, hold, true, now)
		if next.Active != choice.Active {
			moves++
		}
		choice = next
	}
	if moves != 0 || choice.Active != b {
		t.Errorf("a flapping primary moved the route %d times (now on %s)", moves, choice.Active)
	}
}
