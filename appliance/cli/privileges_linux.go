package cli

import (
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dropCapabilities gives up every capability of the process, in every
// thread, and forbids gaining new ones: the console then cannot change the
// network even as root, yet still reaches the daemon's socket (the file's
// owner needs no capability to open it). Capabilities are per thread in
// Linux; AllThreadsSyscall applies the change to all of the Go runtime's.
func dropCapabilities() error {
	// no_new_privs too is a per-thread attribute.
	if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); e != 0 {
		if e == unix.ENOTSUP {
			return fmt.Errorf("dropping capabilities needs a build without cgo (CGO_ENABLED=0)")
		}
		return fmt.Errorf("no_new_privs: %w", e)
	}
	for c := 0; c <= unix.CAP_LAST_CAP; c++ {
		// Also clear the bounding set, so nothing executed later regains
		// them. EINVAL: a capability this kernel does not know.
		_, _, e := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0)
		if e == unix.ENOTSUP {
			// The Go runtime cannot change all threads when cgo is
			// linked in; Gate is built without it (CGO_ENABLED=0).
			return fmt.Errorf("dropping capabilities needs a build without cgo (CGO_ENABLED=0)")
		}
		if e != 0 && e != unix.EINVAL {
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, e)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		return fmt.Errorf("capset: %w", e)
	}
	return nil
}
