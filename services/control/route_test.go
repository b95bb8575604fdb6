package control

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestRouteFailover(t *testing.T) {
	cidr := netip.MustParsePrefix("10.99.0.0/24")
	a := netip.MustParseAddr
	base := func() Route {
		return Route{Dest: netip.MustParsePrefix("172.16.0.0/16"), Via: a("10.99.0.11"), Backups: []netip.Addr{a("10.99.0.12")},
			Probes: []Probe{{Proto: "tcp", Addr: a("172.16.10.5"), Port: 22}, {Proto: "icmp", Addr: a("172.16.1.1")}}}
	}
	if err := base().CheckFailover(cidr); err != nil {
		t.Fatalf("good route: %v", err)
	}
	tests := []struct {
		name   string
		change func(r *Route)
		want   string
	}{
		{"backup outside", func(r *Route) { r.Backups[0] = a("10.98.0.1") }, "backup 10.98.0.1 is not an address of the network 10.99.0.0/24"},
		{"backup IPv6", func(r *Route) { r.Backups[0] = a("fd00::1") }, "backup fd00::1 is not an address"},
		{"backup is via", func(r *Route) { r.Backups[0] = r.Via }, "backup 10.99.0.11 is the route's via"},
		{"backup twice", func(r *Route) { r.Backups = append(r.Backups, r.Backups[0]) }, "backup 10.99.0.12 is named twice"},
		{"too many backups", func(r *Route) {
			r.Backups = nil
			for i := range MaxBackups + 1 {
				r.Backups = append(r.Backups, netip.AddrFrom4([4]byte{10, 99, 0, byte(20 + i)}))
			}
		}, "8 backups: a route has at most 7 (8 gateways)"},
		{"failback too long", func(r *Route) { r.Failback = Failback(2 * time.Hour) }, "failback 2h0m0s: want never or 1s to 1h0m0s"},
		{"failback too short", func(r *Route) { r.Failback = Failback(time.Millisecond) }, "failback 1ms: want never"},
		{"failback negative", func(r *Route) { r.Failback = -2 }, "failback -2ns: want never"},
		{"probe outside dest", func(r *Route) { r.Probes[0].Addr = a("10.99.0.12") }, "probe 10.99.0.12:22/tcp: 10.99.0.12 is not inside the route's dest 172.16.0.0/16"},
		{"probe without port", func(r *Route) { r.Probes[0].Port = 0 }, "a tcp probe needs a port"},
		{"icmp probe with port", func(r *Route) { r.Probes[1].Port = 7 }, "an icmp probe takes no port"},
		{"probe of udp", func(r *Route) { r.Probes[1].Proto = "udp" }, `probe of protocol "udp": want tcp or icmp`},
		{"probe twice", func(r *Route) { r.Probes[1] = r.Probes[0] }, "probe 172.16.10.5:22/tcp is named twice"},
		{"too many probes", func(r *Route) {
			for i := range MaxProbes {
				r.Probes = append(r.Probes, Probe{Proto: "icmp", Addr: netip.AddrFrom4([4]byte{172, 16, 9, byte(i)})})
			}
		}, "6 probes: a route has at most 4"},
	}
	for _, tt := range tests {
		r := base()
		tt.change(&r)
		if err := r.CheckFailover(cidr); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestRouteJSON(t *testing.T) {
	plain := `{"dest":"172.16.0.0/16","via":"10.99.0.11"}`
	var r Route
	if err := json.Unmarshal([]byte(plain), &r); err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(r); string(b) != plain {
		t.Errorf("a route without backups encodes as %s, want it as before: %s", b, plain)
	}
	full := `{"dest":"172.16.0.0/16","via":"10.99.0.11","backups":["10.99.0.12"],"failback":"never","probes":["172.16.10.5:22/tcp","172.16.1.1/icmp"]}`
	if err := json.Unmarshal([]byte(full), &r); err != nil {
		t.Fatal(err)
	}
	if r.Failback != FailbackNever || len(r.Probes) != 2 || r.Probes[0].Port != 22 {
		t.Errorf("decoded %+v", r)
	}
	if b, _ := json.Marshal(r); string(b) != full {
		t.Errorf("encoded %s, want %s", b, full)
	}
	for _, bad := range []struct{ in, want string }{
		{`{"dest":"172.16.0.0/16","via":"10.99.0.11","failback":"0s"}`, `failback "0s": want never or a duration`},
		{`{"dest":"172.16.0.0/16","via":"10.99.0.11","failback":10}`, "failback: want a string"},
		{`{"dest":"172.16.0.0/16","via":"10.99.0.11","probes":["172.16.1.1"]}`, `probe "172.16.1.1": no protocol`},
		{`{"dest":"172.16.0.0/16","via":"10.99.0.11","probes":["host:22/tcp"]}`, "not an address and port"},
		{`{"dest":"172.16.0.0/16","via":"10.99.0.11","probes":["172.16.1.1:0/tcp"]}`, "a tcp probe needs a port"},
		{`{"dest":"172.16.0.0/16","via":"10.99.0.11","probes":["172.16.1.1/gre"]}`, "unknown protocol"},
		{`{"dest":"172.16.0.0/16","via":"10.99.0.11","probes":["\u001b[2J/icmp"]}`, `probe "\x1b[2J/icmp": not an address`},
	} {
		var r Route
		if err := json.Unmarshal([]byte(bad.in), &r); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want %q", bad.in, err, bad.want)
		}
	}
	if d, ok := Failback(0).Hold(); !ok || d != DefaultFailback {
		t.Errorf("the zero failback holds %v, %v", d, ok)
	}
}

// FuzzRouteJSON: whatever a route's JSON holds, decoding it never panics,
// and a route that decodes and passes CheckFailover encodes and decodes
// back to itself.
func FuzzRouteJSON(f *testing.F) {
	f.Add([]byte(`{"dest":"172.16.0.0/16","via":"10.99.0.11","backups":["10.99.0.12"],"failback":"never","probes":["172.16.10.5:22/tcp","172.16.1.1/icmp"]}`))
	f.Add([]byte(`{"dest":"172.16.0.0/16","via":"10.99.0.11","failback":"1m30s"}`))
	cidr := netip.MustParsePrefix("10.99.0.0/24")
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Route
		if json.Unmarshal(data, &r) != nil || !r.Dest.IsValid() || r.CheckFailover(cidr) != nil {
			return
		}
		_ = r.String()
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("%+v does not encode: %v", r, err)
		}
		var back Route
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s does not decode: %v", b, err)
		}
		if !back.Equal(r) {
			t.Fatalf("round trip: %+v, want %+v", back, r)
		}
	})
}
