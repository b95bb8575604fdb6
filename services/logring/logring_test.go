package logring

import (
	"context"
	"fmt"
	"log"
	"testing"
	"time"
)

func texts(ls []Line) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Text)
	}
	return out
}

func TestRingKeepsTheNewest(t *testing.T) {
	r := New(3)
	for i := 1; i <= 5; i++ {
		r.Add(fmt.Sprint(i))
	}
	got := r.Since(0)
	if fmt.Sprint(texts(got)) != "[3 4 5]" || got[0].Seq != 3 || got[2].Seq != 5 {
		t.Fatalf("Since(0) = %+v", got)
	}
	if got := texts(r.Since(4)); fmt.Sprint(got) != "[5]" {
		t.Fatalf("Since(4) = %v", got)
	}
	if got := r.Since(5); len(got) != 0 {
		t.Fatalf("Since(5) = %v", got)
	}
}

func TestWriteSplitsLines(t *testing.T) {
	r := New(10)
	lg := log.New(r, "", 0)
	lg.Print("one")
	r.Write([]byte("two\nthr"))
	r.Write([]byte("ee\n"))
	if got := fmt.Sprint(texts(r.Since(0))); got != "[one two three]" {
		t.Fatalf("lines = %s", got)
	}
}

func TestWaitWakesOnNewLines(t *testing.T) {
	r := New(10)
	r.Add("old")
	done := make(chan []Line)
	go func() { done <- r.Wait(context.Background(), 1) }()
	time.Sleep(20 * time.Millisecond)
	r.Add("new")
	select {
	case got := <-done:
		if fmt.Sprint(texts(got)) != "[new]" {
			t.Fatalf("Wait = %v", texts(got))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not wake")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := r.Wait(ctx, 99); got != nil {
		t.Fatalf("cancelled Wait = %v", got)
	}
}
