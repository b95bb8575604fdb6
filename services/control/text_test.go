package control

import (
	"testing"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"a longer text", 10, "a longe..."},
		{"zoëzoëzoë", 6, "zo..."}, // ë is two bytes: never cut inside it
		{"日本語のテキスト", 10, "日本..."}, // nor inside three
		{"abc", 2, "..."},
		{"abc", 0, "..."},
	} {
		got := Truncate(tc.in, tc.n)
		if got != tc.want || !utf8.ValidString(got) || len(got) > max(tc.n, 3) {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
