package webconsole

import "testing"

func TestStreamCaps(t *testing.T) {
	var s streamCount
	var releases []func()
	for i := range maxStreamsPerSession {
		r, ok := s.open("a")
		if !ok {
			t.Fatalf("stream %d of a session refused", i+1)
		}
		releases = append(releases, r)
	}
	if _, ok := s.open("a"); ok {
		t.Fatal("a session opened more streams than its cap")
	}
	if r, ok := s.open("b"); !ok {
		t.Fatal("another session refused")
	} else {
		r()
	}
	releases[0]()
	releases[0]() // twice counts once
	if _, ok := s.open("a"); !ok {
		t.Fatal("a released stream's slot not given back")
	}
	for i := 0; s.total < maxStreams; i++ {
		if _, ok := s.open(string(rune('c' + i))); !ok {
			t.Fatalf("refused at %d streams in all", s.total)
		}
	}
	if _, ok := s.open("zz"); ok {
		t.Fatal("more streams than the cap in all")
	}
}

func TestOnce(t *testing.T) {
	var o onceForms
	v := newOnce()
	if !o.take(v) || o.take(v) {
		t.Fatal("a once value taken twice, or not at all")
	}
	for _, bad := range []string{"", "short", v + "x"} {
		if o.take(bad) {
			t.Errorf("%q taken", bad)
		}
	}
}
