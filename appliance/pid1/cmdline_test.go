package pid1

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCmdline(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bootParams
	}{
		{"", bootParams{}},
		{"console=tty0 console=ttyS0,115200 quiet\n", bootParams{}},
		{"gate.hostname=aws-gate-1 gate.state=tmpfs", bootParams{"hostname": "aws-gate-1", "state": "tmpfs"}},
		{"gate.debug gate.x=\"a\" gatex=1", bootParams{"debug": "1", "x": "a"}},
		{"gate.hostname=a gate.hostname=b", bootParams{"hostname": "b"}},
	} {
		if diff := cmp.Diff(tc.want, parseCmdline(tc.in)); diff != "" {
			t.Errorf("parseCmdline(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}
