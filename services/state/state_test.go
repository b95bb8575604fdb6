package state

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestOpenTightensPermissions(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s")
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(p); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("mode = %o, want 700", got)
	}
}

func TestOpenRejectsFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, nil, 0o600)
	if _, err := Open(p); err == nil {
		t.Fatal("Open on a file succeeded")
	}
}

func TestWriteIsPrivateAndAtomic(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, content := range []string{"first", "second, longer content"} {
		if err := d.Write("k", []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := d.Read("k")
		if err != nil || string(got) != content {
			t.Fatalf("Read = %q, %v; want %q", got, err, content)
		}
	}
	fi, _ := os.Stat(d.File("k"))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %o, want 600", fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(d.Path())
	if len(ents) != 1 {
		t.Errorf("directory has %d entries, want 1 (temporary files left behind?)", len(ents))
	}
}

func TestLoadOrCreateGeneratesOnce(t *testing.T) {
	d, _ := Open(t.TempDir())
	calls := 0
	gen := func() ([]byte, error) { calls++; return []byte{byte(calls)}, nil }
	a, err := d.LoadOrCreate("key", gen)
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.LoadOrCreate("key", gen)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) || calls != 1 {
		t.Errorf("got %v then %v after %d generations; want one stable key", a, b, calls)
	}
	boom := errors.New("boom")
	if _, err := d.LoadOrCreate("other", func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("generator error lost: %v", err)
	}
	if _, err := os.Stat(d.File("other")); !os.IsNotExist(err) {
		t.Errorf("failed generation left a file")
	}
}

func TestJSONRoundTrip(t *testing.T) {
	d, _ := Open(t.TempDir())
	type doc struct{ A string }
	var v doc
	ok, err := d.LoadJSON("x.json", &v)
	if ok || err != nil {
		t.Fatalf("LoadJSON on absent file = %v, %v", ok, err)
	}
	if err := d.SaveJSON("x.json", doc{"hi"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := d.LoadJSON("x.json", &v); !ok || err != nil || v.A != "hi" {
		t.Fatalf("LoadJSON = %v, %v, %+v", ok, err, v)
	}
	os.WriteFile(d.File("bad.json"), []byte("{"), 0o600)
	if _, err := d.LoadJSON("bad.json", &v); err == nil {
		t.Error("LoadJSON of a torn file succeeded")
	}
}
