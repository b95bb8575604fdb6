package image

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// Convert writes the cloud formats of out/gate.raw beside it:
// gate.raw.gz (DigitalOcean custom images take gzip, not xz), gate.qcow2,
// and gate.vmdk, stream-optimized as AWS VM Import wants it.
// cid seeds the VMDK's content ID (see setVMDKContentID).
func Convert(ctx context.Context, outDir string, cid uint32) error {
	raw := filepath.Join(outDir, "gate.raw")
	if err := gzipFile(raw, raw+".gz"); err != nil {
		return fmt.Errorf("compressing %s: %w", raw, err)
	}
	for _, c := range [][]string{
		{"convert", "-q", "-f", "raw", "-O", "qcow2", "-c", raw, filepath.Join(outDir, "gate.qcow2")},
		{"convert", "-q", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, filepath.Join(outDir, "gate.vmdk")},
	} {
		if out, err := exec.CommandContext(ctx, "qemu-img", c...).CombinedOutput(); err != nil {
			return fmt.Errorf("qemu-img %q: %w\n%s", c, err, out)
		}
	}
	return setVMDKContentID(filepath.Join(outDir, "gate.vmdk"), cid)
}

// gzipFile compresses with no name or time in the header, so that the same
// raw image gives the same bytes.
func gzipFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	zw, err := gzip.NewWriterLevel(out, gzip.BestCompression)
	if err != nil {
		out.Close()
		return err
	}
	if _, err := io.Copy(zw, in); err != nil {
		out.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// Manifest describes a build: what went in and what came out.
type Manifest struct {
	Version string     `json:"version"`
	Kernel  KernelInfo `json:"kernel"`
	Cmdline string     `json:"cmdline"`
	Layout  LayoutInfo `json:"layout"`
	Inputs  []FileInfo `json:"inputs"`
	Files   []FileInfo `json:"files"`
	Boot    []string   `json:"boot"`
}

// KernelInfo is the Debian kernel in the image.
type KernelInfo struct {
	Release string `json:"release"`
	Package string `json:"package"`
}

// LayoutInfo is the partition table, in bytes.
type LayoutInfo struct {
	DiskBytes  int64  `json:"disk_bytes"`
	DiskGUID   string `json:"disk_guid"`
	ESPOffset  int64  `json:"esp_offset"`
	ESPBytes   int64  `json:"esp_bytes"`
	StateName  string `json:"state_partition_name"`
	StateOff   int64  `json:"state_offset"`
	StateBytes int64  `json:"state_bytes"`
	StateFS    string `json:"state_fs"`
	StateUUID  string `json:"state_fs_uuid"`
}

// FileInfo is one file's size and hash.
type FileInfo struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Describe hashes a file for the manifest.
func Describe(path string) (FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return FileInfo{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return FileInfo{}, fmt.Errorf("hashing %s: %w", path, err)
	}
	return FileInfo{Name: filepath.Base(path), Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// WriteManifest writes manifest.json for a build in outDir.
func WriteManifest(outDir string, s Spec, l Layout) (Manifest, error) {
	m := Manifest{
		Version: s.Version,
		Kernel:  KernelInfo{Release: s.KernelRelease, Package: s.KernelPackage},
		Cmdline: s.Cmdline,
		Layout: LayoutInfo{
			DiskBytes: l.Size, DiskGUID: l.DiskGUID,
			ESPOffset: l.ESPStart, ESPBytes: l.ESPSize,
			StateName: StatePartName, StateOff: l.StateStart, StateBytes: l.StateSize,
			StateFS: "ext4", StateUUID: l.StateUUID,
		},
		Boot: []string{"bios: gptmbr.bin + syslinux on the ESP (LegacyBIOSBootable)", "uefi: systemd-boot as \\EFI\\BOOT\\BOOTX64.EFI"},
	}
	if m.Cmdline == "" {
		m.Cmdline = DefaultCmdline
	}
	for _, in := range []string{s.Kernel, s.Initrd} {
		fi, err := Describe(in)
		if err != nil {
			return m, err
		}
		m.Inputs = append(m.Inputs, fi)
	}
	for _, name := range []string{"gate.raw", "gate.raw.gz", "gate.qcow2", "gate.vmdk"} {
		fi, err := Describe(filepath.Join(outDir, name))
		if err != nil {
			return m, err
		}
		m.Files = append(m.Files, fi)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, err
	}
	return m, os.WriteFile(filepath.Join(outDir, "manifest.json"), append(b, '\n'), 0o644)
}
