// Command mkimage builds the appliance's disk images (see package image)
// from a kernel fetched by scripts/fetch-kernel.sh and an initramfs made by
// mkinitramfs. A build tool, not part of the gate binary.
//
//	go run ./image/cmd/mkimage -kernel out/kernel -initrd out/initramfs.cpio.gz -out out
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/gatenet/gate/image"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "mkimage: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	kernel := flag.String("kernel", "out/kernel", "directory made by scripts/fetch-kernel.sh")
	initrd := flag.String("initrd", "out/initramfs.cpio.gz", "the initramfs")
	out := flag.String("out", "out", "output directory")
	version := flag.String("version", "dev", "Gate's version, for the manifest and the boot menu")
	size := flag.Int64("size", 128, "disk size in MiB")
	esp := flag.Int64("esp", 96, "ESP size in MiB")
	cmdline := flag.String("cmdline", image.DefaultCmdline, "kernel command line")
	flag.Parse()

	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(*kernel, name))
		if err != nil {
			return "", fmt.Errorf("run scripts/fetch-kernel.sh: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	release, err := read("VERSION")
	if err != nil {
		return err
	}
	pkg, err := read("PACKAGE")
	if err != nil {
		return err
	}
	spec := image.Spec{
		Kernel:        filepath.Join(*kernel, "vmlinuz"),
		Initrd:        *initrd,
		KernelRelease: release,
		KernelPackage: pkg,
		Version:       *version,
		Cmdline:       *cmdline,
		SizeMiB:       *size,
		ESPMiB:        *esp,
		OutDir:        *out,
		Tools:         image.DefaultTools,
		Logf:          func(f string, a ...any) { fmt.Printf(f+"\n", a...) },
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	l, err := image.Build(ctx, spec)
	if err != nil {
		return err
	}
	fmt.Println("image: gate.raw.gz, gate.qcow2, gate.vmdk")
	if err := image.Convert(ctx, *out, l.ContentID); err != nil {
		return err
	}
	m, err := image.WriteManifest(*out, spec, l)
	if err != nil {
		return err
	}
	for _, f := range m.Files {
		fmt.Printf("  %-12s %6.1f MB  sha256 %s\n", f.Name, float64(f.Bytes)/1e6, f.SHA256)
	}
	fmt.Printf("  kernel %s (%s), manifest %s\n", m.Kernel.Release, m.Kernel.Package, filepath.Join(*out, "manifest.json"))
	return nil
}
