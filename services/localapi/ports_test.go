package localapi

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// holdBackend is a backend that holds ports, counting the holds.
type holdBackend struct {
	backend
	holding atomic.Int32
	asked   atomic.Int32
}

func (b *holdBackend) HoldPort(r HoldRequest) (func(), error) {
	b.asked.Add(1)
	b.holding.Add(1)
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			b.holding.Add(-1)
		}
	}, nil
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !f(); {
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s: not %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHoldPort: a hold lasts as long as the caller's context, and the
// port is released when it ends; a daemon that opens no ports says so.
func TestHoldPort(t *testing.T) {
	b := &holdBackend{}
	c := NewClient(serve(t, b))
	ctx, cancel := context.WithCancel(context.Background())
	opened := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- c.HoldPort(ctx, HoldRequest{Port: 8443, For: HoldForController}, func() { close(opened) })
	}()
	select {
	case <-opened:
	case err := <-done:
		t.Fatalf("HoldPort returned before the port was open: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("not opened after 5 s")
	}
	if b.holding.Load() != 1 {
		t.Fatalf("%d holds, want 1", b.holding.Load())
	}
	// Held beyond the client's usual timeout for a call would be the
	// test of a long hold; here: it is still held a moment later.
	time.Sleep(100 * time.Millisecond)
	if b.holding.Load() != 1 {
		t.Fatalf("the hold ended by itself")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("HoldPort after cancel: %v, want nil", err)
	}
	eventually(t, "released", func() bool { return b.holding.Load() == 0 })

	// A backend that opens no ports: a clear refusal, not a hang.
	plain := NewClient(serve(t, &backend{}))
	err := plain.HoldPort(context.Background(), HoldRequest{Port: 8443, For: HoldForController}, func() { t.Error("opened") })
	if err == nil || !strings.Contains(err.Error(), "opens no ports for others") {
		t.Errorf("HoldPort on a daemon without ports: %v", err)
	}
}

// TestAttackHoldPort: a hold for no port, for something other than a
// controller, or with a hostile name is refused before the daemon sees
// it, in printable words.
func TestAttackHoldPort(t *testing.T) {
	b := &holdBackend{}
	c := NewClient(serve(t, b))
	for _, r := range []HoldRequest{
		{Port: 0, For: HoldForController},
		{Port: 22, For: "sshd"},
		{Port: 8443, For: "controller\x1b[2J"},
		{Port: 8443},
	} {
		err := c.HoldPort(context.Background(), r, func() { t.Errorf("%+v: opened", r) })
		if err == nil {
			t.Errorf("%+v: no error", r)
			continue
		}
		for _, ch := range []byte(err.Error()) {
			if ch < ' ' || ch > '~' {
				t.Errorf("%+v: error not printable ASCII: %q", r, err)
				break
			}
		}
	}
	if n := b.asked.Load(); n != 0 {
		t.Errorf("%d refused holds reached the daemon", n)
	}
}
