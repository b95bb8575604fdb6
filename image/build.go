package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// DefaultCmdline is the kernel command line of both boot loaders: both
// consoles (the cloud's serial log and its VGA screenshot), and a reboot
// 10 s after a kernel panic rather than a hung instance.
const DefaultCmdline = "console=tty0 console=ttyS0,115200 panic=10"

// Tools are the files the build takes from Debian packages.
type Tools struct {
	GPTMBR      string // syslinux-common: the BIOS boot code for GPT disks
	SystemdBoot string // systemd-boot-efi: the UEFI boot loader
}

// DefaultTools are Debian bookworm's paths.
var DefaultTools = Tools{
	GPTMBR:      "/usr/lib/syslinux/mbr/gptmbr.bin",
	SystemdBoot: "/usr/lib/systemd/boot/efi/systemd-bootx64.efi",
}

// Spec says what to build.
type Spec struct {
	Kernel, Initrd string // vmlinuz and the initramfs
	KernelRelease  string // e.g. 6.1.0-56-cloud-amd64
	KernelPackage  string // the Debian package and version it came from
	Version        string // Gate's version
	Cmdline        string // DefaultCmdline if empty
	SizeMiB        int64  // the whole disk
	ESPMiB         int64
	OutDir         string
	Tools          Tools
	// Epoch is the time stamped on files and filesystems
	// (SOURCE_DATE_EPOCH); 0 means 2024-01-01.
	Epoch int64
	Logf  func(format string, args ...any)
}

// Build writes gate.raw into the output directory and returns its layout.
func Build(ctx context.Context, s Spec) (Layout, error) {
	if s.Cmdline == "" {
		s.Cmdline = DefaultCmdline
	}
	if s.Epoch == 0 {
		s.Epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	}
	if s.Logf == nil {
		s.Logf = func(string, ...any) {}
	}
	seed, err := inputsHash(s)
	if err != nil {
		return Layout{}, err
	}
	l, err := NewLayout(s.SizeMiB, s.ESPMiB, seed)
	if err != nil {
		return Layout{}, err
	}
	tmp, err := os.MkdirTemp(s.OutDir, ".image-")
	if err != nil {
		return Layout{}, err
	}
	defer os.RemoveAll(tmp)
	b := &builder{ctx: ctx, s: s, l: l, tmp: tmp, raw: filepath.Join(tmp, "gate.raw")}
	for _, step := range []struct {
		what string
		do   func() error
	}{
		{"partition table", b.partition},
		{"ESP", b.esp},
		{"BIOS boot", b.bios},
		{"state partition", b.state},
	} {
		s.Logf("image: %s", step.what)
		if err := step.do(); err != nil {
			return Layout{}, fmt.Errorf("image %s: %w", step.what, err)
		}
	}
	if err := os.Rename(b.raw, filepath.Join(s.OutDir, "gate.raw")); err != nil {
		return Layout{}, err
	}
	return l, nil
}

type builder struct {
	ctx context.Context
	s   Spec
	l   Layout
	tmp string
	raw string
}

func (b *builder) partition() error {
	f, err := os.Create(b.raw)
	if err != nil {
		return err
	}
	if err := f.Truncate(b.l.Size); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return b.run(b.l.SfdiskScript(), "sfdisk", "-q", "--no-reread", "--no-tell-kernel", b.raw)
}

// esp formats the FAT32 ESP and copies the kernel, the initrd and both
// boot loaders' files into it.
func (b *builder) esp() error {
	sector := strconv.FormatInt(b.l.ESPStart/512, 10)
	if err := b.run("", "mkfs.vfat", "-F", "32", "-n", "GATE", "-i", b.l.ESPVolumeID, "--invariant",
		"--offset", sector, "-h", sector, b.raw, strconv.FormatInt(b.l.ESPSize/1024, 10)); err != nil {
		return err
	}
	stage := filepath.Join(b.tmp, "esp")
	boot := fmt.Sprintf("linux /vmlinuz\ninitrd /initrd\noptions %s\n", b.s.Cmdline)
	files := []struct {
		path string
		from string // a file to copy, or
		text string // the file's text
	}{
		{path: "vmlinuz", from: b.s.Kernel},
		{path: "initrd", from: b.s.Initrd},
		{path: "syslinux.cfg", text: fmt.Sprintf("SERIAL 0 115200\nDEFAULT gate\nPROMPT 0\nTIMEOUT 0\nLABEL gate\n  LINUX /vmlinuz\n  INITRD /initrd\n  APPEND %s\n", b.s.Cmdline)},
		{path: "EFI/BOOT/BOOTX64.EFI", from: b.s.Tools.SystemdBoot},
		{path: "loader/loader.conf", text: "default gate.conf\ntimeout 0\neditor no\nconsole-mode keep\n"},
		{path: "loader/entries/gate.conf", text: fmt.Sprintf("title Gate %s\nversion %s\n%s", b.s.Version, b.s.Version, boot)},
	}
	mtime := time.Unix(b.s.Epoch, 0)
	img := fmt.Sprintf("%s@@%d", b.raw, b.l.ESPStart)
	for _, d := range []string{"::/EFI", "::/EFI/BOOT", "::/loader", "::/loader/entries"} {
		if err := b.run("", "mmd", "-i", img, d); err != nil {
			return err
		}
	}
	for _, f := range files {
		p := filepath.Join(stage, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		data := []byte(f.text)
		if f.from != "" {
			var err error
			if data, err = os.ReadFile(f.from); err != nil {
				return err
			}
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			return err
		}
		if err := b.run("", "mcopy", "-i", img, "-m", p, "::/"+f.path); err != nil {
			return err
		}
	}
	return nil
}

// bios installs syslinux into the ESP's boot sector (through mtools, no
// mount) and gptmbr.bin's 440 bytes of boot code into the protective MBR.
func (b *builder) bios() error {
	if err := b.run("", "syslinux", "--offset", strconv.FormatInt(b.l.ESPStart, 10), "--install", b.raw); err != nil {
		return err
	}
	mbr, err := os.ReadFile(b.s.Tools.GPTMBR)
	if err != nil {
		return fmt.Errorf("reading gptmbr.bin (apt-get install syslinux-common): %w", err)
	}
	if len(mbr) < 440 {
		return fmt.Errorf("%s: %d bytes, want at least 440", b.s.Tools.GPTMBR, len(mbr))
	}
	f, err := os.OpenFile(b.raw, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(mbr[:440], 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// state formats the state partition ext4. It starts empty: PID 1 mounts
// it and the daemon makes the node's keys on first boot (services/state
// tightens the root directory to 0700). Nothing is copied in with -d, whose
// inodes would carry the build machine's ctimes and break reproducibility.
func (b *builder) state() error {
	return b.run("", "mkfs.ext4", "-q", "-F", "-L", StatePartName, "-U", b.l.StateUUID, "-m", "0",
		"-E", fmt.Sprintf("offset=%d,hash_seed=%s,root_owner=0:0", b.l.StateStart, b.l.StateUUID),
		b.raw, strconv.FormatInt(b.l.StateSize/1024, 10)+"k")
}

// run runs a tool with the build's fixed time, and returns its output with
// the error when it fails.
func (b *builder) run(stdin string, name string, args ...string) error {
	cmd := exec.CommandContext(b.ctx, name, args...)
	cmd.Env = append(os.Environ(),
		"MTOOLS_SKIP_CHECK=1",
		"SOURCE_DATE_EPOCH="+strconv.FormatInt(b.s.Epoch, 10),
		"E2FSPROGS_FAKE_TIME="+strconv.FormatInt(b.s.Epoch, 10),
		"TZ=UTC",
	)
	cmd.Stdin = bytes.NewBufferString(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, lookErr := exec.LookPath(name); lookErr != nil {
			return fmt.Errorf("%s not found (make image installs it): %w", name, lookErr)
		}
		return fmt.Errorf("%s %q: %w\n%s", name, args, err, out)
	}
	return nil
}

// inputsHash hashes what goes into the image; it seeds the GUIDs.
func inputsHash(s Spec) ([]byte, error) {
	h := sha256.New()
	for _, f := range []string{s.Kernel, s.Initrd} {
		r, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(h, r)
		r.Close()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f, err)
		}
	}
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d\x00", s.Version, s.Cmdline, s.SizeMiB, s.ESPMiB)
	return h.Sum(nil), nil
}
