package pid1

import (
	"strings"
	"testing"
)

func TestEarlyMountsValid(t *testing.T) {
	if err := checkMounts(earlyMounts()); err != nil {
		t.Fatal(err)
	}
	want := []string{"/proc", "/sys", "/dev", "/dev/pts", "/run", "/tmp"}
	have := map[string]bool{}
	for _, m := range earlyMounts() {
		if !m.optional {
			have[m.target] = true
		}
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("required mount %s missing from the table", w)
		}
	}
}

func TestCheckMounts(t *testing.T) {
	for _, tc := range []struct {
		name string
		ms   []mount
		err  string // substring; "" means valid
	}{
		{"ok", []mount{{target: "/dev", fstype: "devtmpfs"}, {target: "/dev/pts", fstype: "devpts"}}, ""},
		{"child first", []mount{{target: "/dev/pts", fstype: "devpts"}, {target: "/dev", fstype: "devtmpfs"}}, "before its parent"},
		{"relative", []mount{{target: "proc", fstype: "proc"}}, "absolute"},
		{"unclean", []mount{{target: "/run/", fstype: "tmpfs"}}, "absolute clean"},
		{"root", []mount{{target: "/", fstype: "tmpfs"}}, "below /"},
		{"twice", []mount{{target: "/tmp", fstype: "tmpfs"}, {target: "/tmp", fstype: "tmpfs"}}, "twice"},
		{"no type", []mount{{target: "/tmp"}}, "no filesystem type"},
		{"prefix is not parent", []mount{{target: "/devices", fstype: "tmpfs"}, {target: "/dev", fstype: "devtmpfs"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkMounts(tc.ms)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}
