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
// the controller's memory. A handshake that does not finish within
// handshakeTimeout closes its connection; failures are logged as net/http
// would.
type handshakeListener struct {
	net.Listener
	cfg   *tls.Config
	logf  func(format string, args ...any)
	conns chan net.Conn
	errc  chan error
	done  chan struct{}
	once  sync.Once
}

// handshakeTimeout bounds a handshake, as net/http's ReadHeaderTimeout
// (which the controller sets to the same) did; tests shorten it.
var handshakeTimeout = 10 * time.Second

func newHandshakeListener(ln net.Listener, cfg *tls.Config, logf func(format string, args ...any)) *handshakeListener {
	l := &handshakeListener{Listener: ln, cfg: cfg, logf: logf, conns: make(chan net.Conn), errc: make(chan error, 1), done: make(chan struct{})}
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
		go l.handshake(c)
	}
}

func (l *handshakeListener) handshake(c net.Conn) {
	tc := tls.Server(c, l.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		l.logf("TLS handshake error from %s: %v", c.RemoteAddr(), err)
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

func (l *handshakeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}
