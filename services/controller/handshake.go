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

func (l *handshakeListener) run() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			l.errc <- err
			return
		}
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
