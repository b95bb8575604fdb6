package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckConfig: gate check-config says what the appliance would say at
// boot: the offending key and line, or the document, tokens redacted.
func TestCheckConfig(t *testing.T) {
	const token = "tok-0123456789abcdef"
	tests := []struct {
		name, data string
		code       int
		want       []string
		not        string
	}{
		{"valid cloud-config", "#cloud-config\npackages: [htop]\ngate:\n  hostname: aws-gate-1\n  interfaces:\n    eth1: {address: 172.16.1.10/24, gateway: 172.16.1.1}\n",
			0, []string{"valid", "hostname: aws-gate-1", "keys ignored", "packages"}, ""},
		{"gateway outside the subnet", "#cloud-config\ngate:\n  interfaces:\n    eth1: {address: 172.16.1.10/24, gateway: 172.16.9.1}\n",
			1, []string{"error: interfaces.eth1.gateway: 172.16.9.1 is outside the NIC's subnet 172.16.1.0/24", "line 4"}, "valid;"},
		{"token redacted", "version: 1\nnetworks:\n  - join: gate://203.0.113.5:8443/d363b4e9bd3d6aa8?pin=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef&token=" + token + "\n",
			0, []string{"valid", "REDACTED"}, token},
		{"hostile bytes are escaped", "version: 1\nhostname: \"a\\x1b[2Jb\"\n", 1, []string{"error: hostname"}, "\x1b"},
		{"a script", "#!/bin/sh\necho hi\n", 1, []string{"runs no scripts"}, "valid;"},
		{"no Gate document", "#cloud-config\npackages: [htop]\n", 0, []string{"holds no Gate configuration"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "user-data")
			if err := os.WriteFile(path, []byte(tt.data), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			code := Main([]string{"check-config", path}, "test", &out, &errOut)
			all := out.String() + errOut.String()
			if code != tt.code {
				t.Errorf("exit %d, want %d:\n%s", code, tt.code, all)
			}
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q:\n%s", w, all)
				}
			}
			if tt.not != "" && strings.Contains(all, tt.not) {
				t.Errorf("output holds %q:\n%s", tt.not, all)
			}
		})
	}
}
