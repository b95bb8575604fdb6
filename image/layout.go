package image

import (
	"crypto/sha256"
	"fmt"
	"strings"
)

const mib = 1 << 20

// GPT partition type GUIDs.
const (
	typeESP   = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	typeLinux = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
)

// StatePartName is the state partition's GPT name, which PID 1 looks for.
const StatePartName = "gate-state"

// Layout is where the partitions are, in bytes. Everything is aligned to
// 1 MiB; the last MiB holds the backup GPT.
type Layout struct {
	Size                   int64
	ESPStart, ESPSize      int64
	StateStart, StateSize  int64
	DiskGUID               string
	ESPGUID, StateGUID     string
	ESPVolumeID, StateUUID string
	ContentID              uint32 // the VMDK's CID
}

// Minimum sizes: FAT32 needs 65525 clusters (32 MiB with 512-byte
// clusters) plus its FATs; mkfs.ext4 wants room for its journal.
const (
	minESP   = 40 * mib
	minState = 8 * mib
)

// NewLayout places an ESP of espMiB and a state partition filling the rest
// of a disk of sizeMiB. seed (a hash of the inputs) makes the GUIDs: the
// same inputs give the same image, and different builds different GUIDs.
func NewLayout(sizeMiB, espMiB int64, seed []byte) (Layout, error) {
	l := Layout{
		Size:     sizeMiB * mib,
		ESPStart: mib,
		ESPSize:  espMiB * mib,
	}
	l.StateStart = l.ESPStart + l.ESPSize
	l.StateSize = l.Size - mib - l.StateStart
	if l.ESPSize < minESP {
		return Layout{}, fmt.Errorf("ESP of %d MiB is too small for FAT32 (want at least %d)", espMiB, minESP/mib)
	}
	if l.StateSize < minState {
		return Layout{}, fmt.Errorf("a %d MiB disk leaves %d MiB for the state partition after a %d MiB ESP (want at least %d)",
			sizeMiB, l.StateSize/mib, espMiB, minState/mib)
	}
	l.DiskGUID = guid(seed, "disk")
	l.ESPGUID = guid(seed, "esp")
	l.StateGUID = guid(seed, "state")
	l.StateUUID = strings.ToLower(guid(seed, "state-fs"))
	c := sha256.Sum256(append(append([]byte(nil), seed...), "vmdk-cid"...))
	l.ContentID = uint32(c[0])<<24 | uint32(c[1])<<16 | uint32(c[2])<<8 | uint32(c[3])
	l.ESPVolumeID = strings.ToUpper(fmt.Sprintf("%x", sha256.Sum256(append(append([]byte(nil), seed...), "esp-vol"...)))[:8])
	return l, nil
}

// SfdiskScript is the partition table for sfdisk(8).
func (l Layout) SfdiskScript() string {
	const sector = 512
	var b strings.Builder
	fmt.Fprintf(&b, "label: gpt\nlabel-id: %s\nunit: sectors\nfirst-lba: 2048\n", l.DiskGUID)
	fmt.Fprintf(&b, "start=%d, size=%d, type=%s, uuid=%s, name=\"EFI System\", attrs=\"LegacyBIOSBootable\"\n",
		l.ESPStart/sector, l.ESPSize/sector, typeESP, l.ESPGUID)
	fmt.Fprintf(&b, "start=%d, size=%d, type=%s, uuid=%s, name=\"%s\"\n",
		l.StateStart/sector, l.StateSize/sector, typeLinux, l.StateGUID, StatePartName)
	return b.String()
}

// guid makes an RFC 4122 version 4 style GUID from a hash of seed and what.
func guid(seed []byte, what string) string {
	h := sha256.Sum256(append(append(append([]byte(nil), seed...), 0), what...))
	h[6] = h[6]&0x0f | 0x40
	h[8] = h[8]&0x3f | 0x80
	return strings.ToUpper(fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16]))
}
