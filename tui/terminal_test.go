package tui

import (
	"strings"
	"testing"
	"unicode"

	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/logring"
)

// TestAttackConsoleShowsNoRawControl: whatever the daemon's answers carry
// (a name, an error, a log line from somewhere upstream), the console
// renders no control character of it: an escape sequence could clear the
// screen, retitle the terminal or fake a line.
func TestAttackConsoleShowsNoRawControl(t *testing.T) {
	evil := "eth0\x1b]0;pwned\x07\x1b[2J\u202e"
	s := localapi.Snapshot{
		Status:     localapi.Status{NodeID: "0a2e9cf01c", Hostname: evil, LastError: evil},
		Networks:   []localapi.Network{{ID: "0123456789abcdef", Name: evil, Status: "OK", Error: evil + "\nsecond line"}},
		Interfaces: []localapi.Interface{{Name: evil, Error: evil}},
	}
	sanitize(&s)
	ls := []logring.Line{{Text: evil}}
	sanitize(&ls)
	for _, got := range []string{s.Status.Hostname, s.Status.LastError, s.Networks[0].Name, s.Networks[0].Error, s.Interfaces[0].Name, ls[0].Text} {
		if strings.ContainsFunc(got, func(r rune) bool { return r != '\n' && !unicode.IsPrint(r) }) {
			t.Errorf("left raw: %q", got)
		}
	}
	if s.Status.NodeID != "0a2e9cf01c" {
		t.Errorf("a clean string changed: %q", s.Status.NodeID)
	}
}
