package controller

import (
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatenet/gate/services/control"
)

// tlsOnLoopback returns a controller's TLS config with a fresh identity,
// a client's config pinned to it, and a TCP listener on loopback.
func tlsOnLoopback(t *testing.T) (server, client *tls.Config, raw net.Listener) {
	t.Helper()
	id, err := control.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := control.ServerTLS(id)
	if err != nil {
		t.Fatal(err)
	}
	ccfg, err := control.ClientTLS(id.Pin(), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return cfg, ccfg, raw
}

// TestHandshakeListener: Accept hands over connections whose handshake is
// done; a client that never finishes its handshake is closed after the
// timeout and holds up no one; Close ends Accept.
func TestHandshakeListener(t *testing.T) {
	cfg, ccfg, raw := tlsOnLoopback(t)
	var mu sync.Mutex
	var logged []string
	l := newHandshakeListener(raw, listenerConfig{tls: cfg, handshakeTimeout: 300 * time.Millisecond, logf: func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, format)
	}})
	defer l.Close()

	// A silent client: connects, says nothing.
	silent, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	// A real one, after it.
	go func() {
		if c, err := tls.Dial("tcp", raw.Addr().String(), ccfg); err == nil {
			c.Write([]byte("hello"))
			defer c.Close()
			time.Sleep(2 * time.Second)
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	tc, ok := c.(*tls.Conn)
	if !ok || !tc.ConnectionState().HandshakeComplete {
		t.Fatalf("Accept gave %T, handshake complete %t", c, ok && tc.ConnectionState().HandshakeComplete)
	}
	buf := make([]byte, 5)
	if _, err := tc.Read(buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q, %v", buf, err)
	}
	c.Close()

	// The silent client is closed once the timeout runs out.
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil || errors.Is(err, net.ErrClosed) || isTimeout(err) {
		t.Errorf("silent client: read gave %v; want the controller to close it", err)
	}
	// (The log line may come just after the close, which interrupted it.)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		got := slices.Clone(logged)
		mu.Unlock()
		if len(got) == 1 && strings.Contains(got[0], "handshake") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logged %q; want one handshake error", got)
		}
	}

	done := make(chan error, 1)
	go func() { _, err := l.Accept(); done <- err }()
	l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v; want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still blocks after Close")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// flakyListener fails its first fails Accepts as a process out of file
// descriptors does.
type flakyListener struct {
	net.Listener
	fails int
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails > 0 {
		l.fails--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return l.Listener.Accept()
}

// TestHandshakeListenerOutOfFiles: accept errors other than a closed
// listener are waited out, not the end of the controller.
func TestHandshakeListenerOutOfFiles(t *testing.T) {
	cfg, ccfg, raw := tlsOnLoopback(t)
	var mu sync.Mutex
	errs := 0
	l := newHandshakeListener(&flakyListener{Listener: raw, fails: 3}, listenerConfig{tls: cfg, logf: func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasPrefix(format, "accept error") {
			errs++
		}
	}})
	defer l.Close()
	go func() {
		if c, err := tls.Dial("tcp", raw.Addr().String(), ccfg); err == nil {
			defer c.Close()
			time.Sleep(2 * time.Second)
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept after three EMFILE: %v", err)
	}
	c.Close()
	mu.Lock()
	defer mu.Unlock()
	if errs != 3 {
		t.Errorf("%d accept errors logged; want 3", errs)
	}
}
