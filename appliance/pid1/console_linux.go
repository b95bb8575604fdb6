package pid1

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// consoles writes to every console the kernel was given (console=tty0
// console=ttyS0,115200 gives both). /dev/console alone would reach only
// the last one, and a cloud's serial log and its VGA screenshot must both
// show the ready line.
type consoles struct {
	mu    sync.Mutex
	out   []io.Writer
	names []string        // the kernel's names of out (tty0, ttyS0), "" for stdout
	muted map[string]bool // consoles a console session owns: no log lines there
}

// openConsoles opens the active consoles listed by the kernel, or falls
// back to the stdout the kernel gave init (/dev/console).
func openConsoles() *consoles {
	c := &consoles{}
	b, err := os.ReadFile("/sys/class/tty/console/active")
	if err == nil {
		for _, name := range strings.Fields(string(b)) {
			f, err := os.OpenFile("/dev/"+name, os.O_WRONLY|unix.O_NOCTTY, 0)
			if err != nil {
				continue
			}
			c.out = append(c.out, f)
			c.names = append(c.names, name)
		}
	}
	if len(c.out) == 0 {
		c.out = []io.Writer{os.Stdout}
		c.names = []string{""}
	}
	return c
}

// active returns the names of the consoles.
func (c *consoles) active() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, n := range c.names {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

// mute stops (or resumes) log lines on one console, while the console
// program owns the screen: a stray line would tear its layout.
func (c *consoles) mute(name string, on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.muted == nil {
		c.muted = map[string]bool{}
	}
	c.muted[name] = on
}

// Write writes p to every console; a console that fails is skipped, so a
// broken VGA never blocks the serial log.
func (c *consoles) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, w := range c.out {
		if !c.muted[c.names[i]] {
			w.Write(p)
		}
	}
	return len(p), nil
}

// logf prints one "gate: ..." line on every console with the time since
// boot, like the kernel's own lines.
func (c *consoles) logf(format string, args ...any) {
	fmt.Fprintf(c, "[%8.3f] gate: %s\n", uptime().Seconds(), fmt.Sprintf(format, args...))
}

// uptime is the time since the kernel started (CLOCK_BOOTTIME, which
// /proc/uptime shows), the figure the boot tests report. It reads the clock
// rather than /proc, which is gone late in a shutdown.
func uptime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
