package cloud

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// volume is a filesystem read in place from a block device (or an image
// file): vfat (FAT12/16/32) or ISO 9660, whose root directory holds
// NoCloud's files. Only the root directory is read: that is where NoCloud
// keeps them.
type volume struct {
	path  string
	fs    string // "vfat" or "iso9660"
	label string
	files map[string]fileRef // root directory, by name
	read  func(fileRef) ([]byte, error)
	// cache holds the NoCloud files, read while the device was open.
	cache map[string]cached
}

type cached struct {
	data []byte
	err  error
}

// nocloudFiles are the files a NoCloud seed may hold.
var nocloudFiles = []string{"meta-data", "user-data", "network-config"}

type fileRef struct {
	start int64 // FAT: first cluster; ISO: byte offset
	size  int64
}

func (v *volume) Where() string { return fmt.Sprintf("%s (%s %s)", v.path, v.fs, v.label) }

// ReadFile returns one of nocloudFiles, read when the volume was found.
func (v *volume) ReadFile(name string) ([]byte, error) {
	c, ok := v.cache[name]
	if !ok {
		return nil, fmt.Errorf("%s: %s: %w", v.path, name, fs.ErrNotExist)
	}
	return c.data, c.err
}

func (v *volume) readFile(name string) ([]byte, error) {
	ref, ok := v.files[name]
	if !ok {
		for n, r := range v.files { // names on FAT are case-insensitive
			if strings.EqualFold(n, name) {
				ref, ok = r, true
			}
		}
	}
	if !ok {
		return nil, fmt.Errorf("%s: %s: %w", v.path, name, fs.ErrNotExist)
	}
	if ref.size > maxSeedFile {
		return nil, fmt.Errorf("%s: %s is %d bytes; the limit is %d", v.path, name, ref.size, maxSeedFile)
	}
	b, err := v.read(ref)
	if err != nil {
		return nil, fmt.Errorf("%s: reading %s: %w", v.path, name, err)
	}
	return b, nil
}

// maxSeedFile bounds what is read of one file of a seed.
const maxSeedFile = 1 << 20

// errNoFS: the device holds neither filesystem.
var errNoFS = errors.New("neither vfat nor ISO 9660")

// openVolume reads a device's filesystem label and root directory.
func openVolume(path string, r io.ReaderAt) (*volume, error) {
	if v, err := openISO(r); err == nil {
		v.path = path
		return v, nil
	} else if !errors.Is(err, errNoFS) {
		return nil, err
	}
	v, err := openFAT(r)
	if err != nil {
		return nil, err
	}
	v.path = path
	return v, nil
}

// findVolume looks through the block devices listed in sysBlock (as in
// /sys/class/block: disks and partitions) for a vfat or ISO 9660
// filesystem whose label is label, compared without case (cloud-init
// accepts cidata and CIDATA). Devices of size 0 (an empty CD drive) are
// skipped. It returns nil and no error when there is none.
func findVolume(sysBlock, devDir, label string) (*volume, error) {
	entries, err := os.ReadDir(sysBlock)
	if err != nil {
		return nil, fmt.Errorf("listing block devices: %w", err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "ram") || strings.HasPrefix(name, "zram") {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(sysBlock, name, "size")); err == nil {
			if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n == 0 {
				continue
			}
		}
		path := filepath.Join(devDir, name)
		v, err := func() (*volume, error) {
			f, err := os.Open(path)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			v, err := openVolume(path, f)
			if err != nil || !strings.EqualFold(v.label, label) {
				return nil, err
			}
			v.cache = map[string]cached{}
			for _, n := range nocloudFiles {
				b, err := v.readFile(n)
				v.cache[n] = cached{b, err}
			}
			return v, nil
		}()
		switch {
		case errors.Is(err, errNoFS):
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
		case v != nil:
			return v, nil
		}
	}
	return nil, errors.Join(errs...)
}

// readAt reads exactly n bytes at off.
func readAt(r io.ReaderAt, off int64, n int) ([]byte, error) {
	if n < 0 || n > maxSeedFile+64<<10 {
		return nil, fmt.Errorf("read of %d bytes refused", n)
	}
	b := make([]byte, n)
	if _, err := r.ReadAt(b, off); err != nil {
		return nil, err
	}
	return b, nil
}
