package memlimit

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestLimit(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name               string
		target, live, othr uint64
		want               int64
	}{
		{"small heap: the target", 448 * mib, 100 * mib, 20 * mib, 448 * mib},
		{"at the edge", 448 * mib, 338 * mib, 25 * mib, 448 * mib},
		{"past it: a quarter of the live heap as headroom", 448 * mib, 400 * mib, 48 * mib, 548 * mib},
		{"no target", 0, 12 * mib, 5 * mib, 20 * mib},
		{"huge", math.MaxUint64, 1, 1, math.MaxInt64},
	} {
		if got := Limit(c.target, c.live, c.othr); got != c.want {
			t.Errorf("%s: Limit(%d, %d, %d) = %d MiB, want %d MiB", c.name, c.target/mib, c.live/mib, c.othr/mib, got/mib, c.want/mib)
		}
	}
}

// limitReaches waits for the limit to satisfy ok, running GCs so that the
// keeper sees new figures.
func limitReaches(t *testing.T, what string, ok func(int64) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
		l := debug.SetMemoryLimit(-1)
		if ok(l) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("limit is %d MiB; want %s", l>>20, what)
		}
	}
}

var sink [][]byte

// TestKeep: the limit follows a live heap past the target and comes back
// when the heap is freed; Stop restores what was there before.
func TestKeep(t *testing.T) {
	const target = 64 << 20
	before := debug.SetMemoryLimit(-1)
	k := Keep(target)
	limitReaches(t, "the 64 MiB target", func(l int64) bool { return l == target })

	for range 160 {
		sink = append(sink, make([]byte, 1<<20))
	}
	limitReaches(t, "at least 1.25 times a 160 MiB live heap", func(l int64) bool { return l >= 200<<20 })

	sink = nil
	limitReaches(t, "back at the target", func(l int64) bool { return l == target })

	k.Stop()
	if l := debug.SetMemoryLimit(-1); l != before {
		t.Errorf("after Stop the limit is %d; want %d as before", l, before)
	}
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	if l := debug.SetMemoryLimit(-1); l != before {
		t.Errorf("a GC after Stop set the limit to %d", l)
	}
}

// TestKeepReplaces: a second Keep takes over from the first, and the first
// one's Stop, late, leaves it alone.
func TestKeepReplaces(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	a := Keep(100 << 20)
	b := Keep(200 << 20)
	limitReaches(t, "the second target", func(l int64) bool { return l == 200<<20 })
	a.Stop()
	limitReaches(t, "still the second target", func(l int64) bool { return l == 200<<20 })
	b.Stop()
	if l := debug.SetMemoryLimit(-1); l != before {
		t.Errorf("after both stopped the limit is %d; want %d", l, before)
	}
}
