package pid1

// The state partition.
//
// Keys, joined networks and NIC settings live on their own GPT partition,
// named "gate-state", formatted ext4 when the image is built (mkfs.ext4 on
// the partition's offset in image/). Why so:
//
//   - ext4 is built into Debian's cloud kernel (no module to carry), is
//     journaled, and gives the rename-and-fsync durability that
//     services/state relies on; FAT on the ESP would not (no atomic
//     rename over an existing file, corrupts on power loss).
//   - A partition of its own survives replacing the ESP's kernel and
//     initrd (an update rewrites the ESP only), and a user can preseed it
//     before upload by writing files into it.
//   - It is found by its GPT partition name, which the kernel reports in
//     the partition's uevent (PARTNAME=): no udev, no blkid, and the same
//     on virtio (vda2), NVMe (nvme0n1p2) and Xen (xvda2).
//   - PID 1 does not format it. Making ext4 needs mke2fs, a C program the
//     image does not carry, and a Go ext4 writer good enough to trust with
//     keys does not exist. The image ships the partition formatted, so a
//     fresh image needs no preparation; if it is missing or unreadable,
//     Gate runs from a tmpfs, says so loudly on the console, and a new
//     identity is made at each boot until the partition is fixed.

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const (
	stateDir      = "/var/lib/gate"
	statePartName = "gate-state"
)

// mountState mounts the state partition at /var/lib/gate, or a tmpfs there
// when there is none (gate.state=tmpfs forces it, for boots without a disk).
// It returns a line saying what was mounted.
func mountState(p bootParams, wait time.Duration) (string, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return "", fmt.Errorf("making %s: %w", stateDir, err)
	}
	var why string
	if p["state"] == "tmpfs" {
		why = "gate.state=tmpfs"
	} else {
		dev, err := findPartition(statePartName, wait)
		if err == nil {
			err = unix.Mount(dev, stateDir, "ext4", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
			if err == nil {
				return fmt.Sprintf("state partition %s on %s", dev, stateDir), nil
			}
			err = fmt.Errorf("mounting %s (ext4) on %s: %w", dev, stateDir, err)
		}
		why = err.Error()
	}
	if err := unix.Mount("tmpfs", stateDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0700"); err != nil {
		return "", fmt.Errorf("mounting tmpfs on %s: %w", stateDir, err)
	}
	return fmt.Sprintf("WARNING: state on tmpfs, nothing survives a reboot (%s)", why), nil
}

// findPartition waits up to wait for a block device whose GPT partition
// name is name. Disk drivers probe asynchronously (NVMe does), so the
// partition may appear a moment after the modules are loaded.
func findPartition(name string, wait time.Duration) (string, error) {
	deadline := time.Now().Add(wait)
	for {
		dev, err := partitionByName("/sys/class/block", name)
		if err == nil && dev != "" {
			return "/dev/" + dev, nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("no partition named %q after %v", name, wait)
			}
			return "", err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// partitionByName scans sysfs for the partition named name and returns its
// device name ("vda2"), or "" when there is none yet.
func partitionByName(sysBlock, name string) (string, error) {
	ents, err := os.ReadDir(sysBlock)
	if err != nil {
		return "", fmt.Errorf("listing block devices: %w", err)
	}
	for _, e := range ents {
		f, err := os.Open(filepath.Join(sysBlock, e.Name(), "uevent"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		sc := bufio.NewScanner(f)
		found := false
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "PARTNAME="); ok && v == name {
				found = true
			}
		}
		f.Close()
		if found {
			return e.Name(), nil
		}
	}
	return "", nil
}
