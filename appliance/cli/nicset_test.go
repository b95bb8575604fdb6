package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestAttackSetInterfaceArguments: gate set-interface refuses, before it
// asks the daemon, a NIC name that is no interface name (it would go raw
// into the request's URL path) and a DNS server the document refuses, in
// the validator's words, with nothing raw on the terminal.
func TestAttackSetInterfaceArguments(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"\x1b[2J", "--dhcp"}, `"\x1b[2J" is not an interface name`},
		{[]string{"eth0/../../v1/power", "--dhcp"}, "is not an interface name"},
		{[]string{"eth0", "--address", "10.0.0.5/24", "--dns", "fe80::1%eth0"}, "is not a usable DNS server"},
		{[]string{"eth0", "--address", "10.0.0.5/24", "--dns", "127.0.0.1"}, "is not a usable DNS server"},
	} {
		var out, errb bytes.Buffer
		code := Main(append([]string{"set-interface", "--socket", "/nonexistent/gate.sock"}, tc.args...), "test", &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), tc.want) || strings.Contains(errb.String(), "\x1b") {
			t.Errorf("gate set-interface %q: exit %d, stderr %q; want exit 2 and %q", tc.args, code, errb.String(), tc.want)
		}
	}
}
