package dhcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"golang.org/x/sys/unix"
)

// State is where a client is in the lease life cycle (RFC 2131 figure 5,
// with INIT-REBOOT folded into INIT: after a link bounce the client
// discovers again, asking for its old address).
type State string

// The states a client reports.
const (
	StateInit      State = "init"      // no lease yet, or lost: discovering
	StateBound     State = "bound"     // lease held, waiting for T1
	StateRenewing  State = "renewing"  // past T1: asking the server that gave the lease
	StateRebinding State = "rebinding" // past T2: asking any server
	StateLinkDown  State = "link-down" // no carrier: waiting; a held lease stays until it expires
)

// Update is what the client reports to its owner: the lease it holds now.
type Update struct {
	Iface string
	State State
	// Lease is the lease held after the event; nil means none, and the
	// address it gave must go.
	Lease *Lease
	// Event says what happened: "bound", "renewed", "rebound",
	// "expired", "nak", "link-down", "link-up".
	Event string
}

// Status is a client's current state, for the local API.
type Status struct {
	State     State
	Lease     *Lease
	LastError string
}

// Config configures one NIC's client.
type Config struct {
	Iface    string
	Hostname string // sent as option 12 when set
	// OnUpdate gets every change of lease, on the client's goroutine; it
	// must not block for long (the daemon hands it to the reconciler).
	OnUpdate func(Update)
	Logf     func(format string, args ...any)
	// Timeout is how long one exchange waits for an answer before it
	// resends once (0: 2 s).
	Timeout time.Duration
}

// Client runs the DHCP life cycle on one NIC.
type Client struct {
	cfg  Config
	link chan bool // latest link state, capacity 1

	mu     sync.Mutex
	status Status
}

// New returns a client for cfg.Iface; Run starts it.
func New(cfg Config) *Client {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.OnUpdate == nil {
		cfg.OnUpdate = func(Update) {}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	return &Client{cfg: cfg, link: make(chan bool, 1), status: Status{State: StateInit}}
}

// SetLink tells the client the NIC's carrier went down or up. Down stops
// all traffic (the lease is kept until it expires); up after down starts
// over with a DISCOVER that asks for the old address, as a moved cable
// may mean another network.
func (c *Client) SetLink(up bool) {
	for {
		select {
		case c.link <- up:
			return
		default:
		}
		select {
		case <-c.link: // drop the stale state; the newest wins
		default:
		}
	}
}

// Status returns the client's state and lease.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// Run talks DHCP on the NIC until ctx is done. It returns an error only
// when it cannot open the NIC's packet socket at all. It does not release
// the lease when it stops: the next boot asks for the same address.
func (c *Client) Run(ctx context.Context) error {
	r := &run{Client: c, up: true}
	if err := r.open(); err != nil {
		return err
	}
	defer func() { r.nc.Close() }()
	r.loop(ctx)
	return nil
}

// open (re)opens the packet socket. The kernel reports ENETDOWN on a
// packet socket when its NIC goes down, and nclient4's receive loop stops
// at the first read error, so a client that saw a link bounce or failed
// an exchange gets a fresh socket before it tries again.
func (r *run) open() error {
	if r.nc != nil {
		r.nc.Close()
	}
	nc, err := nclient4.New(r.cfg.Iface, nclient4.WithTimeout(r.cfg.Timeout), nclient4.WithRetry(2))
	if err != nil {
		return fmt.Errorf("dhcp on %s: %w", r.cfg.Iface, err)
	}
	r.nc = nc
	return nil
}

// run is the state of one Run.
type run struct {
	*Client
	nc   *nclient4.Client
	up   bool
	held *Lease
	prev netip.Addr // the last address held, asked for again
}

func (r *run) loop(ctx context.Context) {
	backoff := time.Second
	stale := false
	for ctx.Err() == nil {
		if r.held != nil && !time.Now().Before(r.held.Expiry()) {
			r.lose(StateInit, "expired")
		}
		if !r.up {
			r.setState(StateLinkDown)
			r.wait(ctx, r.untilExpiry(time.Hour))
			continue
		}
		r.setState(StateInit)
		if stale {
			if err := r.open(); err != nil {
				r.setErr(err)
				r.wait(ctx, r.untilExpiry(backoff))
				continue
			}
		}
		stale = true
		l, bounced, err := r.acquireWatching(ctx)
		if bounced {
			continue // the link moved: start over at once, on a fresh socket
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.setErr(err)
			d := r.untilExpiry(backoff)
			backoff = min(backoff*2, 30*time.Second)
			r.wait(ctx, d)
			continue
		}
		backoff, stale = time.Second, false
		r.take(l, StateBound, "bound")
		r.hold(ctx)
		stale = true
	}
}

// untilExpiry bounds d by the time left on the held lease.
func (r *run) untilExpiry(d time.Duration) time.Duration {
	if r.held != nil {
		d = min(d, max(time.Until(r.held.Expiry()), 0))
	}
	return d
}

// acquireWatching is acquire, cut short when the link changes: a NIC that
// was down when the exchange began gets its DISCOVER as soon as its
// carrier comes up, not after the exchange's timeouts. It reports whether
// the link changed.
func (r *run) acquireWatching(ctx context.Context) (*Lease, bool, error) {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan bool, 1)
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case up := <-r.link:
			got <- up
			cancel()
		case <-stop:
		}
	}()
	l, err := r.acquire(actx)
	close(stop)
	<-watched
	select {
	case up := <-got:
		if up != r.up {
			r.up = up
			r.cfg.Logf("dhcp %s: link %s", r.cfg.Iface, map[bool]string{true: "up, discovering again", false: "down"}[up])
			if !up {
				r.setState(StateLinkDown) // before the update: a reader of it sees the state too
				r.report(StateLinkDown, "link-down")
			}
			return nil, true, nil
		}
		if err != nil && ctx.Err() == nil {
			return nil, true, nil // cut short by a repeated state: just go again
		}
	default:
	}
	return l, false, err
}

// acquire does DISCOVER, OFFER, REQUEST, ACK once.
func (r *run) acquire(ctx context.Context) (*Lease, error) {
	var mods []dhcpv4.Modifier
	if r.cfg.Hostname != "" {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptHostName(r.cfg.Hostname)))
	}
	mods = append(mods, dhcpv4.WithRequestedOptions(dhcpv4.OptionInterfaceMTU, dhcpv4.OptionRenewTimeValue, dhcpv4.OptionRebindingTimeValue))
	disc := mods
	if r.prev.IsValid() {
		disc = append(disc, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IP(r.prev.AsSlice()))))
	}
	offer, err := r.nc.DiscoverOffer(ctx, disc...)
	if err != nil {
		return nil, fmt.Errorf("no offer: %w", err)
	}
	nl, err := r.nc.RequestFromOffer(ctx, offer, mods...)
	if err != nil {
		return nil, fmt.Errorf("requesting %v from %v: %w", offer.YourIPAddr, offer.ServerIdentifier(), err)
	}
	l, err := leaseFromACK(nl.ACK, time.Now())
	if err != nil {
		return nil, err
	}
	l.ack = nl.ACK
	return l, nil
}

// hold keeps the lease: renews it from T1, rebinds it from T2, drops it at
// expiry or on a NAK. It returns when the lease is gone or the link went
// down (then r.held stays, with state link-down).
func (r *run) hold(ctx context.Context) {
	for ctx.Err() == nil {
		l, now := r.held, time.Now()
		var (
			state  State
			server netip.Addr
			next   time.Time // when this phase ends
		)
		switch {
		case now.Before(l.Renew()):
			r.setState(StateBound)
			if !r.wait(ctx, l.Renew().Sub(now)) {
				return
			}
			continue
		case now.Before(l.Rebind()):
			state, server, next = StateRenewing, l.Server, l.Rebind()
		case now.Before(l.Expiry()):
			state, next = StateRebinding, l.Expiry()
		default:
			r.lose(StateInit, "expired")
			return
		}
		r.setState(state)
		// An exchange never runs past its phase: at T2 renewing turns
		// into rebinding, at expiry the address goes.
		xctx, cancel := context.WithDeadline(ctx, next)
		nl, err := r.extend(xctx, server)
		cancel()
		var nak *nclient4.ErrNak
		switch {
		case err == nil:
			ev := "renewed"
			if state == StateRebinding {
				ev = "rebound"
			}
			if nl.Addr != l.Addr {
				// A server may not change the address on a renewal
				// (RFC 2131 4.3.2); treat it as a new lease.
				r.lose(StateInit, "address changed")
				ev = "bound"
			}
			r.take(nl, StateBound, ev)
			continue
		case errors.As(err, &nak):
			r.lose(StateInit, "nak")
			return
		case ctx.Err() != nil:
			return
		}
		r.setErr(fmt.Errorf("%s: %w", state, err))
		// RFC 2131 4.4.5: wait half the time left in the phase, at
		// least a little (the RFC says 60 s; leases here may be short).
		left := time.Until(next)
		if !r.wait(ctx, min(max(left/2, time.Second), left, time.Minute)) {
			return
		}
	}
}

// extend sends a REQUEST for the held lease: unicast to server when it is
// valid (renewing), broadcast otherwise (rebinding).
func (r *run) extend(ctx context.Context, server netip.Addr) (*Lease, error) {
	req, err := dhcpv4.NewRenewFromAck(r.held.ack,
		dhcpv4.WithRequestedOptions(dhcpv4.OptionInterfaceMTU, dhcpv4.OptionRenewTimeValue, dhcpv4.OptionRebindingTimeValue))
	if err != nil {
		return nil, err
	}
	if r.cfg.Hostname != "" {
		req.UpdateOption(dhcpv4.OptHostName(r.cfg.Hostname))
	}
	nc, dst := r.nc, nclient4.DefaultServers
	match := nclient4.IsMessageType(dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak)
	if server.IsValid() {
		// Renewing is unicast from the leased address (RFC 2131
		// 4.4.5), on an ordinary UDP socket: the raw socket's packets
		// come from 0.0.0.0, which a server's kernel drops as a
		// martian source unless they are broadcast.
		dst = &net.UDPAddr{IP: net.IP(server.AsSlice()), Port: nclient4.ServerPort}
		match = nclient4.IsAll(nclient4.IsCorrectServer(net.IP(server.AsSlice())), match)
		uc, err := r.unicastClient(ctx)
		if err != nil {
			return nil, err
		}
		defer uc.Close()
		nc = uc
	}
	resp, err := nc.SendAndRead(ctx, dst, req, match)
	if err != nil {
		return nil, err
	}
	if resp.MessageType() == dhcpv4.MessageTypeNak {
		return nil, &nclient4.ErrNak{Offer: r.held.ack, Nak: resp}
	}
	l, err := leaseFromACK(resp, time.Now())
	if err != nil {
		return nil, err
	}
	l.ack = resp
	return l, nil
}

// unicastClient is a client on a UDP socket bound to the held address on
// the NIC. It fails when the address is not (yet) on the NIC.
func (r *run) unicastClient(ctx context.Context) (*nclient4.Client, error) {
	iface := r.cfg.Iface
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, iface)
			if serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			}
		})
		return errors.Join(err, serr)
	}}
	pc, err := lc.ListenPacket(ctx, "udp4", netip.AddrPortFrom(r.held.Addr.Addr(), nclient4.ClientPort).String())
	if err != nil {
		return nil, fmt.Errorf("socket on the leased address (is it on %s?): %w", iface, err)
	}
	c, err := nclient4.NewWithConn(pc, r.nc.InterfaceAddr(), nclient4.WithTimeout(r.cfg.Timeout), nclient4.WithRetry(2))
	if err != nil {
		pc.Close()
		return nil, err
	}
	return c, nil
}

// wait sleeps for d, or until ctx is done or the link changes. It returns
// false when the caller must stop holding its lease: ctx done, or the link
// went down or bounced.
func (r *run) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case up := <-r.link:
			switch {
			case up == r.up:
				continue
			case !up:
				r.up = false
				r.cfg.Logf("dhcp %s: link down", r.cfg.Iface)
				r.setState(StateLinkDown) // before the update: a reader of it sees the state too
				r.report(StateLinkDown, "link-down")
				return false
			default:
				r.up = true
				r.cfg.Logf("dhcp %s: link up, discovering again", r.cfg.Iface)
				r.setState(StateInit)
				return false
			}
		}
	}
}

// take holds l and reports it.
func (r *run) take(l *Lease, st State, event string) {
	// What the server offered and the lease left out is said once per
	// change, not at every renewal.
	if r.held == nil || !slices.Equal(r.held.Notes, l.Notes) {
		for _, n := range l.Notes {
			r.cfg.Logf("dhcp %s: %s", r.cfg.Iface, n)
		}
	}
	r.held, r.prev = l, l.Addr.Addr()
	r.cfg.Logf("dhcp %s: %s %s", r.cfg.Iface, event, l)
	r.mu.Lock()
	r.status = Status{State: st, Lease: l}
	r.mu.Unlock()
	r.report(st, event)
}

// lose drops the held lease and reports it.
func (r *run) lose(st State, event string) {
	if r.held == nil {
		return
	}
	r.cfg.Logf("dhcp %s: %s: dropping %s", r.cfg.Iface, event, r.held.Addr)
	r.held = nil
	r.mu.Lock()
	r.status.State, r.status.Lease = st, nil
	r.mu.Unlock()
	r.report(st, event)
}

func (r *run) report(st State, event string) {
	r.cfg.OnUpdate(Update{Iface: r.cfg.Iface, State: st, Lease: r.held, Event: event})
}

func (r *run) setState(st State) {
	r.mu.Lock()
	r.status.State = st
	r.mu.Unlock()
}

// setErr keeps err for Status. Its text may hold a server's (a NAK's
// message, option 56), so it is escaped: the console and `gate
// interfaces` show it.
func (r *run) setErr(err error) {
	r.mu.Lock()
	r.status.LastError = escape(err.Error())
	r.mu.Unlock()
}
