package reconciler

// trigger wakes the loop: at most one wake-up pending, so that any number
// of pokes while a pass runs give exactly one more pass, and none is lost
// (Talos' internal/trigger, without the rate limit: a pass takes the
// newest desired state, so a burst needs no sleep to coalesce).
type trigger struct{ c chan struct{} }

func newTrigger() trigger { return trigger{c: make(chan struct{}, 1)} }

// poke schedules a wake-up unless one is pending; it never blocks.
func (t trigger) poke() {
	select {
	case t.c <- struct{}{}:
	default:
	}
}
