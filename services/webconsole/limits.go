package webconsole

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"
)

// onceForms remembers the forms that made a secret (a join token, an
// admin token): each carries a random "once" value, taken at its first
// sending. The same form sent again (a reload of the answer, Back, a
// double click) is refused instead of making a second secret nobody saw.
// It is per replica and in memory: a form sent again to another replica
// behind a load balancer is not caught, which is why the answer says so.
type onceForms struct {
	mu   sync.Mutex
	used map[string]time.Time
}

// onceKeep is how long a used form is remembered: longer than anyone
// keeps a page open before pressing reload.
const onceKeep = 12 * time.Hour

func newOnce() string {
	var b [18]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// take reports whether v is a form's once value sent for the first time.
func (o *onceForms) take(v string) bool {
	if len(v) != 24 {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	if o.used == nil {
		o.used = map[string]time.Time{}
	}
	if _, seen := o.used[v]; seen {
		return false
	}
	for k, t := range o.used {
		if now.Sub(t) > onceKeep {
			delete(o.used, k)
		}
	}
	o.used[v] = now
	return true
}

// streamCount counts the open event streams, in all and by session.
type streamCount struct {
	mu        sync.Mutex
	total     int
	bySession map[string]int
}

// open counts a stream of session in, if under the caps; release counts
// it out.
func (s *streamCount) open(session string) (release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bySession == nil {
		s.bySession = map[string]int{}
	}
	if s.total >= maxStreams || s.bySession[session] >= maxStreamsPerSession {
		return nil, false
	}
	s.total++
	s.bySession[session]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.total--
			if s.bySession[session]--; s.bySession[session] == 0 {
				delete(s.bySession, session)
			}
		})
	}, true
}
