package controller

import (
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Caps on connections, counted from accept (so connections still in their
// TLS handshake count) to close. Anyone can make a client certificate
// that passes as a member's, so these, not authentication, bound what the
// internet can make the controller hold.
//
// DefaultMaxConns leaves room for 10,000 members (the scale make bench
// measures, one long-poll connection each per network) and their joins
// and reconnections; a connection waiting in a long-poll costs about 38 KB
// (heap and stacks, see README's Performance), one stalled inside a body
// at most about 16 KiB more for the body and 17 KiB for a TLS record.
//
// DefaultMaxConnsPerSource is per IPv4 address and per IPv6 /64 (what one
// host is usually given). Members behind a NAT (a cloud NAT gateway, a
// cluster's egress address, an office) share one address, each with a
// connection per network, so the cap must not be small: 1,024 lets about
// a thousand nodes share an address, while one address alone can hold at
// most 1,024 x ~70 KB, about 70 MiB. A controller whose members mostly
// come from one address (or a benchmark on loopback) raises it.
const (
	DefaultMaxConns          = 16384
	DefaultMaxConnsPerSource = 1024
)

// connLimiter counts open connections, in all and per source.
type connLimiter struct {
	max, perSource int // no cap when <= 0

	mu       sync.Mutex
	total    int
	bySource map[netip.Addr]int

	refused atomic.Int64 // connections closed at accept, over a cap
}

// newConnLimiter makes a limiter from Config's values: 0 is the default,
// a negative value no cap.
func newConnLimiter(max, perSource int) *connLimiter {
	if max == 0 {
		max = DefaultMaxConns
	}
	if perSource == 0 {
		perSource = DefaultMaxConnsPerSource
	}
	return &connLimiter{max: max, perSource: perSource, bySource: map[netip.Addr]int{}}
}

// sourceOf is the address a connection is counted under: its IPv4
// address, or its IPv6 address's /64.
func sourceOf(a net.Addr) netip.Addr {
	var ip netip.Addr
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			ip = ap.Addr()
		}
	}
	return sourceKey(ip)
}

// sourceKey is the source an address counts as, for caps per source: an
// IPv4 address itself, an IPv6 address's /64 (a host usually has a whole
// one to pick from).
func sourceKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		ip = p.Addr()
	}
	return ip
}

// admit counts c in, or says which cap it is over ("" when admitted).
// An admitted connection is handed back wrapped: closing it counts it out.
func (l *connLimiter) admit(c net.Conn) (net.Conn, string) {
	src := sourceOf(c.RemoteAddr())
	l.mu.Lock()
	over := ""
	switch {
	case l.max > 0 && l.total >= l.max:
		over = "the cap of " + strconv.Itoa(l.max) + " connections"
	case l.perSource > 0 && l.bySource[src] >= l.perSource:
		over = "the cap of " + strconv.Itoa(l.perSource) + " connections per source address"
	default:
		l.total++
		l.bySource[src]++
	}
	l.mu.Unlock()
	if over != "" {
		l.refused.Add(1)
		return nil, over
	}
	return &countedConn{Conn: c, l: l, src: src}, ""
}

func (l *connLimiter) release(src netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.bySource[src]--; l.bySource[src] <= 0 {
		delete(l.bySource, src)
	}
}

// open is the number of connections counted in.
func (l *connLimiter) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// countedConn is a connection the limiter counted; Close counts it out,
// once.
type countedConn struct {
	net.Conn
	l    *connLimiter
	src  netip.Addr
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.src) })
	return err
}

// rateLog logs a kind of event that the remote side can cause at will
// (failed handshakes, refused connections): the first of a quiet spell
// at once, then at most one line per interval counting the others, with
// the last one's detail. Details are rendered safe (safeText).
type rateLog struct {
	logf  func(format string, args ...any)
	every time.Duration
	// one is the format of a single event, many of a summary: they take
	// the detail, and the count, the interval and the detail.
	one, many string

	mu     sync.Mutex
	n      int       // events not logged yet
	since  time.Time // when the last line was logged
	last   string    // the last event's detail
	timer  *time.Timer
	closed bool
}

func newRateLog(logf func(format string, args ...any), every time.Duration, one, many string) *rateLog {
	return &rateLog{logf: logf, every: every, one: one, many: many}
}

// add records an event; detail says where it came from and what it was.
func (r *rateLog) add(detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if r.timer == nil {
		r.logf(r.one, detail)
		r.since = time.Now()
		r.timer = time.AfterFunc(r.every, r.tick)
		return
	}
	r.n++
	r.last = detail
}

func (r *rateLog) tick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if r.n == 0 {
		r.timer = nil // quiet: the next event is logged at once
		return
	}
	r.flushLocked()
	r.timer = time.AfterFunc(r.every, r.tick)
}

func (r *rateLog) flushLocked() {
	if r.n == 0 {
		return
	}
	d := time.Since(r.since)
	if d >= time.Second {
		d = d.Round(time.Second)
	} else {
		d = d.Round(time.Millisecond)
	}
	r.logf(r.many, r.n, d, r.last)
	r.n, r.since = 0, time.Now()
}

// close logs what is left and stops logging.
func (r *rateLog) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	if r.timer != nil {
		r.timer.Stop()
	}
	r.flushLocked()
}

// safeText renders text that came from the network (an error carrying what
// a client sent) for a log line: at most 200 bytes, control characters and
// anything not printable ASCII escaped.
func safeText(s string) string {
	const maxLen = 200
	cut := len(s) > maxLen
	if cut {
		s = s[:maxLen]
	}
	q := strconv.QuoteToASCII(s)
	q = q[1 : len(q)-1]
	if cut {
		q += "..."
	}
	return q
}
