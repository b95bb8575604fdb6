package cli

import (
	"bytes"
	"flag"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParseIntersperses(t *testing.T) {
	tests := []struct {
		args    []string
		wantPos []string
		addr    string
		json    bool
	}{
		{[]string{"NET"}, []string{"NET"}, "", false},
		{[]string{"NET", "--address", "10.0.0.1", "--json"}, []string{"NET"}, "10.0.0.1", true},
		{[]string{"--json", "add", "NET", "10.0.0.0/8", "via", "10.0.0.1"}, []string{"add", "NET", "10.0.0.0/8", "via", "10.0.0.1"}, "", true},
		{[]string{"a", "--address=1.2.3.4", "b"}, []string{"a", "b"}, "1.2.3.4", false},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		addr := fs.String("address", "", "")
		j := fs.Bool("json", false, "")
		pos, err := parse(fs, tt.args)
		if err != nil {
			t.Errorf("parse(%q): %v", tt.args, err)
			continue
		}
		if !slices.Equal(pos, tt.wantPos) || *addr != tt.addr || *j != tt.json {
			t.Errorf("parse(%q) = %q, address %q, json %v; want %q, %q, %v", tt.args, pos, *addr, *j, tt.wantPos, tt.addr, tt.json)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	if _, err := parse(fs, []string{"--nope"}); err == nil {
		t.Error("unknown flag accepted")
	}
}

func TestParsePorts(t *testing.T) {
	tests := []struct {
		in      string
		want    []uint16
		wantErr string
	}{
		{"", nil, ""},
		{"tcp/22", []uint16{22}, ""},
		{" tcp/22, tcp/8443 ,", []uint16{22, 8443}, ""},
		{"udp/53", nil, "want tcp/PORT"},
		{"22", nil, "want tcp/PORT"},
		{"tcp/0", nil, "1-65535"},
		{"tcp/70000", nil, "1-65535"},
		{"tcp/ssh", nil, "1-65535"},
	}
	for _, tt := range tests {
		got, err := parsePorts(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parsePorts(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("parsePorts(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestPrefixList(t *testing.T) {
	var p prefixList
	if err := p.Set("172.16.0.0/16,10.0.0.0/8"); err != nil {
		t.Fatal(err)
	}
	if err := p.Set("192.168.1.0/24"); err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("172.16.0.0/16"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.0/24")}
	if !slices.Equal(p, want) {
		t.Errorf("got %v, want %v", p, want)
	}
	if err := p.Set("172.16.0.0/33"); err == nil || !strings.Contains(err.Error(), "not a CIDR") {
		t.Errorf("bad CIDR: %v", err)
	}
}

func TestMainExitCodes(t *testing.T) {
	tests := []struct {
		args    []string
		code    int
		wantErr string
	}{
		{nil, 2, "usage: gate"},
		{[]string{"help"}, 0, "commands:"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"join"}, 2, "want a join string or network ID"},
		{[]string{"join", "x", "--address", "nope"}, 2, `--address "nope" is not an IP address`},
		{[]string{"up", "--allow-input", "udp/1"}, 2, "--allow-input"},
		{[]string{"controller", "--memory-limit", "lots"}, 2, "--memory-limit"},
		{[]string{"up", "--buffers", "100"}, 2, "--buffers: 100 packet buffers per device: want 0 (unbounded) or at least 385"},
		{[]string{"network"}, 2, "want a subcommand"},
		{[]string{"network", "create", "--cidr", "x", "--controller", "gate://h:1?pin=sha256:" + strings.Repeat("a", 64), "--token", "t"}, 2, "is not a CIDR"},
		{[]string{"member", "set-ip", "0123456789abcdef", "0123456789", "nope", "--controller", "gate://h:1?pin=sha256:" + strings.Repeat("a", 64), "--token", "t"}, 2, `"nope" is not an IP address`},
		{[]string{"network", "list", "--controller", "https://h:1", "--token", "t"}, 1, "must start with gate://"},
		{[]string{"status", "--socket", "/nonexistent/gate.sock"}, 1, "is `gate up` running?"},
		// A bad join request is refused before the daemon is asked, in the
		// local API's words (nodeconfig.JoinRequest.Check).
		{[]string{"join", "d363b4e9", "--socket", "/nonexistent/gate.sock"}, 1, `"d363b4e9" is neither a join string`},
		{[]string{"join", "d363b4e9bd3d6aa8", "--masquerade-internet", "--socket", "/nonexistent/gate.sock"}, 1, "gateway: serve: a gateway serves at least one CIDR"},
		{[]string{"join", "d363b4e9bd3d6aa8", "--serve", "172.16.1.0/16", "--socket", "/nonexistent/gate.sock"}, 1, "did you mean 172.16.0.0/16?"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		code := Main(tt.args, "test", &out, &errb)
		if code != tt.code || !strings.Contains(errb.String(), tt.wantErr) {
			t.Errorf("gate %q: exit %d, stderr %q; want exit %d and %q", tt.args, code, errb.String(), tt.code, tt.wantErr)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"96MiB": 96 << 20, "1GiB": 1 << 30, "512KiB": 512 << 10, "65536": 65536, "0": 0, "10B": 10} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "lots", "-1MiB", "1.5GiB", "12MB", "9000000000GiB", "9223372036854775807KiB"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) succeeded", bad)
		}
	}
}
