package pid1

import "time"

// backoff spaces the restarts of a service that keeps failing: the delay
// doubles from min to max with each quick failure and starts again from
// min once the service has run for stable (a crash after a day of service
// is not a crash loop).
type backoff struct {
	min, max, stable time.Duration
	fails            int
}

// next returns how long to wait before the next start, given how long the
// last run lasted.
func (b *backoff) next(ran time.Duration) time.Duration {
	if ran >= b.stable {
		b.fails = 0
	}
	d := b.min
	for i := 0; i < b.fails && d < b.max; i++ {
		d *= 2
	}
	b.fails++
	return min(d, b.max)
}
