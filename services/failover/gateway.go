package failover

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/gatenet/gate/services/control"
)

// gwHealth is how a route works from this node as its gateway.
type gwHealth struct {
	lanDown bool
	fails   map[control.Probe]int // failures in a row
}

// stateHere is how route r of n works from this node. Call with mu held.
func (s *Service) stateHere(n Network, r control.Route) State {
	if !slices.ContainsFunc(n.Serve, func(p netip.Prefix) bool { return p.Bits() <= r.Dest.Bits() && p.Contains(r.Dest.Addr()) }) {
		return NotServing
	}
	h := s.health[routeKey{n.ID, r.Dest}]
	switch {
	case h == nil:
		return OK // not checked yet: the tunnel answers, so the node is there
	case h.lanDown:
		return LANDown
	}
	for _, f := range h.fails {
		if f >= probeFails {
			return ProbeFails
		}
	}
	return OK
}

// servedRoute is a route with backups this node is a gateway of, and its
// network.
type servedRoute struct {
	n Network
	r control.Route
}

// served is each route with backups this node is a gateway of. Call with
// mu held.
func (s *Service) served() []servedRoute {
	var out []servedRoute
	for _, n := range s.nets {
		for _, r := range n.Routes {
			if hasBackups(r) && r.ServedBy(n.Own) {
				out = append(out, servedRoute{n, r})
			}
		}
	}
	return out
}

// serve opens an answering socket on the overlay of every network this
// node is a gateway of a route with backups in, and closes those no
// longer needed, or bound to an interface that has since been removed
// (a socket is bound to the interface's index: a network left and joined
// again has a new one). An interface the reconciler has not made yet is
// tried again at the next round.
func (s *Service) serve() {
	s.mu.Lock()
	want := map[string]bool{}
	for _, sv := range s.served() {
		want[sv.n.Iface] = true
	}
	for iface, r := range s.answers {
		if ifi, err := net.InterfaceByName(iface); !want[iface] || err != nil || ifi.Index != r.index {
			r.close()
			delete(s.answers, iface)
		}
	}
	var open []string
	for iface := range want {
		if s.answers[iface] == nil {
			open = append(open, iface)
		}
	}
	s.mu.Unlock()
	for _, iface := range open {
		r, err := listenOn(iface)
		s.mu.Lock()
		if err != nil {
			// Said once, not at every round.
			if msg := err.Error(); !isNoDevice(err) && s.bindErr[iface] != msg {
				s.logf("failover: answering health questions on %s: %v", iface, err)
				s.bindErr[iface] = msg
			}
			s.mu.Unlock()
			continue
		}
		delete(s.bindErr, iface)
		s.answers[iface] = r
		s.mu.Unlock()
		go s.answer(r)
	}
}

// errNoInterface: the overlay interface is not there (yet).
var errNoInterface = errors.New("no such interface")

// responder answers health questions that arrive on one overlay.
type responder struct {
	iface string
	index int // of the interface when the socket was bound
	conn  net.PacketConn
	once  sync.Once
	// asked counts the questions from each source in the second window
	// (Unix seconds); only the answering goroutine touches them.
	window int64
	asked  map[netip.Addr]int
}

// maxAsks is how many questions a second one source gets answered: a
// member asks each gateway twice a second. An answer is up to 50 times
// the size of a question, so without a limit one member could make a
// gateway send a flood through the tunnel.
const maxAsks = 8

// admit says whether a question from src, at now, is answered: src must
// be a member's overlay address (in the network's CIDR: WireGuard lets
// in, on the overlay, the subnets behind other gateways too, and those
// hosts have nothing to ask), and within maxAsks this second.
func (r *responder) admit(src netip.Addr, cidr netip.Prefix, now time.Time) bool {
	if !cidr.IsValid() || !cidr.Contains(src) {
		return false
	}
	if sec := now.Unix(); sec != r.window || r.asked == nil {
		r.window, r.asked = sec, map[netip.Addr]int{}
	}
	r.asked[src]++
	return r.asked[src] <= maxAsks
}

func (r *responder) close() { r.once.Do(func() { r.conn.Close() }) }

// listenOn opens the answering socket on interface iface only.
func listenOn(iface string) (*responder, error) {
	conn, index, err := listenDevice(iface, Port)
	if err != nil {
		return nil, err
	}
	return &responder{iface: iface, index: index, conn: conn}, nil
}

// listenDevice opens a UDP socket on port (0: any) of interface iface
// only, and gives the interface's index.
func listenDevice(iface string, port int) (net.PacketConn, int, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", iface, errNoInterface)
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); serr == nil {
				serr = syscall.BindToDevice(int(fd), iface)
			}
		})
		return errors.Join(err, serr)
	}}
	conn, err := lc.ListenPacket(context.Background(), "udp4", ":"+strconv.Itoa(port))
	if err != nil {
		return nil, 0, err
	}
	return conn, ifi.Index, nil
}

// answer answers the questions that reach r until it is closed.
func (s *Service) answer(r *responder) {
	buf := make([]byte, 64)
	for {
		n, from, err := r.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		nonce, err := parseAsk(buf[:n])
		ua, ok := from.(*net.UDPAddr)
		if err != nil || !ok {
			continue // not a question: dropped, unlogged
		}
		states, cidr := s.statesOn(r.iface)
		if !r.admit(ua.AddrPort().Addr().Unmap(), cidr, s.now()) {
			continue
		}
		_, _ = r.conn.WriteTo(appendAnswer(nil, nonce, states), from)
	}
}

// statesOn is the state of each route with backups this node serves in
// the network on iface, and that network's CIDR.
func (s *Service) statesOn(iface string) ([]RouteState, netip.Prefix) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []RouteState
	var cidr netip.Prefix
	for _, sv := range s.served() {
		if sv.n.Iface == iface {
			cidr = sv.n.CIDR
			out = append(out, RouteState{Dest: sv.r.Dest, State: s.stateHere(sv.n, sv.r), Active: s.choice[routeKey{sv.n.ID, sv.r.Dest}].Active})
		}
	}
	return out, cidr
}

// probeLoop checks, every probeEvery, the LAN link and the probes of
// every route with backups this node serves. The links are published at
// once; the probes when they have all answered or timed out.
func (s *Service) probeLoop(ctx context.Context) {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		s.mu.Lock()
		sv := s.served()
		s.mu.Unlock()
		lanDown := make([]bool, len(sv))
		for i, x := range sv {
			lanDown[i] = !lanUp(x.n, x.r)
		}
		s.mu.Lock()
		keep := map[routeKey]bool{}
		for i, x := range sv {
			k := routeKey{x.n.ID, x.r.Dest}
			keep[k] = true
			h := s.health[k]
			if h == nil {
				h = &gwHealth{fails: map[control.Probe]int{}}
				s.health[k] = h
			}
			if lanDown[i] != h.lanDown {
				s.logf("failover: route %s of network %s: LAN link %s", k.dest, k.net, map[bool]string{true: "down", false: "up"}[lanDown[i]])
			}
			h.lanDown = lanDown[i]
		}
		for k := range s.health {
			if !keep[k] {
				delete(s.health, k)
			}
		}
		s.mu.Unlock()

		failed := make([]map[control.Probe]bool, len(sv))
		var wg sync.WaitGroup
		for i, x := range sv {
			failed[i] = map[control.Probe]bool{}
			var mu sync.Mutex
			for _, p := range x.r.Probes {
				wg.Go(func() {
					ok := probe(ctx, p)
					mu.Lock()
					failed[i][p] = !ok
					mu.Unlock()
				})
			}
		}
		wg.Wait()
		s.mu.Lock()
		for i, x := range sv {
			k := routeKey{x.n.ID, x.r.Dest}
			h := s.health[k]
			if h == nil {
				continue // the route went meanwhile
			}
			// Only the route's probes as they are now count: a probe the
			// admin took away fails nothing any more.
			counts := make(map[control.Probe]int, len(failed[i]))
			for p, bad := range failed[i] {
				was := h.fails[p]
				switch {
				case bad:
					if counts[p] = was + 1; counts[p] == probeFails {
						s.logf("failover: route %s of network %s: probe %s fails", k.dest, k.net, p)
					}
				case was >= probeFails:
					s.logf("failover: route %s of network %s: probe %s answers again", k.dest, k.net, p)
				}
			}
			h.fails = counts
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// lanUp reports whether the link this node serves route r of n through
// is up: n's LAN, or the one the kernel routes r's first probe (or its
// subnet) through, which must not be the overlay (then this node has no
// way there of its own).
func lanUp(n Network, r control.Route) bool {
	var l netlink.Link
	var err error
	if n.LAN != "" {
		l, err = netlink.LinkByName(n.LAN)
	} else {
		to := r.Dest.Addr()
		if len(r.Probes) > 0 {
			to = r.Probes[0].Addr
		}
		var rs []netlink.Route
		if rs, err = netlink.RouteGet(to.AsSlice()); err == nil && len(rs) > 0 {
			l, err = netlink.LinkByIndex(rs[0].LinkIndex)
		} else if err == nil {
			err = errors.New("no route")
		}
	}
	if err != nil {
		return false
	}
	a := l.Attrs()
	if a.Name == n.Iface || a.Flags&net.FlagUp == 0 {
		return false
	}
	return a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown
}

// probe reports whether p answers: a TCP connect that is accepted or
// refused (either way the path works), or an ICMP echo reply.
func probe(ctx context.Context, p control.Probe) bool {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if p.Proto == "tcp" {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp4", netip.AddrPortFrom(p.Addr, p.Port).String())
		if err == nil {
			c.Close()
			return true
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	return echo(ctx, p.Addr)
}

// echo sends one ICMP echo request to a and waits for its reply.
func echo(ctx context.Context, a netip.Addr) bool {
	c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return false
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	id, seq := os.Getpid()&0xffff, int(time.Now().UnixNano()&0xffff)
	m := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("gate failover probe")}}
	b, err := m.Marshal(nil)
	if err != nil {
		return false
	}
	if _, err := c.WriteTo(b, &net.IPAddr{IP: a.AsSlice()}); err != nil {
		return false
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return false
		}
		if ip, ok := from.(*net.IPAddr); !ok || !ip.IP.Equal(a.AsSlice()) {
			continue
		}
		r, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || r.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		if e, ok := r.Body.(*icmp.Echo); ok && e.ID == id && e.Seq == seq {
			return true
		}
	}
}
