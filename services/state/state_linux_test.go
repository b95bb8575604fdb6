package state

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestWriteOnFullDisk: on a full filesystem (a 64 KiB tmpfs; needs root) a
// write fails with ENOSPC, the old file is intact and no temporary file is
// left behind; once there is room again the write succeeds.
func TestWriteOnFullDisk(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("gate-state-test", dir, "tmpfs", 0, "size=64k,mode=0700"); err != nil {
		t.Fatalf("mounting a tmpfs (run as root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	old := []byte(`{"networks": []}` + "\n")
	if err := d.Write("networks.json", old); err != nil {
		t.Fatal(err)
	}
	// Fill what is left.
	f, err := os.Create(d.File("filler"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := f.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	f.Close()
	err = d.Write("networks.json", bytes.Repeat([]byte("x"), 16<<10))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write on a full disk = %v, want ENOSPC", err)
	}
	if !strings.Contains(err.Error(), "networks.json") {
		t.Errorf("error %q does not name the file", err)
	}
	if got, err := d.Read("networks.json"); err != nil || !bytes.Equal(got, old) {
		t.Errorf("after the failed write the file is %q, %v; want the old contents %q", got, err, old)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	os.Remove(d.File("filler"))
	if err := d.Write("networks.json", []byte("new\n")); err != nil {
		t.Fatalf("write after freeing space: %v", err)
	}
	if got, _ := d.Read("networks.json"); string(got) != "new\n" {
		t.Errorf("after freeing space the file is %q", got)
	}
}
