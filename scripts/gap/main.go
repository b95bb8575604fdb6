// Command gap measures how long a path stops carrying packets: it sends a
// numbered UDP datagram every interval to an echo server (gap -serve) and
// records when each echo comes back. When it ends (after -d, or on SIGINT
// or SIGTERM) it prints, as JSON, what it sent and got back and the
// longest stretch without an echo: across a failover, the time from the
// last packet through the old gateway to the first through the new one.
// The failover scenario (scripts/failover.sh) runs it; it is not part of
// the gate binary.
//
//	gap -serve 0.0.0.0:7000
//	gap -to 172.16.1.100:7000 -every 10ms -d 60s
//
// With -sink and -stream it checks that one TCP connection carries a
// stream whole across a failover: -stream sends 1 KiB every interval for
// -d and prints the SHA-256 of what it sent; -sink prints, for each
// connection that ends, the SHA-256 of what it received.
//
//	gap -sink 0.0.0.0:7001
//	gap -stream 172.16.1.100:7001 -every 10ms -d 10s
//
// Where a failover cannot keep a connection (a gateway that masquerades
// hands the far end a new source address), -redial says what the
// application sees instead: when the stream breaks (an error, or a write
// stalled for five seconds) it prints when and why, dials again until it
// connects, and prints when it did; times are Unix milliseconds, so that
// the scenario can count them from the moment it broke the gateway.
//
//	gap -stream 203.0.113.50:7001 -redial -d 10s
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Result is what gap prints.
type Result struct {
	Sent      int     `json:"sent"`
	Received  int     `json:"received"`
	LongestMS float64 `json:"longest_gap_ms"` // the longest time between two echoes
	GapStart  string  `json:"gap_start,omitempty"`
	GapEnd    string  `json:"gap_end,omitempty"`
}

func main() {
	serve := flag.String("serve", "", "echo datagrams that arrive on this ADDR:PORT")
	sink := flag.String("sink", "", "take TCP streams on this ADDR:PORT and print each one's SHA-256 when it ends")
	stream := flag.String("stream", "", "send a TCP stream to this ADDR:PORT (a gap -sink) and print its SHA-256")
	to := flag.String("to", "", "send to this ADDR:PORT (a gap -serve)")
	redial := flag.Bool("redial", false, "with -stream: when the connection breaks, say when and why and dial again")
	every := flag.Duration("every", 10*time.Millisecond, "send interval")
	d := flag.Duration("d", time.Minute, "how long to measure")
	flag.Parse()
	var err error
	switch {
	case *serve != "":
		err = echo(*serve)
	case *to != "":
		err = measure(*to, *every, *d)
	case *sink != "":
		err = sinkStreams(*sink)
	case *stream != "":
		if *redial {
			err = redialStream(*stream, *every, *d)
		} else {
			err = sendStream(*stream, *every, *d)
		}
	default:
		err = fmt.Errorf("want -serve ADDR:PORT or -to ADDR:PORT")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gap:", err)
		os.Exit(1)
	}
}

func echo(addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return err
	}
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return err
	}
	buf := make([]byte, 64)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return err
		}
		_, _ = c.WriteToUDPAddrPort(buf[:n], from)
	}
}

func measure(addr string, every, d time.Duration) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return err
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return err
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	echoes := make(chan time.Time, 1024)
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := c.Read(buf); err != nil {
				continue // ICMP errors (no route, refused) while the path is down
			}
			echoes <- time.Now()
		}
	}()
	var r Result
	var last time.Time
	note := func(t time.Time) {
		r.Received++
		if !last.IsZero() {
			if g := t.Sub(last); float64(g.Microseconds())/1000 > r.LongestMS {
				r.LongestMS = float64(g.Microseconds()) / 1000
				r.GapStart, r.GapEnd = last.Format(time.RFC3339Nano), t.Format(time.RFC3339Nano)
			}
		}
		last = t
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	end := time.After(d)
	msg := make([]byte, 8)
	for done := false; !done; {
		select {
		case <-tick.C:
			binary.BigEndian.PutUint64(msg, uint64(r.Sent))
			r.Sent++
			_, _ = c.Write(msg)
		case t := <-echoes:
			note(t)
		case <-stop:
			done = true
		case <-end:
			done = true
		}
	}
	for len(echoes) > 0 {
		note(<-echoes)
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

func sinkStreams(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			h := sha256.New()
			n, err := io.Copy(h, c)
			fmt.Printf("{\"bytes\":%d,\"sha256\":\"%x\",\"error\":%q}\n", n, h.Sum(nil), errText(err))
		}()
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func sendStream(addr string, every, d time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	h := sha256.New()
	chunk := make([]byte, 1024)
	tick := time.NewTicker(every)
	defer tick.Stop()
	var n int64
	seed := rand.Int64() // so that no two streams are alike
	for end := time.Now().Add(d); time.Now().Before(end); {
		<-tick.C
		for i := range chunk {
			chunk[i] = byte(seed + n + int64(i)*7)
		}
		if _, err := c.Write(chunk); err != nil {
			return fmt.Errorf("after %d bytes: %w", n, err)
		}
		h.Write(chunk)
		n += int64(len(chunk))
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	// Wait for the sink to close: it has everything then.
	_, _ = io.Copy(io.Discard, c)
	c.Close()
	fmt.Printf("{\"bytes\":%d,\"sha256\":\"%x\"}\n", n, h.Sum(nil))
	return nil
}

// Break is what gap -stream -redial prints.
type Break struct {
	Bytes      int64   `json:"bytes"`              // sent on the first connection
	Broke      string  `json:"broke,omitempty"`    // why it ended early ("" if it lasted)
	BrokeAt    float64 `json:"broke_at,omitempty"` // Unix ms
	RedialedAt float64 `json:"redialed_at,omitempty"`
}

func unixMS(t time.Time) float64 { return float64(t.UnixMicro()) / 1000 }

func redialStream(addr string, every, d time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	var r Break
	chunk := make([]byte, 1024)
	tick := time.NewTicker(every)
	defer tick.Stop()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		<-tick.C
		// A write that cannot go out for five seconds (the send buffer
		// full, nothing acknowledged: longer than TCP takes to retransmit
		// through the new gateway and hear back) is a connection that no
		// longer carries anything, whether or not it was reset.
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(chunk); err != nil {
			r.Broke, r.BrokeAt = err.Error(), unixMS(time.Now())
			break
		}
		r.Bytes += int64(len(chunk))
	}
	c.Close()
	for r.Broke != "" && r.RedialedAt == 0 && time.Now().Before(end.Add(15*time.Second)) {
		c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		r.RedialedAt = unixMS(time.Now())
		c.Close()
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}
