package controller

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatenet/gate/services/control"
)

// The transport's defences against anonymous clients: anyone can make a
// self-signed certificate and pass as a member, so nothing here may cost
// the controller much per connection, or for long.

// dialAnon connects to the controller as an anonymous member would: TLS
// with a certificate it made up a moment ago, from the loopback address
// from ("" for any).
func (e *env) dialAnon(from string) (*tls.Conn, error) {
	id, err := control.NewIdentity()
	if err != nil {
		return nil, err
	}
	cfg, err := control.ClientTLS(e.s.Pin(), &id)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := tls.DialWithDialer(d, "tcp", e.addr, cfg)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// readAnswer reads one HTTP answer from c, waiting at most d; it gives the
// status, or an error if none came (the connection closed or the time
// ran out).
func readAnswer(c net.Conn, d time.Duration) (int, error) {
	c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// closedWithin tells whether the controller closes c within d (a read
// ends with EOF or a reset, not a timeout).
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	return !isTimeout(err)
}

// TestAttackSlowBody: a client that sends its body one byte every few
// seconds (never quite idle) is cut off by the body's deadline.
func TestAttackSlowBody(t *testing.T) {
	e := startEnvWith(t, nil, func(s *Server) { s.bodyTimeout = time.Second })
	nw := e.mustNetwork("slow", "10.9.0.0/24", true)
	c, err := e.dialAnon("")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/networks/%s/sync HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", nw.ID)
	got := make(chan error, 1)
	var status int
	go func() {
		var err error
		status, err = readAnswer(c, 10*time.Second)
		got <- err
	}()
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	giveUp := time.After(8 * time.Second)
	for done := false; !done; {
		select {
		case err := <-got:
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			done = true
		case <-tick.C:
			c.Write([]byte(" ")) // one byte; errors show in the answer
		case <-giveUp:
			t.Fatal("a body sent one byte at a time still holds its connection after 8 s; the deadline is 1 s")
		}
	}
	if status != http.StatusRequestTimeout {
		t.Errorf("answer %d; want %d", status, http.StatusRequestTimeout)
	}
	if !closedWithin(c, 5*time.Second) {
		t.Error("the connection stays open after the body timed out")
	}
}

// TestAttackLargeBodies: anonymous connections stalling inside large
// bodies are refused once they sent a member call's worth (16 KiB), not
// read on to 1 MiB each; one that announces a large body is refused
// before any of it is read. The admin's calls keep the larger limit.
func TestAttackLargeBodies(t *testing.T) {
	e := startEnvWith(t, nil, nil)
	nw := e.mustNetwork("big", "10.9.0.0/24", true)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := e.dialAnon("")
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			// Chunked: no length to refuse it by; 64 KiB, then it stalls.
			fmt.Fprintf(c, "POST /v1/networks/%s/join HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", nw.ID)
			go func() {
				chunk := fmt.Sprintf("%x\r\n%s\r\n", 1024, strings.Repeat("a", 1024))
				for range 64 {
					if _, err := io.WriteString(c, chunk); err != nil {
						return
					}
				}
			}()
			status, err := readAnswer(c, 5*time.Second)
			if err != nil {
				errs <- fmt.Errorf("connection %d: stalled in a 64 KiB body, no answer: %v", i, err)
			} else if status != http.StatusRequestEntityTooLarge {
				errs <- fmt.Errorf("connection %d: answer %d, want 413", i, status)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	c, err := e.dialAnon("")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/networks/%s/sync HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n{", nw.ID, 1<<20)
	if status, err := readAnswer(c, 5*time.Second); err != nil || status != http.StatusRequestEntityTooLarge {
		t.Errorf("a 1 MiB body announced: answer %d, %v; want 413 at once", status, err)
	}

	// The admin can still send up to 1 MiB (a 100 KiB name is refused
	// by the API, not by the transport).
	big := `{"name":"` + strings.Repeat("a", 100<<10) + `","cidr":"10.1.0.0/16"}`
	if status, msg := e.raw("POST", "/v1/networks", big, e.s.AdminToken()); status == http.StatusRequestEntityTooLarge {
		t.Errorf("admin call with a 100 KiB body: %d %s", status, msg)
	}
	// So can a member call carrying the admin token, but not one without.
	if status, _ := e.raw("POST", "/v1/networks/"+nw.ID+"/sync", `{"pad":"`+strings.Repeat("a", 20<<10)+`"}`, ""); status != http.StatusRequestEntityTooLarge {
		t.Errorf("anonymous 20 KiB body: %d; want 413", status)
	}
}

// TestSyncOutlivesBodyDeadline pins net/http's pitfall: a deadline on the
// whole request (http.Server.ReadTimeout) also ends the background read
// that watches a long-poll's connection, which cancels its context. The
// body deadline must end with the body.
func TestSyncOutlivesBodyDeadline(t *testing.T) {
	e := startEnvWith(t, nil, func(s *Server) { s.bodyTimeout = 300 * time.Millisecond })
	nw := e.mustNetwork("poll", "10.9.0.0/24", true)
	a, b := e.newNode(), e.newNode()
	mc := e.mustJoin(a, nw.ID, "")
	start := time.Now()
	r := waitSync(t, "idle", e.syncAsync(a, nw.ID, control.SyncRequest{Since: mc.Revision, Wait: control.Duration(2 * time.Second)}))
	if r.err != nil || r.mc.Revision != mc.Revision || time.Since(start) < 2*time.Second {
		t.Fatalf("idle sync of 2 s with a 300 ms body deadline: revision %d (want %d), %v, after %v", r.mc.Revision, mc.Revision, r.err, time.Since(start))
	}
	ch := e.syncAsync(a, nw.ID, control.SyncRequest{Since: mc.Revision, Wait: control.Duration(time.Minute)})
	time.Sleep(2 * time.Second)
	e.mustJoin(b, nw.ID, "")
	r = waitSync(t, "join", ch)
	if r.err != nil || r.mc.Revision <= mc.Revision || len(r.mc.Peers) != 1 {
		t.Fatalf("sync waiting 2 s for a join: %+v, %v", r.mc, r.err)
	}
}

// TestAttackConnsPerSource: connections over the cap for their source
// address are closed at once, counted and logged, while other addresses
// still connect; a closed connection frees its place. Connections still
// in their TLS handshake count.
func TestAttackConnsPerSource(t *testing.T) {
	e := startEnvWith(t, func(c *Config) { c.MaxConns = 8; c.MaxConnsPerSource = 3 }, nil)
	// The admin client holds a connection from 127.0.0.1 once used.
	if _, err := e.admin.Networks(e.ctx); err != nil {
		t.Fatal(err)
	}
	var silent []net.Conn
	defer func() {
		for _, c := range silent {
			c.Close()
		}
	}()
	// dial connects from an address; nil is a connection reset as it was
	// made (the controller closed it at once, faster than connect saw).
	dial := func(from string) net.Conn {
		t.Helper()
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", e.addr)
		if errors.Is(err, syscall.ECONNRESET) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, c)
		return c
	}
	closed := func(c net.Conn, d time.Duration) bool { return c == nil || closedWithin(c, d) }
	// Two more from 127.0.0.1 that never start their handshake: the cap.
	dial("127.0.0.1")
	dial("127.0.0.1")
	time.Sleep(100 * time.Millisecond) // accepted and counted
	over := dial("127.0.0.1")
	if !closed(over, 3*time.Second) {
		t.Fatal("a fourth connection from 127.0.0.1 (cap 3) was not closed")
	}
	// Another address still gets in and is served.
	c, err := e.dialAnon("127.0.0.2")
	if err != nil {
		t.Fatalf("127.0.0.2: %v", err)
	}
	fmt.Fprintf(c, "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
	if status, err := readAnswer(c, 5*time.Second); err != nil || status != http.StatusOK {
		t.Fatalf("127.0.0.2 health: %d, %v", status, err)
	}
	c.Close()
	// A place freed is a place again.
	silent[0].Close()
	silent = silent[1:]
	var ok bool
	for deadline := time.Now().Add(5 * time.Second); !ok && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		c := dial("127.0.0.1")
		ok = !closed(c, 300*time.Millisecond)
	}
	if !ok {
		t.Fatal("after one of its connections closed, 127.0.0.1 still cannot connect")
	}
	if e.s.conns.refused.Load() == 0 {
		t.Error("no refused connection counted")
	}
	if !strings.Contains(e.allLogs(), "refused") {
		t.Error("no refused connection logged")
	}

	// The cap on all connections: 127.0.0.1 holds 3, fill up to 8 from
	// 127.0.0.3 and 127.0.0.4; the next is closed whatever its address.
	for _, from := range []string{"127.0.0.3", "127.0.0.3", "127.0.0.3", "127.0.0.4", "127.0.0.4"} {
		dial(from)
	}
	time.Sleep(100 * time.Millisecond)
	if over := dial("127.0.0.5"); !closed(over, 3*time.Second) {
		t.Fatalf("connection over the total cap of 8 was not closed (%d open)", e.s.conns.open())
	}
}

// TestAttackHandshakeLogFlood: 2,000 failed handshakes make a bounded
// number of log lines, which count them all; what the remote side sent
// is never logged raw.
func TestAttackHandshakeLogFlood(t *testing.T) {
	e := startEnvWith(t, nil, func(s *Server) { s.logEvery = time.Hour })
	const n = 2000
	sem := make(chan struct{}, 50)
	var wg sync.WaitGroup
	for range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			// Not TLS: the handshake fails at once.
			c.Write([]byte("GET /\x1b[2J\n HTTP/1.0\r\n\r\n"))
			closedWithin(c, 5*time.Second)
		}()
	}
	wg.Wait()
	e.stop() // the summary of the last interval is written at close
	var lines []string
	total := 0
	count := regexp.MustCompile(`^(\d+) TLS handshakes? failed`)
	for _, l := range strings.Split(e.allLogs(), "\n") {
		if !strings.Contains(l, "handshake") {
			continue
		}
		lines = append(lines, l)
		if strings.ContainsAny(l, "\x1b\r") {
			t.Errorf("log line carries raw control characters: %q", l)
		}
		if m := count.FindStringSubmatch(l); m != nil {
			k, _ := strconv.Atoi(m[1])
			total += k
		} else {
			total++
		}
	}
	if len(lines) > 3 {
		t.Errorf("%d failed handshakes made %d log lines; want at most 3: %q...", n, len(lines), lines[:3])
	}
	if total != n {
		t.Errorf("log lines count %d failed handshakes; want %d: %q", total, n, lines)
	}
}
