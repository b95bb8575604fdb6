package cli

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestPolicyTestArgs(t *testing.T) {
	tests := []struct {
		to      string
		addr    string
		port    uint16
		proto   string
		wantErr string
	}{
		{"172.16.1.10:22/tcp", "172.16.1.10", 22, "tcp", ""},
		{"10.99.0.5/icmp", "10.99.0.5", 0, "icmp", ""},
		{"[fd00::5]:53/udp", "fd00::5", 53, "udp", ""},
		{"[fd00::5]/icmp", "fd00::5", 0, "icmp", ""},
		{"172.16.1.10:22", "", 0, "", "want ADDR:PORT/tcp"},
		{"host:22/tcp", "", 0, "", `"host:22" is not ADDR`},
	}
	for _, tt := range tests {
		req, err := policyTest("aaaaaaaaaa", tt.to)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("--to %s: %v, want an error with %q", tt.to, err, tt.wantErr)
			}
			continue
		}
		if err != nil || req.To != netip.MustParseAddr(tt.addr) || req.Port != tt.port || req.Proto != tt.proto {
			t.Errorf("--to %s = %+v, %v", tt.to, req, err)
		}
	}
	if _, err := policyTest("", "10.0.0.1/icmp"); err == nil {
		t.Error("no --from accepted")
	}
	if got := splitList(" web, ,prod,"); !slices.Equal(got, []string{"web", "prod"}) {
		t.Errorf("splitList = %q", got)
	}
}
