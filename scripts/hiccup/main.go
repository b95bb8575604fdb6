// Command hiccup measures how long this machine fails to run a thread that
// asks to run: it sleeps for an interval again and again and records how
// much later than asked each wake-up came, then prints the percentiles and
// the longest as JSON. `make bench` runs it beside the latency
// measurements, so that a tunnel's p99 can be read against the stalls any
// program on the machine sees (a virtual machine's host may stop its vCPUs
// for milliseconds at a time). It is not part of the gate binary.
//
//	hiccup -d 5s
//
// SIGINT or SIGTERM ends the measurement early; it still prints.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	d := flag.Duration("d", 5*time.Second, "how long to measure")
	interval := flag.Duration("interval", time.Millisecond, "sleep asked for each time")
	flag.Parse()
	if *d <= 0 || *interval <= 0 {
		fmt.Fprintln(os.Stderr, "hiccup: -d and -interval must be positive")
		os.Exit(2)
	}
	// One thread sleeping in the kernel (clock_nanosleep, as cyclictest
	// does): the Go scheduler's timers and hand-offs stay out of the figure.
	runtime.GOMAXPROCS(1)
	runtime.LockOSThread()
	ts := unix.NsecToTimespec(interval.Nanoseconds())
	late := make([]time.Duration, 0, int(*d / *interval))
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, unix.SIGINT, unix.SIGTERM)
	end := time.Now().Add(*d)
measure:
	for t0 := time.Now(); t0.Before(end); {
		select {
		case <-stop:
			break measure
		default:
		}
		if err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, 0, &ts, nil); err != nil && err != unix.EINTR {
			fmt.Fprintln(os.Stderr, "hiccup:", err)
			os.Exit(1)
		}
		t1 := time.Now()
		late = append(late, t1.Sub(t0)-*interval)
		t0 = t1
	}
	if len(late) == 0 {
		fmt.Fprintln(os.Stderr, "hiccup: no samples")
		os.Exit(1)
	}
	slices.Sort(late)
	us := func(q float64) float64 {
		return float64(late[int(q*float64(len(late)-1))].Nanoseconds()) / 1e3
	}
	over := 0
	for _, l := range late {
		if l >= time.Millisecond {
			over++
		}
	}
	out, _ := json.Marshal(map[string]float64{
		"n": float64(len(late)), "p50_us": us(0.50), "p99_us": us(0.99), "p999_us": us(0.999), "max_us": us(1),
		"over_1ms": float64(over),
	})
	fmt.Println(string(out))
}
