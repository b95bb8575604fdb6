// Command mkinitramfs writes the appliance's initramfs (see package
// initramfs) from a built gate binary and a kernel fetched by
// scripts/fetch-kernel.sh. It is a build tool, not part of the gate binary.
//
//	go run ./initramfs/cmd/mkinitramfs -init bin/gate -kernel out/kernel -o out/initramfs.cpio.gz
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gatenet/gate/initramfs"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "mkinitramfs: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	initBin := flag.String("init", "bin/gate", "the gate binary, installed as /init")
	kernel := flag.String("kernel", "out/kernel", "directory made by scripts/fetch-kernel.sh (VERSION, lib/modules/)")
	modules := flag.String("modules", strings.Join(initramfs.DefaultModules, ","), "comma-separated kernel modules; their dependencies are added")
	ca := flag.String("ca", "/etc/ssl/certs/ca-certificates.crt", "CA certificate bundle (\"\" for none)")
	version := flag.String("version", "dev", "version written to /etc/os-release")
	out := flag.String("o", "out/initramfs.cpio.gz", "output file")
	flag.Parse()
	if flag.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}

	rel, err := os.ReadFile(filepath.Join(*kernel, "VERSION"))
	if err != nil {
		return fmt.Errorf("reading the kernel version (run scripts/fetch-kernel.sh): %w", err)
	}
	release := strings.TrimSpace(string(rel))
	spec := initramfs.Spec{
		Init:          *initBin,
		KernelRelease: release,
		ModulesDir:    filepath.Join(*kernel, "lib/modules", release),
		CACerts:       *ca,
		Version:       *version,
	}
	for _, m := range strings.Split(*modules, ",") {
		if m = strings.TrimSpace(m); m != "" {
			spec.Modules = append(spec.Modules, m)
		}
	}

	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(*out), ".initramfs-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	sum, err := initramfs.Build(tmp, spec)
	if err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return err
	}
	st, err := os.Stat(*out)
	if err != nil {
		return err
	}
	fmt.Printf("mkinitramfs: %s: %d files, %d modules (%.1f MB uncompressed) for %s, %.1f MB compressed\n",
		*out, sum.Files, len(sum.Modules), float64(sum.ModulesBytes)/1e6, release, float64(st.Size())/1e6)
	return nil
}
