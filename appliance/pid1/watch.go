package pid1

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/gatenet/gate/services/localapi"
)

// watcher follows the daemon through its local API's watch (the long-poll
// the console follows too) and prints on every console the lines that each
// snapshot adds (told.next, announce.go).
type watcher struct {
	api     *localapi.Client
	wait    time.Duration // how long one watch waits for a change before the daemon answers as it is
	version string        // PID 1's, for the ready line
	out     io.Writer     // every console
	logf    func(format string, args ...any)
	uptime  func() time.Duration
	// onReady runs once, in its own goroutine, after the ready line.
	onReady func()
}

// run follows the daemon until ctx is done. While the daemon does not
// answer (not started yet, or being restarted by its supervisor) it tries
// again with backoff.
func (w *watcher) run(ctx context.Context) {
	// At boot the daemon's socket appears a few seconds after PID 1 starts
	// it: a short ceiling keeps the ready line close behind it.
	b := &backoff{min: 100 * time.Millisecond, max: 500 * time.Millisecond, stable: 10 * time.Second}
	var (
		t         told
		since     uint64
		answering time.Time // since when the daemon has answered; zero while it does not
	)
	for ctx.Err() == nil {
		wctx, cancel := context.WithTimeout(ctx, w.wait+10*time.Second)
		s, err := w.api.Watch(wctx, since, w.wait)
		cancel()
		if err != nil {
			// A restarted daemon counts its revisions from zero again.
			since = 0
			var ran time.Duration
			if !answering.IsZero() {
				ran = time.Since(answering)
			}
			answering = time.Time{}
			select {
			case <-time.After(b.next(ran)):
			case <-ctx.Done():
			}
			continue
		}
		if answering.IsZero() {
			answering = time.Now()
		}
		since = s.Rev
		wasReady := t.ready
		var lines []string
		t, lines = t.next(s, w.version, w.uptime())
		for i, l := range lines {
			fmt.Fprintln(w.out, l)
			if i == 0 && t.ready && !wasReady {
				// The ready line comes first.
				if s.Status.LastError != "" {
					w.logf("daemon reports: %s", s.Status.LastError)
				}
				go w.onReady()
			}
		}
	}
}
