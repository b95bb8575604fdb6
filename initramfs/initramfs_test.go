package initramfs

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/u-root/u-root/pkg/cpio"
	"github.com/ulikunitz/xz"
)

// fakeKernel lays out a module tree like Debian's: a.ko needs b.ko (xz
// compressed, as on newer kernels), c.ko stands alone and is not wanted.
func fakeKernel(t *testing.T) (dir string) {
	t.Helper()
	dir = t.TempDir()
	write := func(name string, data []byte) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("modules.dep", []byte("kernel/net/a-mod.ko: kernel/lib/b.ko.xz\nkernel/lib/b.ko.xz:\nkernel/c.ko:\n"))
	write("kernel/net/a-mod.ko", []byte("module a"))
	var xb bytes.Buffer
	xw, err := xz.NewWriter(&xb)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(xw, "module b")
	xw.Close()
	write("kernel/lib/b.ko.xz", xb.Bytes())
	write("kernel/c.ko", []byte("module c"))
	return dir
}

func build(t *testing.T, s Spec) []byte {
	t.Helper()
	var out bytes.Buffer
	if _, err := Build(&out, s); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func readArchive(t *testing.T, gz []byte) []cpio.Record {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(cpio.EOFReader{RecordReader: cpio.Newc.Reader(bytes.NewReader(raw))})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestBuild(t *testing.T) {
	dir := t.TempDir()
	initPath := filepath.Join(dir, "gate")
	os.WriteFile(initPath, []byte("\x7fELF fake gate"), 0o755)
	caPath := filepath.Join(dir, "ca.crt")
	os.WriteFile(caPath, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644)
	spec := Spec{
		Init:          initPath,
		KernelRelease: "6.1.0-test",
		ModulesDir:    fakeKernel(t),
		Modules:       []string{"a_mod"},
		CACerts:       caPath,
		Version:       "v1",
	}
	gz := build(t, spec)
	if !bytes.Equal(gz, build(t, spec)) {
		t.Fatal("two builds of the same inputs differ")
	}

	recs := readArchive(t, gz)
	byName := map[string]cpio.Record{}
	var names []string
	for _, r := range recs {
		byName[r.Name] = r
		names = append(names, r.Name)
		if r.MTime != 0 || r.UID != 0 || r.GID != 0 {
			t.Errorf("%s: mtime %d uid %d gid %d, want all 0", r.Name, r.MTime, r.UID, r.GID)
		}
	}
	for i, n := range names {
		if i > 0 && names[i-1] >= n {
			t.Errorf("entries not sorted: %q before %q", names[i-1], n)
		}
		if d := path.Dir(n); d != "." {
			if _, ok := byName[d]; !ok {
				t.Errorf("%s has no parent directory entry", n)
			}
		}
	}
	content := func(name string) string {
		r, ok := byName[name]
		if !ok {
			t.Fatalf("archive lacks %s; has %q", name, names)
		}
		b, err := io.ReadAll(io.NewSectionReader(r, 0, int64(r.FileSize)))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := content("init"); got != "\x7fELF fake gate" || byName["init"].Mode != cpio.S_IFREG|0o755 {
		t.Errorf("init: %q mode %#o", got, byName["init"].Mode)
	}
	if c := byName["dev/console"]; c.Mode != cpio.S_IFCHR|0o600 || c.Rmajor != 5 || c.Rminor != 1 {
		t.Errorf("dev/console: mode %#o dev %d:%d, want char 5:1", c.Mode, c.Rmajor, c.Rminor)
	}
	if !strings.Contains(content("etc/ssl/certs/ca-certificates.crt"), "BEGIN CERTIFICATE") {
		t.Error("CA bundle missing")
	}
	mods := "lib/modules/6.1.0-test/"
	if diff := cmp.Diff("kernel/lib/b.ko:\nkernel/net/a-mod.ko: kernel/lib/b.ko\n", content(mods+"modules.dep")); diff != "" {
		t.Errorf("modules.dep (-want +got):\n%s", diff)
	}
	if got := content(mods + "kernel/lib/b.ko"); got != "module b" {
		t.Errorf("b.ko not decompressed: %q", got)
	}
	if _, ok := byName[mods+"kernel/c.ko"]; ok {
		t.Error("c.ko is in the archive but was not asked for")
	}
}

func TestBuildUnknownModule(t *testing.T) {
	dir := t.TempDir()
	initPath := filepath.Join(dir, "gate")
	os.WriteFile(initPath, []byte("x"), 0o755)
	_, err := Build(io.Discard, Spec{Init: initPath, KernelRelease: "r", ModulesDir: fakeKernel(t), Modules: []string{"ext4"}})
	if err == nil || !strings.Contains(err.Error(), "module ext4 is not in") {
		t.Fatalf("error %v, want one naming the missing module", err)
	}
}
