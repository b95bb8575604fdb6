package controller

import "sync"

// watcher tells long-polling syncs that a network's revision moved. Each
// network someone waits on has a channel that is closed (waking every
// waiter at once) and forgotten when the revision is bumped. A waiter takes
// the channel before it reads the revision, so a bump between the read and
// the wait still wakes it. Entries are counted, so that waits on networks
// that do not exist leave nothing behind.
type watcher struct {
	mu sync.Mutex
	ch map[string]*waiters
}

type waiters struct {
	c chan struct{}
	n int
}

func newWatcher() *watcher { return &watcher{ch: make(map[string]*waiters)} }

// wait returns a channel that is closed at the next change of network id,
// and a function to call when the caller no longer waits.
func (w *watcher) wait(id string) (<-chan struct{}, func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ws, ok := w.ch[id]
	if !ok {
		ws = &waiters{c: make(chan struct{})}
		w.ch[id] = ws
	}
	ws.n++
	var once sync.Once
	return ws.c, func() {
		once.Do(func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			ws.n--
			if ws.n == 0 && w.ch[id] == ws {
				delete(w.ch, id)
			}
		})
	}
}

// notify wakes everyone waiting on network id. Call it after the change has
// been committed.
func (w *watcher) notify(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ws, ok := w.ch[id]; ok {
		close(ws.c)
		delete(w.ch, id)
	}
}

// waiting returns how many networks have waiters (for tests).
func (w *watcher) waiting() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.ch)
}
