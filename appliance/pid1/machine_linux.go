package pid1

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mountAll mounts the early table. A target already mounted (EBUSY: the
// kernel mounts devtmpfs itself with CONFIG_DEVTMPFS_MOUNT on some
// kernels) counts as done.
func mountAll(ms []mount, logf func(string, ...any)) error {
	if err := checkMounts(ms); err != nil {
		return err
	}
	for _, m := range ms {
		if err := os.MkdirAll(m.target, 0o755); err != nil && !m.optional {
			return fmt.Errorf("making %s: %w", m.target, err)
		}
		err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data)
		switch {
		case err == nil, err == unix.EBUSY:
		case m.optional:
			logf("mount %s (%s): %v", m.target, m.fstype, err)
		default:
			return fmt.Errorf("mounting %s on %s: %w", m.fstype, m.target, err)
		}
	}
	return nil
}

// setHostname sets the hostname from, in order: the kernel command line
// (gate.hostname=), the state partition's hostname file, the image default.
func setHostname(p bootParams) (string, error) {
	name := p["hostname"]
	if name == "" {
		if b, err := os.ReadFile(filepath.Join(stateDir, "hostname")); err == nil {
			name = strings.TrimSpace(string(b))
		}
	}
	if name == "" {
		name = "gate"
	}
	if err := unix.Sethostname([]byte(name)); err != nil {
		return "", fmt.Errorf("setting hostname %q: %w", name, err)
	}
	return name, nil
}

// loopbackUp sets lo up: the daemon's local API is a unix socket, but
// programs expect 127.0.0.1 to answer.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket for lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("reading lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("setting lo up: %w", err)
	}
	return nil
}

const seedFile = "random-seed"

// seedRandom feeds the seed saved at the last boot into the kernel's pool
// and credits it, so that getrandom(2), which the daemon's key generation
// and TLS block on, does not wait for the jitter entropy collector (slow
// under emulation, and on clouds without virtio-rng). The seed is this
// node's own, written from getrandom and kept 0600 on its state partition,
// like systemd-random-seed's; the image never ships one. It returns the
// number of bits credited (0 on a first boot).
func seedRandom() (credited int, err error) {
	path := filepath.Join(stateDir, seedFile)
	seed, err := os.ReadFile(path)
	if err != nil || len(seed) == 0 {
		return 0, nil
	}
	// struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }
	info := make([]byte, 8+len(seed))
	binary.NativeEndian.PutUint32(info[0:], uint32(len(seed)*8))
	binary.NativeEndian.PutUint32(info[4:], uint32(len(seed)))
	copy(info[8:], seed)
	f, err := os.OpenFile("/dev/urandom", os.O_WRONLY, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.RNDADDENTROPY, uintptr(unsafe.Pointer(&info[0]))); e != 0 {
		return 0, fmt.Errorf("RNDADDENTROPY: %w", e)
	}
	// Never use the same seed twice, even if the next write fails.
	os.Remove(path)
	return len(seed) * 8, nil
}

// saveSeed writes a fresh seed for the next boot. getrandom blocks until the
// kernel's RNG is ready, so call it once the machine is up.
func saveSeed() error {
	seed := make([]byte, 512)
	if _, err := unix.Getrandom(seed, 0); err != nil {
		return fmt.Errorf("getrandom: %w", err)
	}
	tmp := filepath.Join(stateDir, seedFile+".tmp")
	if err := os.WriteFile(tmp, seed, 0o600); err != nil {
		return err
	}
	f, err := os.Open(tmp)
	if err == nil {
		f.Sync()
		f.Close()
	}
	return os.Rename(tmp, filepath.Join(stateDir, seedFile))
}
