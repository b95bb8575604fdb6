package pid1

import (
	"errors"
	"os"
	"os/signal"
	"sync"

	"golang.org/x/sys/unix"
)

// reaper is the only caller of wait4 in PID 1. Orphans re-parented to init
// are reaped and forgotten; the exit of a supervised child is handed to the
// channel registered for its PID. One waiter avoids the race between
// exec.Cmd.Wait and a wait4(-1) loop stealing each other's children.
type reaper struct {
	mu      sync.Mutex
	waiting map[int]chan unix.WaitStatus
}

// newReaper returns the process's reaper, started on first use. There is
// one per process: it calls wait4 for any child, so a second one would
// take the first one's children (the supervisor tests, run with -count,
// lost a child's exit that way).
var newReaper = sync.OnceValue(func() *reaper {
	r := &reaper{waiting: map[int]chan unix.WaitStatus{}}
	sig := make(chan os.Signal, 16)
	signal.Notify(sig, unix.SIGCHLD)
	go func() {
		for range sig {
			r.reap()
		}
	}()
	return r
})

// start runs start (which forks a child and returns its PID) with the
// reaper held, so the child cannot be reaped before its channel exists.
func (r *reaper) start(start func() (int, error)) (<-chan unix.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := start()
	if err != nil {
		return nil, err
	}
	ch := make(chan unix.WaitStatus, 1)
	r.waiting[pid] = ch
	return ch, nil
}

func (r *reaper) reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		if ch, ok := r.waiting[pid]; ok {
			delete(r.waiting, pid)
			ch <- ws
		}
	}
}
