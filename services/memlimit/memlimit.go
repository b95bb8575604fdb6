// Package memlimit keeps a Go process under a memory target without letting
// the target starve its garbage collector.
//
// Go's soft memory limit (debug.SetMemoryLimit, $GOMEMLIMIT) makes the GC
// run as often as it must to stay under it. That is what a small machine
// wants while the live heap is well under the limit, and what it must not
// get once the live heap comes near it: the GC then runs back to back, up
// to the runtime's cap of half the CPU, to save a few megabytes. How much a
// gate process keeps live depends on what it serves (a controller holds
// about 25 KB of heap and 13 KB of goroutine stacks for each member's
// connection and long-poll), so no fixed limit fits all. Keep sets the
// limit to the target and, after every GC, raises it to what the process
// needs beside its heap (stacks, runtime metadata) plus 1.25 times the live
// heap when that is more: under the target, memory stays under the
// target; past it, the GC keeps a quarter of the live heap as headroom, as
// GOGC=25 would, and memory grows with the work. A quarter, not more,
// because past the target memory is what is short: measured with
// scripts/ctlbench at 10,000 members, half the live heap as headroom held
// 486-503 MiB idle and 520-532 MiB at the peak, a quarter 468-476 and
// 494-508 MiB, for a few more GC cycles (70 against 53 in the storm).
package memlimit

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Limit is the soft memory limit for a process whose live heap was live
// bytes at the last GC and whose runtime memory besides the heap (stacks,
// GC metadata) is other bytes.
func Limit(target, live, other uint64) int64 {
	need := other + live + live/4
	return int64(min(max(target, need), math.MaxInt64))
}

// metricNames are what adjust reads, in this order.
var metricNames = []string{
	"/gc/heap/live:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/released:bytes",
}

// Keeper keeps the limit of the process; a new one stops the last.
type Keeper struct {
	target  uint64
	mu      sync.Mutex
	stop    bool
	prev    int64 // the limit before Keep
	samples []metrics.Sample
}

// Keep sets the process's soft memory limit to target bytes and keeps it
// there, or above it as the live heap needs, after every GC until Stop.
func Keep(target int64) *Keeper {
	current.Lock()
	defer current.Unlock()
	if current.k != nil {
		current.k.halt()
	}
	k := &Keeper{target: uint64(max(target, 0)), prev: debug.SetMemoryLimit(-1)}
	for _, name := range metricNames {
		k.samples = append(k.samples, metrics.Sample{Name: name})
	}
	current.k = k
	k.adjust()
	k.arm()
	return k
}

// current is the keeper at work.
var current struct {
	sync.Mutex
	k *Keeper
}

// arm runs adjust after the next GC: a cleanup runs once the object it
// watches is found unreachable, which the next cycle does.
func (k *Keeper) arm() {
	runtime.AddCleanup(new([64]byte), func(k *Keeper) {
		if k.adjust() {
			k.arm()
		}
	}, k)
}

// adjust sets the limit from the last GC's figures; it reports false once
// the keeper is stopped.
func (k *Keeper) adjust() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stop {
		return false
	}
	metrics.Read(k.samples)
	v := func(i int) uint64 { return k.samples[i].Value.Uint64() }
	heap := v(2) + v(3) + v(4) + v(5)
	other := uint64(0)
	if total := v(1); total > heap {
		other = total - heap
	}
	debug.SetMemoryLimit(Limit(k.target, v(0), other))
	return true
}

// Stop leaves the limit as it was before Keep, unless another Keep has
// taken over since.
func (k *Keeper) Stop() {
	current.Lock()
	defer current.Unlock()
	if current.k == k {
		k.halt()
		current.k = nil
	}
}

func (k *Keeper) halt() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stop = true
	debug.SetMemoryLimit(k.prev)
}
