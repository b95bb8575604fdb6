package pid1

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// service is one supervised child process: restarted with backoff when it
// exits, in its own process group so that stopping it reaches everything it
// started, its output copied to a ring buffer and to the consoles.
type service struct {
	name string
	path string
	args []string // argv, argv[0] included
	env  []string
	log  *ring
	out  io.Writer // the consoles
	logf func(format string, args ...any)
	r    *reaper
	// grace is how long what a run left behind in its process group has
	// after SIGTERM before SIGKILL; 0 means defaultGrace.
	grace time.Duration

	mu      sync.Mutex
	pid     int  // 0 while not running
	stopped bool // no more restarts
	exited  chan struct{}
}

// run keeps the service running until stop is called. It never returns
// before that.
func (s *service) run() {
	b := &backoff{min: 250 * time.Millisecond, max: 30 * time.Second, stable: time.Minute}
	for {
		began := time.Now()
		ws, err := s.once()
		if s.isStopped() {
			return
		}
		ran := time.Since(began)
		delay := b.next(ran)
		if err != nil {
			s.logf("%s: %v; retrying in %v", s.name, err, delay)
		} else {
			s.logf("%s: %s after %v; restarting in %v", s.name, describe(ws), ran.Round(time.Millisecond), delay)
		}
		time.Sleep(delay)
		if s.isStopped() {
			return
		}
	}
}

func (s *service) once() (unix.WaitStatus, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("output pipe: %w", err)
	}
	cmd := &exec.Cmd{
		Path:        s.path,
		Args:        s.args,
		Env:         s.env,
		Dir:         "/",
		Stdout:      pw,
		Stderr:      pw,
		SysProcAttr: &unix.SysProcAttr{Setpgid: true},
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		pr.Close()
		pw.Close()
		return 0, nil
	}
	done, err := s.r.start(func() (int, error) {
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		return cmd.Process.Pid, nil
	})
	pw.Close()
	if err != nil {
		s.mu.Unlock()
		pr.Close()
		return 0, fmt.Errorf("starting %s: %w", s.path, err)
	}
	s.pid = cmd.Process.Pid
	s.exited = make(chan struct{})
	s.mu.Unlock()

	copied := make(chan struct{})
	go func() {
		defer close(copied)
		io.Copy(io.MultiWriter(s.log, s.out), pr)
		pr.Close()
	}()
	ws := <-done
	// The reaper has waited; Release frees the process handle (a pidfd)
	// that Cmd.Wait would otherwise have closed.
	pid := cmd.Process.Pid
	cmd.Process.Release()
	// What the run started goes with it: the next run must not find the
	// last one's children holding its sockets, its TUN or its state.
	s.endGroup(pid)
	// Children that the service left behind in its group keep the pipe
	// open; do not wait on them for longer than a moment.
	select {
	case <-copied:
	case <-time.After(time.Second):
	}
	s.mu.Lock()
	s.pid = 0
	close(s.exited)
	s.mu.Unlock()
	return ws, nil
}

// defaultGrace is how long a run's leftovers have to exit on SIGTERM.
const defaultGrace = 5 * time.Second

// endGroup ends what is left in the process group pgid once its leader
// has exited: SIGTERM, and SIGKILL for whatever is still there after the
// grace period. The group's number cannot be reused while a member lives,
// so signalling it reaches only the run's own processes.
func (s *service) endGroup(pgid int) {
	if unix.Kill(-pgid, unix.SIGTERM) != nil {
		return // nothing left (ESRCH)
	}
	grace := s.grace
	if grace == 0 {
		grace = defaultGrace
	}
	if waitGroupGone(pgid, grace) {
		return
	}
	s.logf("%s: processes it left behind ignored SIGTERM for %v; killing them", s.name, grace)
	unix.Kill(-pgid, unix.SIGKILL)
	waitGroupGone(pgid, grace)
}

// waitGroupGone reports whether process group pgid has no members left
// (zombies aside) within d.
func waitGroupGone(pgid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if groupGone(pgid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupGone reports whether no live process is in group pgid. kill(2)
// still reaches a zombie, so members are looked up in /proc: a zombie
// waits for its parent (PID 1's reaper, or another process's wait), not
// for us.
func groupGone(pgid int) bool {
	if unix.Kill(-pgid, 0) != nil {
		return true
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if live, pgrp := procState(pid); live && pgrp == pgid {
			return false
		}
	}
	return true
}

// procState reads /proc/PID/stat: whether the process exists and is not
// a zombie, and its process group.
func procState(pid int) (live bool, pgrp int) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false, 0
	}
	// pid (comm) state ppid pgrp ...: comm may hold spaces and
	// parentheses, so the fields are read after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return false, 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 || f[0] == "Z" {
		return false, 0
	}
	pgrp, _ = strconv.Atoi(f[2])
	return true, pgrp
}

func (s *service) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// stop ends the restarts and sends sig to the service's process group;
// it returns a channel closed when the service has exited (at once if it
// was not running).
func (s *service) stop(sig unix.Signal) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.pid == 0 {
		c := make(chan struct{})
		close(c)
		return c
	}
	unix.Kill(-s.pid, sig)
	return s.exited
}

func describe(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exited with status %d", ws.ExitStatus())
	case ws.Signaled():
		return fmt.Sprintf("killed by %v", ws.Signal())
	}
	return fmt.Sprintf("ended (wait status %#x)", uint32(ws))
}
