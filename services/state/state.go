// Package state keeps a node's persistent files: keys, joined networks and
// their last good configuration. Every write is atomic and durable (write a
// temporary file, fsync it, rename it over the old one, fsync the
// directory), so a crash or power cut leaves either the old file or the new
// one, never a torn one. Files are 0600 and the directory 0700: they hold
// private keys.
//
// The package knows nothing of what it stores; callers own the formats.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Dir is a state directory.
type Dir struct {
	path string
}

// Open opens (creating if needed) the state directory at path. An existing
// directory readable by others is tightened to 0700.
func Open(path string) (*Dir, error) {
	if path == "" {
		return nil, errors.New("state directory: empty path")
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("state directory %s: not a directory", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o700); err != nil {
			return nil, fmt.Errorf("state directory %s: tightening permissions: %w", path, err)
		}
	}
	return &Dir{path: path}, nil
}

// Path returns the directory's path.
func (d *Dir) Path() string { return d.path }

// File returns the path of a file in the directory.
func (d *Dir) File(name string) string { return filepath.Join(d.path, name) }

// Read returns a file's contents; fs.ErrNotExist if it is absent.
func (d *Dir) Read(name string) ([]byte, error) {
	return os.ReadFile(d.File(name))
}

// Write replaces a file atomically and durably with mode 0600.
func (d *Dir) Write(name string, data []byte) error {
	return WriteFile(d.File(name), data, 0o600)
}

// Remove removes a file; an absent one is no error. The removal is made
// durable (the directory is synced), as a write is.
func (d *Dir) Remove(name string) error {
	if err := os.Remove(d.File(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(d.path)
}

// LoadOrCreate returns the contents of name, creating it with the output of
// gen on first use. It is how a node makes its keys: on the node, once.
func (d *Dir) LoadOrCreate(name string, gen func() ([]byte, error)) ([]byte, error) {
	b, err := d.Read(name)
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading %s: %w", d.File(name), err)
	}
	b, err = gen()
	if err != nil {
		return nil, err
	}
	if err := d.Write(name, b); err != nil {
		return nil, err
	}
	return b, nil
}

// LoadJSON decodes name into v. It reports false, with no error, if the
// file does not exist.
func (d *Dir) LoadJSON(name string, v any) (bool, error) {
	b, err := d.Read(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("decoding %s: %w", d.File(name), err)
	}
	return true, nil
}

// SaveJSON encodes v and writes it to name atomically.
func (d *Dir) SaveJSON(name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", name, err)
	}
	return d.Write(name, append(b, '\n'))
}

// WriteFile writes data to path atomically and durably: a crash leaves the
// old contents or the new, never a mix.
func WriteFile(path string, data []byte, perm fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}
