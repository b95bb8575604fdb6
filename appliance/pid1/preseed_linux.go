package pid1

// The preseed file.
//
// A user configures an image before uploading it by putting a preseed
// document (services/nodeconfig's format, YAML or JSON) on the ESP, the
// image's FAT partition: any OS can write FAT, and mtools can without
// mounting anything (mcopy -i gate.raw@@1M gate-preseed.yaml ::). PID 1
// copies it to /run/gate, where `gate up --preseed` reads it: its
// interfaces are static NIC settings, its networks are joined at the
// first boot. The ESP is mounted read-only for the copy and unmounted at
// once, so it is never left open to a power cut.

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

const (
	espPartName = "EFI System" // the ESP's GPT name (image/layout.go)
	espMount    = "/run/gate/esp"
)

// preseedNames are the file names looked for at the ESP's root, in order.
var preseedNames = []string{"gate-preseed.yaml", "gate-preseed.yml", "gate-preseed.json"}

// copyPreseed copies the ESP's preseed file to /run/gate and returns its
// new path ("" when there is none) and a line saying what happened.
func copyPreseed(wait time.Duration) (path, msg string, err error) {
	dev, err := findPartition(espPartName, wait)
	if err != nil {
		return "", "", fmt.Errorf("no ESP (%v): no preseed", err)
	}
	if err := os.MkdirAll(espMount, 0o700); err != nil {
		return "", "", err
	}
	if err := unix.Mount(dev, espMount, "vfat", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return "", "", fmt.Errorf("mounting the ESP %s read-only: %w", dev, err)
	}
	defer func() {
		if uerr := unix.Unmount(espMount, 0); uerr != nil && err == nil {
			err = fmt.Errorf("unmounting the ESP: %w", uerr)
		}
	}()
	for _, name := range preseedNames {
		b, rerr := os.ReadFile(filepath.Join(espMount, name))
		if rerr != nil {
			continue
		}
		path = filepath.Join("/run/gate", name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return "", "", err
		}
		return path, fmt.Sprintf("preseed %s found on the ESP (%d bytes)", name, len(b)), nil
	}
	return "", "no preseed file on the ESP", nil
}
