package control

import "unicode/utf8"

// Truncate cuts s to at most n bytes, at a character's start, marking the
// cut with "...": for text a caller chose, quoted in an error, an audit
// entry or a page (the controller and its web console cut alike).
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := max(n-3, 0)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}
