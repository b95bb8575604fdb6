package failover

import (
	"net/netip"
	"testing"
	"time"
)

// TestAttackQuestions: a gateway answers members' overlay addresses only
// (not the hosts behind another gateway, which reach its overlay through
// the tunnel too), and each at most maxAsks times a second, so that no
// one makes it send answers 50 times the size of their questions.
func TestAttackQuestions(t *testing.T) {
	cidr := prefix("10.99.0.0/24")
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		src    string
		cidr   netip.Prefix
		asks   int
		at     time.Duration // between asks
		answer int
	}{
		{"a member asking twice a second", "10.99.0.170", cidr, 10, Interval, 10},
		{"a member asking in a burst", "10.99.0.170", cidr, 100, 0, maxAsks},
		{"a burst over two seconds", "10.99.0.170", cidr, 40, 50 * time.Millisecond, 2 * maxAsks},
		{"a host behind another gateway", "172.16.1.100", cidr, 3, Interval, 0},
		{"IPv6 on a v4 overlay", "fd00::1", cidr, 3, Interval, 0},
		{"a network without a CIDR", "10.99.0.170", netip.Prefix{}, 3, Interval, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &responder{}
			got := 0
			for i := range tt.asks {
				if r.admit(addr(tt.src), tt.cidr, t0.Add(time.Duration(i)*tt.at)) {
					got++
				}
			}
			if got != tt.answer {
				t.Errorf("%d of %d questions answered, want %d", got, tt.asks, tt.answer)
			}
		})
	}
	// One source's flood leaves another's answers alone.
	r := &responder{}
	for range 100 {
		r.admit(addr("10.99.0.66"), cidr, t0)
	}
	if !r.admit(addr("10.99.0.170"), cidr, t0) {
		t.Errorf("a member was refused while another flooded")
	}
}

// BenchmarkAnswer is what one answer costs a gateway (its states, under
// the service's lock, and their encoding): with 10,000 members asking
// twice a second, a gateway answers 20,000 a second.
func BenchmarkAnswer(b *testing.B) {
	s := New(func() {}, nopLogf)
	n := haNet()
	n.Own, n.Serve, n.CIDR = []netip.Prefix{prefix("10.99.0.11/24")}, []netip.Prefix{prefix("172.16.0.0/16")}, prefix("10.99.0.0/24")
	s.Set([]Network{n})
	r := &responder{iface: n.Iface}
	now := time.Now()
	var buf []byte
	for b.Loop() {
		states, cidr := s.statesOn(r.iface)
		if r.admit(addr("10.99.0.170"), cidr, now) {
			buf = appendAnswer(buf[:0], 1, states)
		}
		now = now.Add(time.Second)
	}
}
