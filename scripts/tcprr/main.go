// Command tcprr measures TCP request/response latency: the client sends a
// small request and waits for the answer, one at a time, and prints the
// round-trip percentiles as JSON. `make bench` runs it through each
// dataplane under test; it is not part of the gate binary.
//
//	tcprr -listen 10.2.0.2:5201
//	tcprr -connect 10.2.0.2:5201 -n 2000
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"slices"
	"time"
)

func main() {
	listen := flag.String("listen", "", "serve on this address")
	connect := flag.String("connect", "", "measure against this server")
	n := flag.Int("n", 1000, "round trips")
	size := flag.Int("size", 64, "request and response size in bytes")
	timeout := flag.Duration("timeout", 30*time.Second, "give up after this long")
	flag.Parse()
	switch {
	case *listen != "":
		serve(*listen, *size, *timeout)
	case *connect != "":
		measure(*connect, *n, *size, *timeout)
	default:
		flag.Usage()
		os.Exit(2)
	}
}

func serve(addr string, size int, timeout time.Duration) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	// One client, then exit: the benchmark starts a server per run.
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(timeout))
	c, err := ln.Accept()
	if err != nil {
		log.Fatal(err)
	}
	ln.Close()
	buf := make([]byte, size)
	for {
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

func measure(addr string, n, size int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	var c net.Conn
	var err error
	for {
		c, err = net.DialTimeout("tcp", addr, time.Second)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		log.Fatal(err)
	}
	c.(*net.TCPConn).SetNoDelay(true)
	c.SetDeadline(deadline)
	buf := make([]byte, size)
	rtts := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		if _, err := c.Write(buf); err != nil {
			log.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			log.Fatal(err)
		}
		rtts = append(rtts, time.Since(t0))
	}
	c.Close()
	slices.Sort(rtts)
	us := func(q float64) float64 {
		return float64(rtts[int(q*float64(len(rtts)-1))].Nanoseconds()) / 1e3
	}
	out, _ := json.Marshal(map[string]float64{"n": float64(n), "p50_us": us(0.50), "p99_us": us(0.99), "max_us": us(1)})
	fmt.Println(string(out))
}
