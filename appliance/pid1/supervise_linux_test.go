package pid1

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// syncBuffer is a bytes.Buffer safe for the supervisor's copy goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServiceRestartsAndStops runs a real child that fails at once: the
// supervisor must restart it, keep its output, and stop it for good,
// process group included.
func TestServiceRestartsAndStops(t *testing.T) {
	dir := t.TempDir()
	count := filepath.Join(dir, "count")
	// Each run appends a line and prints. The first two fail, each
	// leaving a grandchild behind in its group, the second one that
	// ignores SIGTERM: the supervisor must end both before it restarts.
	// The third starts a grandchild and stays up.
	script := fmt.Sprintf(`echo run >> %[1]s; n=$(wc -l < %[1]s); echo "hello $n"
		if [ "$n" -lt 3 ]; then
			if [ "$n" = 2 ]; then
				(trap '' TERM; : > %[1]s.trapped; exec sleep 600) &
				until [ -e %[1]s.trapped ]; do sleep 0.01; done
			else
				sleep 600 &
			fi
			echo $! >> %[1]s.left
			exit 3
		fi
		sleep 600 & echo $! > %[1]s.pid; wait`, count)
	var logs syncBuffer
	var out syncBuffer
	s := &service{
		name:  "test",
		path:  "/bin/sh",
		args:  []string{"sh", "-c", script},
		log:   newRing(1 << 10),
		out:   &out,
		logf:  func(f string, a ...any) { fmt.Fprintf(&logs, f+"\n", a...) },
		r:     newReaper(),
		grace: 200 * time.Millisecond,
	}
	done := make(chan struct{})
	go func() { s.run(); close(done) }()

	waitFor(t, "the third run", func() bool { _, err := os.Stat(count + ".pid"); return err == nil })
	for _, want := range []string{"hello 1", "hello 2", "hello 3"} {
		if !strings.Contains(string(s.log.Bytes()), want) || !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q: ring %q, console %q", want, s.log.Bytes(), out.String())
		}
	}
	if got := strings.Count(logs.String(), "exited with status 3"); got != 2 {
		t.Errorf("supervisor logged %d failures, want 2:\n%s", got, logs.String())
	}
	// The failed runs' leftovers ended before the next run began; the one
	// that ignored SIGTERM was killed.
	b, _ := os.ReadFile(count + ".left")
	left := strings.Fields(string(b))
	if len(left) != 2 {
		t.Fatalf("the failed runs left %q, want two PIDs", left)
	}
	for _, p := range left {
		pid, _ := strconv.Atoi(p)
		if live, _ := procState(pid); live {
			t.Errorf("process %d, left behind by a failed run, still runs", pid)
		}
	}
	if !strings.Contains(logs.String(), "ignored SIGTERM") {
		t.Errorf("supervisor did not say it killed what ignored SIGTERM:\n%s", logs.String())
	}
	b, _ = os.ReadFile(count + ".pid")
	var grandchild int
	fmt.Sscan(string(b), &grandchild)

	select {
	case <-s.stop(unix.SIGTERM):
	case <-time.After(10 * time.Second):
		t.Fatal("service did not stop on SIGTERM")
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after stop")
	}
	// The grandchild was in the service's process group: it got SIGTERM
	// too (it is our own child's orphan, reaped by init, not by us).
	waitFor(t, "the grandchild to end", func() bool {
		live, _ := procState(grandchild)
		return !live
	})
}
