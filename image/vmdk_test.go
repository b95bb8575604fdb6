package image

import (
	"bytes"
	"strings"
	"testing"
)

func TestReplaceCID(t *testing.T) {
	desc := "# Disk DescriptorFile\nversion=1\nCID=c0b7be2\nparentCID=ffffffff\ncreateType=\"streamOptimized\"\n"
	head := append(append([]byte("KDMV header...."), desc...), make([]byte, 64)...)
	head = append(head, "grain"...)
	got, err := replaceCID(head, 0xabc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(head) {
		t.Fatalf("length changed: %d -> %d", len(head), len(got))
	}
	want := strings.Replace(desc, "CID=c0b7be2", "CID=00000abc", 1)
	if !bytes.Contains(got, append([]byte(want), 0)) {
		t.Errorf("descriptor not rewritten:\n%q", got)
	}
	if !bytes.HasSuffix(got, []byte("grain")) || !bytes.HasPrefix(got, []byte("KDMV header")) {
		t.Error("bytes outside the descriptor changed")
	}
	// A second pass gives the same bytes.
	again, err := replaceCID(got, 0xabc)
	if err != nil || !bytes.Equal(again, got) {
		t.Errorf("not idempotent: %v", err)
	}
	if _, err := replaceCID([]byte("no descriptor"), 1); err == nil {
		t.Error("no error without a descriptor")
	}
	if _, err := replaceCID(append([]byte(desc), 0), 1); err == nil {
		t.Error("no error without padding room")
	}
}
