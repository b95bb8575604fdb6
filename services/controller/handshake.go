package controller

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// handshakeListener accepts TLS connections whose handshake is already
// done, each on a goroutine of its own that ends with it. net/http would
// otherwise do the handshake on the connection's goroutine, whose stack
// grows for the key exchange (ML-KEM) and stays grown for as long as the
// member holds its long-poll: with 10,000 members that was a good part of
// the controller's memory. A handshake that does not finish within its
// timeout closes its connection.
//
// Connections over the limiter's caps are closed as soon as they are
// accepted, before any TLS. Failed handshakes and refused connections are
// counted and logged at a bounded rate (rateLog): anyone on the internet
// can cause them, as fast as they like.
type handshakeListener struct {
	net.Listener
	cfg     *tls.Config
	timeout time.Duration
	limit   *connLimiter // nil: no caps
	logf    func(format string, args ...any)
	failed  *rateLog
	refused *rateLog
	conns   chan net.Conn
	errc    chan error
	done    chan struct{}
	ctx     context.Context // ends handshakes under way at Close
	cancel  context.CancelFunc
	once    sync.Once
}

// listenerConfig configures a handshakeListener.
type listenerConfig struct {
	tls *tls.Config
	// handshakeTimeout bounds a handshake (default defaultHandshakeTimeout).
	handshakeTimeout time.Duration
	limit            *connLimiter // nil: no caps
	logf             func(format string, args ...any)
	// logEvery is the interval of rate-limited log lines (default
	// defaultLogEvery).
	logEvery time.Duration
}

const (
	// defaultHandshakeTimeout bounds a handshake, as net/http's
	// ReadHeaderTimeout (which the controller sets to the same) would.
	defaultHandshakeTimeout = 10 * time.Second
	defaultLogEvery         = 10 * time.Second
)

func newHandshakeListener(ln net.Listener, c listenerConfig) *handshakeListener {
	if c.handshakeTimeout <= 0 {
		c.handshakeTimeout = defaultHandshakeTimeout
	}
	if c.logEvery <= 0 {
		c.logEvery = defaultLogEvery
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &handshakeListener{Listener: ln, cfg: c.tls, timeout: c.handshakeTimeout, limit: c.limit, logf: c.logf,
		failed:  newRateLog(c.logf, c.logEvery, "TLS handshake failed %s", "%d TLS handshakes failed in the last %v, last %s"),
		refused: newRateLog(c.logf, c.logEvery, "connection refused %s", "%d connections refused in the last %v, last %s"),
		conns:   make(chan net.Conn), errc: make(chan error, 1), done: make(chan struct{}), ctx: ctx, cancel: cancel}
	go l.run()
	return l
}

// run accepts until the listener is closed. Any other error (out of file
// descriptors, most often, with many members) is waited out, backing off
// from 5 ms to 1 s, as net/http's Serve does: it must not end the
// controller.
func (l *handshakeListener) run() {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				l.errc <- err
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.logf("accept error: %v; retrying in %v", err, delay)
			select {
			case <-time.After(delay):
			case <-l.done:
			}
			continue
		}
		delay = 0
		if l.limit != nil {
			counted, over := l.limit.admit(c)
			if over != "" {
				l.refuse(c, over)
				continue
			}
			c = counted
		}
		go l.handshake(c)
	}
}

// refuse closes a connection over a cap at once. A reset rather than an
// orderly close: the controller keeps no TIME_WAIT state for it.
func (l *handshakeListener) refuse(c net.Conn, over string) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	addr := c.RemoteAddr().String()
	c.Close()
	l.refused.add("from " + safeText(addr) + ": over " + over)
}

func (l *handshakeListener) handshake(c net.Conn) {
	tc := tls.Server(c, l.cfg)
	ctx, cancel := context.WithTimeout(l.ctx, l.timeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		if l.ctx.Err() == nil { // not the listener closing
			l.failed.add("from " + safeText(c.RemoteAddr().String()) + ": " + safeText(err.Error()))
		}
		tc.Close()
		return
	}
	select {
	case l.conns <- tc:
	case <-l.done:
		tc.Close()
	}
}

// Accept returns the next connection whose handshake is done.
func (l *handshakeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errc:
		l.errc <- err // for the next call too
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting, ends the handshakes under way and logs what the
// rate-limited logs still hold.
func (l *handshakeListener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.cancel()
		l.failed.close()
		l.refused.close()
	})
	return l.Listener.Close()
}
