package pid1

import (
	"context"
	"fmt"
	"time"

	"github.com/gatenet/gate/services/localapi"
)

// watchWait is how long one watch of the local API waits for a change
// before the daemon answers with its state as it is.
const watchWait = 2 * time.Second

// watchDaemon follows the daemon through its local API's watch (the
// long-poll the console follows too) and prints on every console the lines
// that each snapshot adds (told.next, announce.go). onReady runs once, in
// its own goroutine, after the ready line. While the daemon does not answer
// (not started yet, or being restarted by its supervisor) it tries again
// with backoff. It never returns.
func watchDaemon(cl *localapi.Client, version string, c *consoles, onReady func()) {
	b := &backoff{min: 100 * time.Millisecond, max: time.Second, stable: 10 * time.Second}
	var (
		t         told
		since     uint64
		answering time.Time // since when the daemon has answered; zero while it does not
	)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), watchWait+10*time.Second)
		s, err := cl.Watch(ctx, since, watchWait)
		cancel()
		if err != nil {
			// A restarted daemon counts its revisions from zero again.
			since = 0
			var ran time.Duration
			if !answering.IsZero() {
				ran = time.Since(answering)
			}
			answering = time.Time{}
			time.Sleep(b.next(ran))
			continue
		}
		if answering.IsZero() {
			answering = time.Now()
		}
		since = s.Rev
		wasReady := t.ready
		var lines []string
		t, lines = t.next(s, version, uptime())
		for i, l := range lines {
			fmt.Fprintln(c, l)
			if i == 0 && t.ready && !wasReady {
				// The ready line comes first.
				if s.Status.LastError != "" {
					c.logf("daemon reports: %s", s.Status.LastError)
				}
				go onReady()
			}
		}
	}
}
