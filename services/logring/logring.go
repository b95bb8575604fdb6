// Package logring keeps a process's recent log lines in memory, numbered,
// so that the local API can serve them to the console and the CLI: on an
// appliance there is no disk log to read, and a console that was not
// watching must still be able to scroll back.
//
// The ring is bounded by a line count; older lines make room for newer
// ones. Readers ask for lines after the last sequence number they saw and
// may wait for new ones.
package logring

import (
	"bytes"
	"context"
	"sync"
	"time"
)

// Line is one log line.
type Line struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Text string    `json:"text"`
}

// Ring is a bounded, numbered log. The zero value is not usable; use New.
type Ring struct {
	mu      sync.Mutex
	lines   []Line // circular, len == cap once full
	start   int    // index of the oldest line when full
	next    uint64 // sequence number of the next line
	partial []byte // an unterminated line from Write
	changed chan struct{}
	now     func() time.Time
}

// New returns a ring keeping the last size lines.
func New(size int) *Ring {
	if size < 1 {
		size = 1
	}
	return &Ring{lines: make([]Line, 0, size), next: 1, changed: make(chan struct{}), now: time.Now}
}

// Add appends one line.
func (r *Ring) Add(text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addLocked(text)
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *Ring) addLocked(text string) {
	l := Line{Seq: r.next, Time: r.now(), Text: text}
	r.next++
	if len(r.lines) < cap(r.lines) {
		r.lines = append(r.lines, l)
		return
	}
	r.lines[r.start] = l
	r.start = (r.start + 1) % len(r.lines)
}

// Write implements io.Writer, one line per newline; it never fails, so a
// log.Logger can write to it.
func (r *Ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(p)
	added := false
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			r.partial = append(r.partial, p...)
			break
		}
		r.addLocked(string(append(r.partial, p[:i]...)))
		r.partial = r.partial[:0]
		p = p[i+1:]
		added = true
	}
	if added {
		close(r.changed)
		r.changed = make(chan struct{})
	}
	return n, nil
}

// Since returns the kept lines with a sequence number above seq, oldest
// first.
func (r *Ring) Since(seq uint64) []Line {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sinceLocked(seq)
}

func (r *Ring) sinceLocked(seq uint64) []Line {
	var out []Line
	for i := range r.lines {
		l := r.lines[(r.start+i)%len(r.lines)]
		if l.Seq > seq {
			out = append(out, l)
		}
	}
	return out
}

// Wait returns the lines after seq, waiting until there are some or ctx is
// done (then it returns what there is, possibly nothing).
func (r *Ring) Wait(ctx context.Context, seq uint64) []Line {
	for {
		r.mu.Lock()
		out := r.sinceLocked(seq)
		ch := r.changed
		r.mu.Unlock()
		if len(out) > 0 {
			return out
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil
		}
	}
}
