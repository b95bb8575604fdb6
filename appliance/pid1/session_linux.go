package pid1

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Console sessions: the console program (gate tui) on each console the
// kernel was given. On the VGA console (tty0, shown on tty1) it starts as
// soon as the appliance is ready: that is where a cloud's recovery console
// looks. On a serial console it starts when someone presses Enter, as a
// getty would: until then the line carries the boot log and the
// machine-readable lines that tests and cloud serial logs read, and after
// the program quits it does again. While a session runs, PID 1 writes no
// log lines to that console (the program shows the log itself).

// sessionTTY maps a kernel console name to the terminal to run on and its
// TERM: tty0 means "the foreground VT", which is tty1 at boot.
func sessionTTY(console string) (dev, term string, serial bool) {
	switch {
	case console == "tty0":
		return "/dev/tty1", "linux", false
	case strings.HasPrefix(console, "ttyS"):
		return "/dev/" + console, "vt100", true
	case strings.HasPrefix(console, "tty"):
		return "/dev/" + console, "linux", false
	}
	return "", "", false
}

// startSessions runs a session loop on every console; it returns at once.
func startSessions(c *consoles, r *reaper) {
	for _, name := range c.active() {
		dev, term, serial := sessionTTY(name)
		if dev == "" {
			continue
		}
		go sessionLoop(c, r, name, dev, term, serial)
	}
}

func sessionLoop(c *consoles, r *reaper, name, dev, term string, serial bool) {
	b := &backoff{min: time.Second, max: 30 * time.Second, stable: time.Minute}
	for {
		if serial {
			fmt.Fprintf(c, "gate: press Enter on %s for the console\n", name)
			if err := waitForEnter(dev); err != nil {
				c.logf("console %s: %v", name, err)
				time.Sleep(b.next(0))
				continue
			}
		}
		c.mute(name, true)
		began := time.Now()
		err := runSession(r, dev, term)
		c.mute(name, false)
		ran := time.Since(began)
		if err != nil {
			c.logf("console on %s: %v", dev, err)
		}
		if !serial || err != nil {
			time.Sleep(b.next(ran))
		}
	}
}

// waitForEnter blocks until a line arrives on the terminal.
func waitForEnter(dev string) error {
	f, err := os.OpenFile(dev, os.O_RDONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 64)
	for {
		n, err := f.Read(buf)
		if err != nil {
			return err
		}
		if strings.ContainsAny(string(buf[:n]), "\r\n") {
			return nil
		}
	}
}

// runSession runs gate tui on dev as the leader of a new session with dev
// as its controlling terminal, and waits for it to end.
func runSession(r *reaper, dev, term string) error {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{"gate", "tui", "--socket", socket},
		Env:         []string{"TERM=" + term, "HOME=/", "PATH=" + os.Getenv("PATH")},
		Dir:         "/",
		Stdin:       f,
		Stdout:      f,
		Stderr:      f,
		SysProcAttr: &unix.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0},
	}
	done, err := r.start(func() (int, error) {
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		return cmd.Process.Pid, nil
	})
	if err != nil {
		return fmt.Errorf("starting the console: %w", err)
	}
	ws := <-done
	cmd.Process.Release()
	if ws.Exited() && ws.ExitStatus() == 0 {
		return nil
	}
	return fmt.Errorf("the console program %s", describe(ws))
}
