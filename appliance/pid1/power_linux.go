package pid1

import (
	"encoding/binary"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// powerAction is what PID 1 was asked to do with the machine.
type powerAction struct {
	cmd int // unix.LINUX_REBOOT_CMD_POWER_OFF or _RESTART
	why string
}

func (a powerAction) String() string {
	if a.cmd == unix.LINUX_REBOOT_CMD_RESTART {
		return "reboot"
	}
	return "power off"
}

// watchPower turns the requests to stop the machine into actions on ch.
// Signals follow busybox init's convention (SIGTERM reboots, SIGUSR2 and
// SIGPWR power off); Ctrl-Alt-Del arrives as SIGINT once PID 1 has
// disabled the kernel's immediate reboot; and the ACPI power button, which
// is what a cloud's "power off" and QEMU's system_powerdown press, arrives
// as an input event.
func watchPower(ch chan<- powerAction, logf func(string, ...any)) {
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF); err != nil {
		logf("disabling Ctrl-Alt-Del reboot: %v", err)
	}
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, unix.SIGTERM, unix.SIGINT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGPWR)
	go func() {
		for s := range sig {
			switch s {
			case unix.SIGTERM, unix.SIGINT:
				ch <- powerAction{unix.LINUX_REBOOT_CMD_RESTART, s.String()}
			default:
				ch <- powerAction{unix.LINUX_REBOOT_CMD_POWER_OFF, s.String()}
			}
		}
	}()
	for _, dev := range powerButtons() {
		go readPowerButton(dev, ch, logf)
	}
}

// powerButtons lists the event devices that the ACPI button driver made
// (named "Power Button"; there may be two, the fixed and the PNP0C0C one).
func powerButtons() []string {
	names, _ := filepath.Glob("/sys/class/input/event*/device/name")
	var devs []string
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil || strings.TrimSpace(string(b)) != "Power Button" {
			continue
		}
		devs = append(devs, "/dev/input/"+filepath.Base(filepath.Dir(filepath.Dir(n))))
	}
	return devs
}

// readPowerButton reads struct input_event (a 16-byte timeval, then
// __u16 type, __u16 code, __s32 value on 64-bit) and reports a press of
// KEY_POWER.
func readPowerButton(dev string, ch chan<- powerAction, logf func(string, ...any)) {
	var f *os.File
	var err error
	// devtmpfs makes the node as the device registers; give it a moment.
	for i := 0; i < 50; i++ {
		if f, err = os.Open(dev); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		logf("power button %s: %v", dev, err)
		return
	}
	defer f.Close()
	const (
		evKey    = 1
		keyPower = 116
	)
	ev := make([]byte, 24)
	for {
		if _, err := readFull(f, ev); err != nil {
			logf("power button %s: %v", dev, err)
			return
		}
		typ := binary.NativeEndian.Uint16(ev[16:])
		code := binary.NativeEndian.Uint16(ev[18:])
		value := int32(binary.NativeEndian.Uint32(ev[20:]))
		if typ == evKey && code == keyPower && value == 1 {
			ch <- powerAction{unix.LINUX_REBOOT_CMD_POWER_OFF, "power button"}
		}
	}
}

func readFull(f *os.File, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := f.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// shutdown stops the services (SIGTERM, then SIGKILL after a grace
// period), ends every other process, syncs and unmounts the filesystems,
// and asks the kernel to power off or reboot. It does not return.
func shutdown(a powerAction, svcs []*service, c *consoles) {
	c.logf("%s (%s): stopping services", a, a.why)
	for _, s := range svcs {
		done := s.stop(unix.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			c.logf("%s did not stop in 10s; killing it", s.name)
			<-s.stop(unix.SIGKILL)
		}
	}
	// Whatever else runs (orphans, leftovers) gets the same treatment.
	unix.Kill(-1, unix.SIGTERM)
	time.Sleep(200 * time.Millisecond)
	unix.Kill(-1, unix.SIGKILL)
	unix.Sync()
	if err := unix.Unmount(stateDir, 0); err != nil {
		c.logf("unmounting %s: %v; remounting read-only", stateDir, err)
		unix.Mount("", stateDir, "", unix.MS_REMOUNT|unix.MS_RDONLY, "")
	}
	ms := earlyMounts()
	for i := len(ms) - 1; i >= 0; i-- {
		// /dev, /proc and /sys stay busy (our own consoles are open on
		// /dev); they are in memory and lose nothing.
		unix.Unmount(ms[i].target, unix.MNT_DETACH)
	}
	unix.Sync()
	c.logf("%s", a)
	for {
		if err := unix.Reboot(a.cmd); err != nil {
			c.logf("reboot(2): %v", err)
		}
		time.Sleep(time.Second)
	}
}
