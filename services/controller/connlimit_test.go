package controller

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeConn is a connection from an address, for the limiter.
type fakeConn struct {
	net.Conn
	from   string
	closed bool
}

func (c *fakeConn) RemoteAddr() net.Addr {
	return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(c.from))
}
func (c *fakeConn) Close() error { c.closed = true; return nil }

// TestConnLimiter: caps in all and per source; an IPv6 source is its /64;
// closing counts out once.
func TestConnLimiter(t *testing.T) {
	l := newConnLimiter(5, 2)
	admit := func(from string) (net.Conn, string) { return l.admit(&fakeConn{from: from}) }
	a, over := admit("192.0.2.1:1000")
	if over != "" {
		t.Fatal(over)
	}
	if _, over := admit("[::ffff:192.0.2.1]:1001"); over != "" { // the same address, mapped
		t.Fatal(over)
	}
	if _, over := admit("192.0.2.1:1002"); !strings.Contains(over, "per source") {
		t.Fatalf("third from 192.0.2.1: %q; want over the per-source cap", over)
	}
	if _, over := admit("[2001:db8:1:2::1]:1"); over != "" {
		t.Fatal(over)
	}
	if _, over := admit("[2001:db8:1:2:ffff::9]:1"); over != "" {
		t.Fatal(over)
	}
	if _, over := admit("[2001:db8:1:2:abcd::1]:1"); !strings.Contains(over, "per source") {
		t.Fatalf("third from 2001:db8:1:2::/64: %q; want over the per-source cap", over)
	}
	if _, over := admit("198.51.100.7:1"); over != "" {
		t.Fatal(over)
	}
	if _, over := admit("198.51.100.8:1"); !strings.Contains(over, "cap of 5 connections") {
		t.Fatalf("sixth in all: %q; want over the total cap", over)
	}
	if l.refused.Load() != 3 || l.open() != 5 {
		t.Fatalf("refused %d, open %d; want 3, 5", l.refused.Load(), l.open())
	}
	a.Close()
	a.Close() // counted out once
	if l.open() != 4 {
		t.Fatalf("open %d after a close; want 4", l.open())
	}
	if _, over := admit("192.0.2.1:1003"); over != "" {
		t.Fatalf("192.0.2.1 after one of its connections closed: %q", over)
	}

	none := newConnLimiter(-1, -1)
	for i := range 100 {
		if _, over := none.admit(&fakeConn{from: fmt.Sprintf("192.0.2.1:%d", i+1)}); over != "" {
			t.Fatalf("no caps: %q", over)
		}
	}
	def := newConnLimiter(0, 0)
	if def.max != DefaultMaxConns || def.perSource != DefaultMaxConnsPerSource {
		t.Errorf("defaults %d, %d", def.max, def.perSource)
	}
}

// TestRateLog: the first event of a quiet spell is logged at once, the
// others counted into one line per interval; close says what is left.
func TestRateLog(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, fmt.Sprintf(format, args...))
	}
	got := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), lines...)
	}
	r := newRateLog(logf, 200*time.Millisecond, "thing failed %s", "%d things failed in the last %v, last %s")
	for i := range 100 {
		r.add(fmt.Sprintf("from %d", i))
	}
	if l := got(); len(l) != 1 || l[0] != "thing failed from 0" {
		t.Fatalf("after 100 events at once: %q", l)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(got()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if l := got(); len(l) != 2 || !strings.HasPrefix(l[1], "99 things failed in the last ") || !strings.HasSuffix(l[1], "last from 99") {
		t.Fatalf("after an interval: %q", l)
	}
	// Another interval, quiet: the spell ends; the next is said at once.
	time.Sleep(500 * time.Millisecond)
	r.add("from 100")
	r.add("from 101")
	r.close()
	r.add("from 102") // after close: not logged
	if l := got(); len(l) != 4 || l[2] != "thing failed from 100" || !strings.HasPrefix(l[3], "1 things failed") {
		t.Fatalf("after close: %q", l)
	}
}

func TestSafeText(t *testing.T) {
	for in, want := range map[string]string{
		"tls: bad record MAC":    "tls: bad record MAC",
		"a\x1b[2J\r\nb\x00":      `a\x1b[2J\r\nb\x00`,
		"caf\u00e9 \xff":         `caf\u00e9 \xff`,
		strings.Repeat("x", 300): strings.Repeat("x", 200) + "...",
	} {
		if got := safeText(in); got != want {
			t.Errorf("safeText(%q) = %q; want %q", in, got, want)
		}
	}
}
