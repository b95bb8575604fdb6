package failover

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestWire(t *testing.T) {
	q := appendAsk(nil, 0x0102030405060708)
	if n, err := parseAsk(q); err != nil || n != 0x0102030405060708 {
		t.Fatalf("ask round trip: %x, %v", n, err)
	}
	routes := []RouteState{{Dest: netip.MustParsePrefix("172.16.0.0/16"), State: OK, Active: netip.MustParseAddr("10.99.0.12")},
		{Dest: netip.MustParsePrefix("10.1.2.0/24"), State: ProbeFails}, {Dest: netip.MustParsePrefix("0.0.0.0/0"), State: LANDown}}
	b := appendAnswer(nil, 7, routes)
	n, got, err := parseAnswer(b)
	if err != nil || n != 7 || !slices.Equal(got, routes) {
		t.Fatalf("answer round trip: %d %v %v", n, got, err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "not a health answer"},
		{"a question", q, "not a health answer"},
		{"another version", append([]byte("GTHA\x01"), b[5:]...), "not a health answer"},
		{"short", b[:len(b)-1], "does not hold the 3 routes"},
		{"long", append(slices.Clone(b), 0), "does not hold the 3 routes"},
		{"too many", append(append([]byte("GTHA\x02"), b[5:13]...), MaxRoutes+1), "does not hold the 65 routes"},
		{"not canonical", appendAnswer(nil, 1, nil)[:13:13], "not a health answer"},
		{"host bits", func() []byte { c := slices.Clone(b); c[14+3] = 1; return c }(), "route 0 is not a canonical IPv4 prefix"},
		{"bits past 32", func() []byte { c := slices.Clone(b); c[14+4] = 33; return c }(), "route 0 is not a canonical IPv4 prefix"},
		{"unknown state", func() []byte { c := slices.Clone(b); c[14+5] = 9; return c }(), "unknown state 9"},
	} {
		if _, _, err := parseAnswer(tc.b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	for _, bad := range [][]byte{nil, q[:12], append(slices.Clone(q), 0), append([]byte("GTHQ\x01"), q[5:]...), b} {
		if _, err := parseAsk(bad); err == nil {
			t.Errorf("parseAsk(%q) accepted", bad)
		}
	}
}

// FuzzParseAnswer: any bytes from the overlay are refused or read into
// routes that encode back to the same bytes.
func FuzzParseAnswer(f *testing.F) {
	f.Add(appendAnswer(nil, 7, []RouteState{{Dest: netip.MustParsePrefix("172.16.0.0/16"), State: OK, Active: netip.MustParseAddr("10.99.0.11")}}))
	f.Add(appendAsk(nil, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		if n, err := parseAsk(b); err == nil {
			if got := appendAsk(nil, n); string(got) != string(b) {
				t.Fatalf("ask %x re-encodes as %x", b, got)
			}
		}
		n, routes, err := parseAnswer(b)
		if err != nil {
			return
		}
		if got := appendAnswer(nil, n, routes); string(got) != string(b) {
			t.Fatalf("answer %x re-encodes as %x", b, got)
		}
	})
}
