package failover

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gatenet/gate/services/control"
)

// Timing. A member asks every gateway of a route every Interval and counts
// one down that has not answered for DownAfter (three questions): with the
// reconciler's pass after it, a route moves well within 3 s of its gateway
// failing.
const (
	Interval  = 500 * time.Millisecond
	DownAfter = 1500 * time.Millisecond
	// probeEvery is how often a gateway checks a route's probes; probeFails
	// failures in a row (800 ms timeout each) make the route fail there.
	probeEvery   = time.Second
	probeTimeout = 800 * time.Millisecond
	probeFails   = 2
)

// Network is what the service needs of one network this node is a member
// of (in service).
type Network struct {
	ID     string
	Iface  string          // the overlay interface
	Own    []netip.Prefix  // this node's overlay addresses on it
	Routes []control.Route // all of the network's routes
	// Serve is what this node serves as a gateway (nil: not a gateway);
	// a route it is a gateway of but does not serve is reported so.
	Serve []netip.Prefix
	// LAN is the interface facing the served subnets ("": the one the
	// kernel routes a route's first probe, or its subnet, through).
	LAN string
	// CIDR is the network's overlay CIDR; RouteTables the cloud route
	// tables this node points at itself when it becomes the active
	// gateway of a route (Service.PointWith), for the overlay, the
	// subnets other members serve, and, for a NAT instance (NATInstance),
	// the default route.
	CIDR        netip.Prefix
	RouteTables []string
	NATInstance bool
}

// Pointer points cloud route tables at this node for dests, and says
// what it did in a line for status and the log.
type Pointer func(ctx context.Context, tables []string, dests []netip.Prefix) (string, error)

// pointing is what became of this node's last pointing of route tables
// for one route.
type pointing struct {
	at   time.Time
	text string // what it did, or why it failed
	ok   bool
	busy bool
}

// repointEvery is how often a failed pointing is tried again while this
// node stays the active gateway.
const repointEvery = 10 * time.Second

// Status is one route with several gateways as this node sees it.
type Status struct {
	Network string
	Route   control.Route
	// Choice is the gateway the route goes through: the one this node
	// sends through, or, when this node is a gateway of the route, the
	// one the members that see what it sees send through (itself or
	// another).
	Choice  Choice
	Serving bool              // this node is a gateway of the route
	Self    netip.Addr        // its address among the gateways, when Serving
	State   State             // as a gateway: how the route works from here
	Seen    map[string]Health // each gateway, by address
	// RouteTables says what this node last did to point the cloud's
	// route tables at itself ("" when it has not).
	RouteTables string
}

// routeKey names a route of a network.
type routeKey struct {
	net  string
	dest netip.Prefix
}

// seenKey names what a member saw of one gateway of a route.
type seenKey struct {
	routeKey
	gw netip.Addr
}

// seen is what a member heard from one gateway about one route.
type seen struct {
	first    time.Time // when it started asking
	answered time.Time // last answer that listed the route
	state    State
	claims   bool // its last answer said it is the active gateway
	up       bool // as last evaluated
	since    time.Time
}

// upAt says whether the gateway sn is about counts as up at now: it
// answered within DownAfter that the route works there, or it has not
// been asked for DownAfter yet. A gateway not heard from yet is given the
// benefit of the doubt for that long, so that a member and a gateway
// that start together agree on the most preferred one, instead of the
// gateway, which always hears itself, choosing itself first.
func (sn *seen) upAt(now time.Time) bool {
	if sn.answered.IsZero() {
		return now.Sub(sn.first) < DownAfter
	}
	return now.Sub(sn.answered) < DownAfter && sn.state == OK
}

// Service asks the gateways of the routes that have several (as a
// member) and answers such questions (as a gateway). It tells the node
// which gateway each route goes through (Active), and calls onChange when
// that changes.
type Service struct {
	logf     func(string, ...any)
	onChange func()
	now      func() time.Time

	mu      sync.Mutex
	nets    []Network
	seen    map[seenKey]*seen
	choice  map[routeKey]Choice
	health  map[routeKey]*gwHealth // as a gateway: each route's health here
	answers map[string]*responder  // as a gateway: by interface
	nonce   uint64
	// asked is when each of the last askWindow questions went out (by
	// nonce modulo askWindow): an answer says how things were no earlier
	// than its question left, however late it arrives.
	asked   [askWindow]time.Time
	askers  map[string]*asker // as a member: by network
	point   Pointer
	pointed map[routeKey]*pointing
	bindErr map[string]string // the last error opening an answering socket, by interface
	ctx     context.Context   // Run's
}

// PointWith sets how this node points route tables at itself when it
// becomes a route's active gateway. Call before Run.
func (s *Service) PointWith(p Pointer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.point = p
}

// New makes a service; Run runs it.
func New(onChange func(), logf func(string, ...any)) *Service {
	return &Service{logf: logf, onChange: onChange, now: time.Now, seen: map[seenKey]*seen{}, choice: map[routeKey]Choice{},
		health: map[routeKey]*gwHealth{}, answers: map[string]*responder{}, nonce: rand.Uint64(), pointed: map[routeKey]*pointing{}, bindErr: map[string]string{}, askers: map[string]*asker{}, ctx: context.Background()}
}

// Set tells the service the networks this node is in now. It is cheap
// and does no I/O: Run picks the change up.
func (s *Service) Set(nets []Network) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nets = nets
}

// nextQuestion numbers a new question and notes when it went out. Call
// with mu held.
func (s *Service) nextQuestion() uint64 {
	s.nonce++
	s.asked[s.nonce%askWindow] = s.now()
	return s.nonce
}

// askWindow is how many questions back an answer is taken for: four
// seconds of them, more than DownAfter.
const askWindow = 8

// hasBackups reports whether r has several gateways.
func hasBackups(r control.Route) bool { return len(r.Backups) > 0 }

// Active is the gateway this node sends route r of network id through:
// Via unless the route has backups and the service chose another.
func (s *Service) Active(id string, r control.Route) netip.Addr {
	if !hasBackups(r) {
		return r.Via
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.choice[routeKey{id, r.Dest}]; ok && slices.Contains(r.Gateways(), c.Active) {
		return c.Active
	}
	return r.Via
}

// Status lists the routes with several gateways of every network, as this
// node sees them.
func (s *Service) Status() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []Status
	for _, n := range s.nets {
		for _, r := range n.Routes {
			if !hasBackups(r) {
				continue
			}
			k := routeKey{n.ID, r.Dest}
			st := Status{Network: n.ID, Route: r, Serving: r.ServedBy(n.Own), Choice: s.choice[k], Seen: map[string]Health{}}
			if st.Serving {
				st.State, st.Self = s.stateHere(n, r), self(n, r)
			}
			if p := s.pointed[k]; p != nil {
				st.RouteTables = p.text
			}
			for _, gw := range r.Gateways() {
				if sn := s.seen[seenKey{k, gw}]; sn != nil {
					st.Seen[gw.String()] = s.healthOf(sn, now)
				}
			}
			out = append(out, st)
		}
	}
	return out
}

// Run asks and answers until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		for iface, r := range s.answers {
			r.close()
			delete(s.answers, iface)
		}
		for id, a := range s.askers {
			a.close()
			delete(s.askers, id)
		}
		s.mu.Unlock()
	}()
	go s.probeLoop(ctx)
	t := time.NewTicker(Interval / 2)
	defer t.Stop()
	for tick := 0; ; tick++ {
		if tick%2 == 0 {
			s.ask()
			s.serve()
		}
		if s.decide() {
			s.onChange()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// asker is the socket this node asks one network's gateways on, bound to
// the network's overlay interface: the answers it takes come through that
// overlay and are recorded for that network alone.
type asker struct {
	id    string // network
	iface string
	index int // of the interface when the socket was bound
	conn  net.PacketConn
	once  sync.Once
}

func (a *asker) close() { a.once.Do(func() { a.conn.Close() }) }

// ask sends one question to every gateway of every route with backups
// but this node, each network's on its own overlay: a gateway asks the
// others too, so that it knows which of them the members send through
// (and whether that is itself).
func (s *Service) ask() {
	s.mu.Lock()
	q := appendAsk(nil, s.nextQuestion())
	type target struct {
		n  Network
		to []netip.Addr
	}
	var targets []target
	for _, n := range s.nets {
		var to []netip.Addr
		for _, r := range n.Routes {
			if !hasBackups(r) {
				continue
			}
			me := self(n, r)
			for _, gw := range r.Gateways() {
				if gw != me && !slices.Contains(to, gw) {
					to = append(to, gw)
				}
			}
		}
		if len(to) > 0 {
			targets = append(targets, target{n, to})
		}
	}
	old := s.askers
	s.askers = map[string]*asker{}
	s.mu.Unlock()
	for _, t := range targets {
		a := old[t.n.ID]
		delete(old, t.n.ID)
		if ifi, err := net.InterfaceByName(t.n.Iface); a != nil && (err != nil || ifi.Index != a.index || a.iface != t.n.Iface) {
			a.close() // the interface was made again (or is gone): its socket listens on nothing
			a = nil
		}
		if a == nil {
			conn, index, err := listenDevice(t.n.Iface, 0)
			if err != nil {
				continue // the reconciler has not made the interface yet
			}
			a = &asker{id: t.n.ID, iface: t.n.Iface, index: index, conn: conn}
			go s.readAnswers(a)
		}
		s.mu.Lock()
		s.askers[t.n.ID] = a
		s.mu.Unlock()
		for _, gw := range t.to {
			// A gateway that is gone makes the kernel refuse some sends
			// (no route, no neighbour): that is what silence is for.
			_, _ = a.conn.WriteTo(q, net.UDPAddrFromAddrPort(netip.AddrPortFrom(gw, Port)))
		}
	}
	for _, a := range old {
		a.close()
	}
}

// readAnswers records the answers that arrive on a.
func (s *Service) readAnswers(a *asker) {
	buf := make([]byte, 2048)
	for {
		n, from, err := a.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		ap := ua.AddrPort()
		nonce, routes, err := parseAnswer(buf[:n])
		if err != nil || ap.Port() != Port {
			continue // not an answer: dropped, unlogged (anyone may send it)
		}
		s.record(a.id, ap.Addr().Unmap(), nonce, routes)
	}
}

// record notes an answer from gateway gw of network id: for each route
// of it that gw is a gateway of, whether the answer says it works there.
func (s *Service) record(id string, gw netip.Addr, nonce uint64, states []RouteState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if nonce+askWindow <= s.nonce || nonce > s.nonce {
		return // an answer to a question long gone, or never asked
	}
	now, asked := s.now(), s.asked[nonce%askWindow]
	for _, n := range s.nets {
		if n.ID != id {
			continue
		}
		for _, r := range n.Routes {
			if !hasBackups(r) || !slices.Contains(r.Gateways(), gw) {
				continue
			}
			state, claims := NotServing, false // a gateway that does not list the route does not serve it
			for _, st := range states {
				if st.Dest == r.Dest {
					state, claims = st.State, st.Active == gw
				}
			}
			k := seenKey{routeKey{n.ID, r.Dest}, gw}
			sn := s.seen[k]
			if sn == nil {
				sn = &seen{first: now}
				s.seen[k] = sn
			}
			if asked.Before(sn.answered) {
				continue // an answer to an older question came late: the newer one stands
			}
			sn.answered, sn.state, sn.claims = asked, state, claims
		}
	}
}

// healthOf is what sn says of its gateway at now.
func (s *Service) healthOf(sn *seen, now time.Time) Health {
	h := Health{Up: sn.up, Since: sn.since}
	switch {
	case h.Up:
	case sn.answered.IsZero():
		h.Reason = "not heard from"
	case now.Sub(sn.answered) >= DownAfter:
		h.Reason = "silent for " + now.Sub(sn.answered).Round(100*time.Millisecond).String()
	default:
		h.Reason = sn.state.String()
	}
	return h
}

// claimed is the gateway of route k that the gateways that work say is
// active (the most preferred of those that say it of themselves; zero
// when none does), and whether any gateway but this node (me) has
// answered yet or DownAfter has passed without one. Call with mu held.
func (s *Service) claimed(k routeKey, r control.Route, me netip.Addr, now time.Time) (Choice, bool) {
	heard := false
	for _, gw := range r.Gateways() {
		sn := s.seen[seenKey{k, gw}]
		if gw == me || sn == nil {
			continue
		}
		heard = heard || !sn.answered.IsZero() || now.Sub(sn.first) >= DownAfter
		if sn.claims && sn.upAt(now) {
			return Choice{Active: gw, Since: now, Reason: "active, as the gateways say"}, true
		}
	}
	return Choice{}, heard
}

// self is this node's address among the gateways of route r of n
// (invalid: it is none of them).
func self(n Network, r control.Route) netip.Addr {
	for _, a := range n.Own {
		if slices.Contains(r.Gateways(), a.Addr()) {
			return a.Addr()
		}
	}
	return netip.Addr{}
}

// decide re-evaluates every gateway and every route's choice, and
// reports whether a choice changed: where this node sends a route's
// traffic, or, on a gateway, which gateway it takes for active.
func (s *Service) decide() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	live := map[seenKey]bool{}
	changed := false
	keep := map[routeKey]bool{}
	for _, n := range s.nets {
		for _, r := range n.Routes {
			if !hasBackups(r) {
				continue
			}
			k := routeKey{n.ID, r.Dest}
			keep[k] = true
			me := self(n, r)
			for _, gw := range r.Gateways() {
				sk := seenKey{k, gw}
				live[sk] = true
				sn := s.seen[sk]
				if sn == nil {
					sn = &seen{first: now}
					s.seen[sk] = sn
				}
				if gw == me {
					// What it would answer: it always hears itself.
					sn.answered, sn.state = now, s.stateHere(n, r)
				}
				up := sn.upAt(now)
				if up != sn.up || sn.since.IsZero() {
					sn.up, sn.since = up, now
				}
			}
			hold, failback := r.Failback.Hold()
			health := func(gw netip.Addr) Health { return s.healthOf(s.seen[seenKey{k, gw}], now) }
			prev, had := s.choice[k]
			if !had {
				// No choice yet (this node just started, or the route is
				// new): take the route where the gateways that work say
				// it is, and fail back from there after the hold as the
				// others do; until one has answered, wait (Via stands).
				var heard bool
				if prev, heard = s.claimed(k, r, me, now); !heard {
					continue
				}
			}
			next := Choose(r.Gateways(), health, prev, hold, failback, now)
			if next.Active != prev.Active {
				switch {
				case me.IsValid() && (next.Active == me || prev.Active == me):
					s.logf("network %s: route %s: this node (%s) is %s the active gateway: %s", n.ID, r.Dest, me,
						map[bool]string{true: "now", false: "no longer"}[next.Active == me], next.Reason)
				case me.IsValid():
				case prev.Active.IsValid():
					s.logf("network %s: route %s now via %s (was %s): %s", n.ID, r.Dest, next.Active, prev.Active, next.Reason)
				}
			}
			// Where this node sends (the kernel until now: Via before a
			// first choice), or what it shows, changed.
			if had && next.Active != prev.Active || !had && (me.IsValid() || next.Active != r.Via) {
				changed = true
			}
			s.choice[k] = next
			if me.IsValid() && next.Active == me {
				s.pointTables(n, k, prev.Active != me, now)
			}
		}
	}
	for k := range s.seen {
		if !live[k] {
			delete(s.seen, k)
		}
	}
	for k := range s.choice {
		if !keep[k] {
			delete(s.choice, k)
		}
	}
	for k := range s.pointed {
		if !keep[k] {
			delete(s.pointed, k)
		}
	}
	return changed
}

// pointTables points n's route tables at this node, the active gateway
// of route k: when it has just become so (fresh), or again when the last
// try failed a while ago. It runs in the background; call with mu held.
func (s *Service) pointTables(n Network, k routeKey, fresh bool, now time.Time) {
	if s.point == nil || len(n.RouteTables) == 0 {
		return
	}
	p := s.pointed[k]
	if p == nil {
		p = &pointing{}
		s.pointed[k] = p
	}
	if p.busy || !fresh && (p.ok || now.Sub(p.at) < repointEvery) {
		return
	}
	dests := []netip.Prefix{n.CIDR}
	for _, r := range n.Routes {
		if !r.ServedBy(n.Own) && !slices.Contains(dests, r.Dest) {
			dests = append(dests, r.Dest) // reached over the overlay, through this node
		}
	}
	if n.NATInstance {
		dests = append(dests, netip.MustParsePrefix("0.0.0.0/0"))
	}
	p.busy, p.at = true, now
	point, ctx, tables := s.point, s.ctx, slices.Clone(n.RouteTables)
	go func() {
		text, err := point(ctx, tables, dests)
		s.mu.Lock()
		defer s.mu.Unlock()
		p.busy, p.ok, p.text = false, err == nil, text
		if err != nil {
			p.text = err.Error()
		}
		s.logf("network %s: route %s: pointing route tables at this node: %s", k.net, k.dest, p.text)
	}()
}

// isNoDevice reports whether err says the interface is not there (yet).
func isNoDevice(err error) bool {
	return errors.Is(err, errNoInterface) || errors.Is(err, syscall.ENODEV) || errors.Is(err, unix.ENXIO)
}
