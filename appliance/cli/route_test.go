package cli

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gatenet/gate/services/control"
)

func TestParseRoute(t *testing.T) {
	probe := control.Probe{Proto: "tcp", Addr: mustAddr("172.16.10.5"), Port: 22}
	tests := []struct {
		args    string
		ro      routeOpts
		want    string // the route as network show prints it
		wantErr string
	}{
		{args: "NET 172.16.0.0/16 via 10.99.0.11", want: "172.16.0.0/16 via 10.99.0.11"},
		{args: "NET 172.16.0.0/16 via 10.99.0.11 via 10.99.0.12", want: "172.16.0.0/16 via 10.99.0.11, then 10.99.0.12 (failback 10s)"},
		{args: "NET 172.16.0.0/16 via 10.99.0.11 via 10.99.0.12 via 10.99.0.13", ro: routeOpts{failback: "never", probes: []control.Probe{probe}},
			want: "172.16.0.0/16 via 10.99.0.11, then 10.99.0.12, then 10.99.0.13 (failback never, probe 172.16.10.5:22/tcp)"},
		{args: "NET 172.16.0.0/16 via 10.99.0.11 via 10.99.0.12", ro: routeOpts{failback: "45s"}, want: "172.16.0.0/16 via 10.99.0.11, then 10.99.0.12 (failback 45s)"},
		{args: "NET 172.16.0.0/16 via", wantErr: "want: route add"},
		{args: "NET 172.16.0.0/16 via 10.99.0.11 then 10.99.0.12", wantErr: `"then" where via was expected`},
		{args: "NET 172.16.0.0/16 via 10.99.0.11 via gw2", wantErr: `"gw2" is not an IP address`},
		{args: "NET 172.16.0.0 via 10.99.0.11", wantErr: `"172.16.0.0" is not a CIDR`},
		{args: "NET 172.16.0.0/16 via 10.99.0.11 via 10.99.0.12", ro: routeOpts{failback: "0s"}, wantErr: "--failback: failback \"0s\": want never or a duration from 1s to 1h0m0s"},
	}
	for _, tt := range tests {
		r, err := parseRoute(strings.Fields(tt.args), tt.ro)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: %v, want an error with %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil || r.String() != tt.want {
			t.Errorf("%s = %q, %v; want %q", tt.args, r, err, tt.want)
		}
	}
	r, _ := parseRoute(strings.Fields("NET 172.16.0.0/16 via 10.99.0.11 via 10.99.0.12"), routeOpts{failback: "45s"})
	if r.Failback != control.Failback(45*time.Second) || len(r.Backups) != 1 {
		t.Errorf("route %+v", r)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
