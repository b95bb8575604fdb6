// Package initramfs assembles the appliance's initramfs: a newc cpio
// archive, gzip-compressed, holding the gate binary as /init, a /dev/console
// node (so that the kernel can give init its stdio before devtmpfs is
// mounted), the kernel modules Gate needs with their modules.dep closure,
// and the CA certificates. Nothing else: no shell, no busybox; PID 1
// (appliance/pid1) does everything in Go.
//
// The archive is reproducible: entries are sorted by name, parents before
// children, with fixed times, owners and inode numbers, and the gzip header
// carries no time or name, so the same inputs give the same bytes.
//
// It uses u-root's pkg/cpio for the format. It reads files from the build
// machine and writes a stream; it never runs anything.
package initramfs

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/u-root/u-root/pkg/cpio"
	"github.com/ulikunitz/xz"

	"github.com/gatenet/gate/initramfs/moddep"
)

// DefaultModules are the modules Gate needs that Debian's cloud kernel
// builds as modules (nvme, ext4 and the 8250 serial port are built in).
// Their dependencies come along from modules.dep.
var DefaultModules = []string{
	// Disks and NICs: KVM clouds (DigitalOcean, OpenStack), AWS Nitro (ena;
	// NVMe is built in) and AWS Xen instances (ENODEV elsewhere, ignored).
	"virtio_pci", "virtio_net", "virtio_blk", "virtio_scsi", "sd_mod",
	"ena", "xen_netfront", "xen_blkfront",
	// Entropy from the host, when it offers virtio-rng.
	"virtio_rng",
	// The WireGuard dataplane is wireguard-go on a TUN device.
	"tun",
	// The firewall: nf_tables with conntrack (ct state), limit, NAT and
	// masquerade.
	"nf_tables", "nf_conntrack", "nf_nat", "nft_ct", "nft_limit",
	"nft_nat", "nft_masq", "nft_chain_nat",
	// The ESP, for reading a preseed or updating the kernel.
	"vfat", "nls_cp437", "nls_ascii",
	// The ACPI power button, which a cloud's "power off" presses, read
	// through evdev.
	"button", "evdev",
}

// Spec says what goes into the initramfs.
type Spec struct {
	Init          string   // the gate binary, installed as /init
	KernelRelease string   // e.g. 6.1.0-56-cloud-amd64
	ModulesDir    string   // the kernel's lib/modules/<release>, with modules.dep
	Modules       []string // module names; their closure is included
	CACerts       string   // a PEM bundle, installed as /etc/ssl/certs/ca-certificates.crt ("" for none)
	Version       string   // written to /etc/os-release
}

// Summary describes what Build wrote.
type Summary struct {
	Modules      []string // module files, in load order
	ModulesBytes int64    // their size, uncompressed
	Files        int      // records in the archive, directories included
}

// entry is a file of the archive before it is written.
type entry struct {
	info cpio.Info
	data []byte
}

// Build writes the gzip-compressed archive to w.
func Build(w io.Writer, s Spec) (Summary, error) {
	var sum Summary
	files := map[string]entry{}
	add := func(name string, mode uint64, data []byte) {
		files[name] = entry{info: cpio.Info{Name: name, Mode: mode, FileSize: uint64(len(data))}, data: data}
	}

	initBin, err := os.ReadFile(s.Init)
	if err != nil {
		return sum, fmt.Errorf("reading the init binary: %w", err)
	}
	add("init", cpio.S_IFREG|0o755, initBin)
	files["dev/console"] = entry{info: cpio.Info{Name: "dev/console", Mode: cpio.S_IFCHR | 0o600, Rmajor: 5, Rminor: 1}}
	for _, d := range []string{"proc", "sys", "run", "tmp", "var/lib/gate", "etc/ssl/certs"} {
		add(d, cpio.S_IFDIR|0o755, nil)
	}
	add("etc/hosts", cpio.S_IFREG|0o644, []byte("127.0.0.1\tlocalhost\n::1\tlocalhost\n"))
	add("etc/os-release", cpio.S_IFREG|0o644, []byte(fmt.Sprintf("NAME=Gate\nID=gate\nVERSION=%s\nPRETTY_NAME=\"Gate %s\"\n", s.Version, s.Version)))
	if s.CACerts != "" {
		pem, err := os.ReadFile(s.CACerts)
		if err != nil {
			return sum, fmt.Errorf("reading CA certificates: %w", err)
		}
		add("etc/ssl/certs/ca-certificates.crt", cpio.S_IFREG|0o644, pem)
	}

	if s.ModulesDir != "" {
		mods, depFile, err := moduleClosure(s.ModulesDir, s.Modules)
		if err != nil {
			return sum, err
		}
		base := path.Join("lib/modules", s.KernelRelease)
		add(path.Join(base, "modules.dep"), cpio.S_IFREG|0o644, depFile)
		for _, m := range mods {
			data, err := readModule(filepath.Join(s.ModulesDir, m))
			if err != nil {
				return sum, err
			}
			add(path.Join(base, uncompressedName(m)), cpio.S_IFREG|0o644, data)
			sum.ModulesBytes += int64(len(data))
			sum.Modules = append(sum.Modules, uncompressedName(m))
		}
	}

	recs := records(files)
	sum.Files = len(recs)
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return sum, err
	}
	cw := cpio.Newc.Writer(zw)
	for _, r := range recs {
		if err := cw.WriteRecord(r); err != nil {
			return sum, fmt.Errorf("writing %s: %w", r.Name, err)
		}
	}
	if err := cpio.WriteTrailer(cw); err != nil {
		return sum, fmt.Errorf("writing the cpio trailer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return sum, fmt.Errorf("compressing: %w", err)
	}
	return sum, nil
}

// records adds the missing parent directories and returns the archive's
// records in name order (a parent sorts before its children), with fixed
// metadata.
func records(files map[string]entry) []cpio.Record {
	for name := range files {
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			if _, ok := files[d]; !ok {
				files[d] = entry{info: cpio.Info{Name: d, Mode: cpio.S_IFDIR | 0o755}}
			}
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	recs := make([]cpio.Record, 0, len(names))
	for i, n := range names {
		e := files[n]
		e.info.Ino = uint64(i + 1)
		e.info.NLink = 1
		if e.info.Mode&cpio.S_IFMT == cpio.S_IFDIR {
			e.info.NLink = 2
		}
		if e.data == nil {
			recs = append(recs, cpio.Record{Info: e.info})
			continue
		}
		recs = append(recs, cpio.StaticRecord(e.data, e.info))
	}
	return recs
}

// moduleClosure returns the module files for names and their dependencies
// in load order, and the trimmed modules.dep that lists them (with the
// names the files have in the archive, uncompressed).
func moduleClosure(dir string, names []string) ([]string, []byte, error) {
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, nil, fmt.Errorf("opening modules.dep (run depmod?): %w", err)
	}
	defer f.Close()
	g, err := moddep.Parse(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	var want []string
	for _, n := range names {
		file, ok := g.Find(n)
		if !ok {
			return nil, nil, fmt.Errorf("module %s is not in %s (built into this kernel, or misspelt?)", n, f.Name())
		}
		want = append(want, file)
	}
	order, err := g.Order(want)
	if err != nil {
		return nil, nil, err
	}
	trimmed := moddep.Graph{Deps: map[string][]string{}}
	for _, file := range order {
		var deps []string
		for _, d := range g.Deps[file] {
			deps = append(deps, uncompressedName(d))
		}
		trimmed.Deps[uncompressedName(file)] = deps
		trimmed.Files = append(trimmed.Files, uncompressedName(file))
	}
	var b bytes.Buffer
	if err := trimmed.Write(&b, trimmed.Files); err != nil {
		return nil, nil, err
	}
	return order, b.Bytes(), nil
}

// uncompressedName drops a module's compression suffix: the builder
// decompresses modules so that PID 1 can hand the file to finit_module(2)
// as it is (the whole archive is compressed anyway).
func uncompressedName(file string) string {
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		if strings.HasSuffix(file, ".ko"+ext) {
			return strings.TrimSuffix(file, ext)
		}
	}
	return file
}

func readModule(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("reading module: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	switch {
	case strings.HasSuffix(file, ".xz"):
		if r, err = xz.NewReader(f); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
	case strings.HasSuffix(file, ".zst"):
		d, err := zstd.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		defer d.Close()
		r = d
	case strings.HasSuffix(file, ".gz"):
		if r, err = gzip.NewReader(f); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("decompressing %s: %w", file, err)
	}
	return data, nil
}
