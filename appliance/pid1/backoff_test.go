package pid1

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	const s = time.Second
	for _, tc := range []struct {
		name string
		runs []time.Duration // how long each run lasted
		want []time.Duration // the delays after each
	}{
		{"crash loop doubles to max", []time.Duration{0, 0, 0, 0, 0, 0, 0}, []time.Duration{s / 4, s / 2, s, 2 * s, 4 * s, 5 * s, 5 * s}},
		{"stable run resets", []time.Duration{0, 0, 0, time.Minute, 0}, []time.Duration{s / 4, s / 2, s, s / 4, s / 2}},
		{"just under stable does not", []time.Duration{0, 0, 10*s - 1}, []time.Duration{s / 4, s / 2, s}},
		{"many failures stay at max", make([]time.Duration, 100), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &backoff{min: s / 4, max: 5 * s, stable: 10 * s}
			for i, ran := range tc.runs {
				got := b.next(ran)
				if tc.want == nil {
					if got > b.max || got < b.min {
						t.Fatalf("run %d: delay %v outside [%v, %v]", i, got, b.min, b.max)
					}
					continue
				}
				if got != tc.want[i] {
					t.Errorf("run %d (lasted %v): delay %v, want %v", i, ran, got, tc.want[i])
				}
			}
		})
	}
}
