package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Power implements localapi.ConfigBackend: it asks PID 1 to reboot or
// power off, which stops the services and syncs the disks first. Only
// when this daemon is the appliance's (PID 1 is gate's init): a daemon on
// an ordinary host must never signal the host's init.
func (d *Daemon) Power(ctx context.Context, action string) error {
	var sig unix.Signal
	switch action {
	case "reboot":
		sig = unix.SIGTERM
	case "poweroff":
		sig = unix.SIGUSR2
	default:
		return fmt.Errorf("power action %q: want reboot or poweroff", action)
	}
	if !d.opt.ManageNICs || os.Getppid() != 1 || !gateIsInit() {
		return errors.New("reboot and power off are for the appliance only")
	}
	d.opt.Logf("%s requested through the local API", action)
	return unix.Kill(1, sig)
}

// gateIsInit reports whether PID 1 is gate's own init (/init).
func gateIsInit() bool {
	b, err := os.ReadFile("/proc/1/cmdline")
	return err == nil && bytes.HasPrefix(b, []byte("/init\x00"))
}
