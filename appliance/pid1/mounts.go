package pid1

import (
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// mount is one line of the early mount table.
type mount struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
	// optional mounts may fail (a kernel without cgroup2, say) without
	// anything more than a log line.
	optional bool
}

// earlyMounts is what the kernel leaves to init. The initramfs root itself
// stays as it is: Gate runs from it and never switches root.
func earlyMounts() []mount {
	const common = unix.MS_NOSUID | unix.MS_NODEV
	return []mount{
		{source: "proc", target: "/proc", fstype: "proc", flags: common | unix.MS_NOEXEC},
		{source: "sysfs", target: "/sys", fstype: "sysfs", flags: common | unix.MS_NOEXEC},
		{source: "devtmpfs", target: "/dev", fstype: "devtmpfs", flags: unix.MS_NOSUID, data: "mode=0755"},
		{source: "devpts", target: "/dev/pts", fstype: "devpts", flags: unix.MS_NOSUID | unix.MS_NOEXEC, data: "mode=0620,ptmxmode=0666"},
		{source: "tmpfs", target: "/dev/shm", fstype: "tmpfs", flags: common, data: "mode=1777", optional: true},
		{source: "tmpfs", target: "/run", fstype: "tmpfs", flags: common, data: "mode=0755"},
		{source: "tmpfs", target: "/tmp", fstype: "tmpfs", flags: common, data: "mode=1777"},
		{source: "cgroup2", target: "/sys/fs/cgroup", fstype: "cgroup2", flags: common | unix.MS_NOEXEC, optional: true},
	}
}

// checkMounts verifies a mount table: absolute clean targets, no
// duplicates, and every mount below an earlier one comes after it (/dev
// before /dev/pts), since each mount hides what was under its target.
func checkMounts(ms []mount) error {
	seen := map[string]bool{}
	for i, m := range ms {
		if m.target == "" || !path.IsAbs(m.target) || path.Clean(m.target) != m.target || m.target == "/" {
			return fmt.Errorf("mount %d: target %q must be an absolute clean path below /", i, m.target)
		}
		if m.fstype == "" {
			return fmt.Errorf("mount %s: no filesystem type", m.target)
		}
		if seen[m.target] {
			return fmt.Errorf("mount %s: listed twice", m.target)
		}
		for _, later := range ms[i+1:] {
			if strings.HasPrefix(m.target, later.target+"/") {
				return fmt.Errorf("mount %s: comes before its parent %s", m.target, later.target)
			}
		}
		seen[m.target] = true
	}
	return nil
}
