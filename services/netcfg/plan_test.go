package netcfg

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

func opStrings(ops []Op) []string {
	var out []string
	for _, o := range ops {
		out = append(out, o.String())
	}
	return out
}

func TestPlanLink(t *testing.T) {
	seed := LinkConfig{
		Name:  "gt1",
		MTU:   1420,
		Addrs: []netip.Prefix{pfx("192.168.254.170/24")},
		Routes: []Route{
			{Dst: pfx("172.16.0.0/16"), Via: addr("192.168.254.11")},
		},
	}
	tests := []struct {
		name      string
		cur, want LinkConfig
		ops       []string
	}{
		{
			name: "empty to seed",
			cur:  LinkConfig{Name: "gt1", MTU: 1500},
			want: seed,
			ops: []string{
				"ip link set dev gt1 mtu 1420",
				"ip addr add 192.168.254.170/24 dev gt1",
				"ip route add 172.16.0.0/16 via 192.168.254.11 dev gt1 onlink proto 241 metric 5000",
			},
		},
		{
			name: "seed to seed (metric 0 means 5000)",
			cur: LinkConfig{Name: "gt1", MTU: 1420,
				Addrs:  []netip.Prefix{pfx("192.168.254.170/24")},
				Routes: []Route{{Dst: pfx("172.16.0.0/16"), Via: addr("192.168.254.11"), Metric: 5000}}},
			want: seed,
		},
		{
			name: "MTU 0 leaves MTU alone",
			cur:  LinkConfig{Name: "gt1", MTU: 9000},
			want: LinkConfig{Name: "gt1"},
		},
		{
			name: "seed to empty: teardown deletes routes before addresses",
			cur:  seed,
			want: LinkConfig{Name: "gt1", MTU: 1420},
			ops: []string{
				"ip route del 172.16.0.0/16 via 192.168.254.11 dev gt1 proto 241 metric 5000",
				"ip addr del 192.168.254.170/24 dev gt1",
			},
		},
		{
			name: "address moves: add before delete",
			cur:  seed,
			want: LinkConfig{Name: "gt1", MTU: 1420,
				Addrs:  []netip.Prefix{pfx("192.168.254.171/24")},
				Routes: seed.Routes},
			ops: []string{
				"ip addr add 192.168.254.171/24 dev gt1",
				"ip addr del 192.168.254.170/24 dev gt1",
			},
		},
		{
			name: "prefix length change is another address",
			cur:  seed,
			want: LinkConfig{Name: "gt1", MTU: 1420,
				Addrs:  []netip.Prefix{pfx("192.168.254.170/16")},
				Routes: seed.Routes},
			ops: []string{
				"ip addr add 192.168.254.170/16 dev gt1",
				"ip addr del 192.168.254.170/24 dev gt1",
			},
		},
		{
			name: "gateway change replaces in place",
			cur:  seed,
			want: LinkConfig{Name: "gt1", MTU: 1420, Addrs: seed.Addrs,
				Routes: []Route{{Dst: pfx("172.16.0.0/16"), Via: addr("192.168.254.12")}}},
			ops: []string{
				"ip route replace 172.16.0.0/16 via 192.168.254.12 dev gt1 onlink proto 241 metric 5000",
			},
		},
		{
			name: "metric change is a new route, old one deleted after",
			cur:  seed,
			want: LinkConfig{Name: "gt1", MTU: 1420, Addrs: seed.Addrs,
				Routes: []Route{{Dst: pfx("172.16.0.0/16"), Via: addr("192.168.254.11"), Metric: 100}}},
			ops: []string{
				"ip route add 172.16.0.0/16 via 192.168.254.11 dev gt1 onlink proto 241 metric 100",
				"ip route del 172.16.0.0/16 via 192.168.254.11 dev gt1 proto 241 metric 5000",
			},
		},
		{
			name: "mixed: sorted adds, replaces, then deletes",
			cur: LinkConfig{Name: "gt1", MTU: 1420,
				Addrs: []netip.Prefix{pfx("10.0.0.1/24"), pfx("fd00::1/64")},
				Routes: []Route{
					{Dst: pfx("10.1.0.0/16"), Via: addr("10.0.0.2"), Metric: 5000},
					{Dst: pfx("10.2.0.0/16"), Metric: 5000},
					{Dst: pfx("fd01::/48"), Via: addr("fd00::2"), Metric: 5000},
				}},
			want: LinkConfig{Name: "gt1", MTU: 1380,
				Addrs: []netip.Prefix{pfx("fd00::1/64"), pfx("10.0.0.9/24"), pfx("10.0.0.1/24")},
				Routes: []Route{
					{Dst: pfx("10.3.0.0/16")},
					{Dst: pfx("10.1.0.0/16"), Via: addr("10.0.0.3")},
					{Dst: pfx("10.0.0.0/8"), Via: addr("10.0.0.3")},
					{Dst: pfx("fd01::/48"), Via: addr("fd00::2")},
				}},
			ops: []string{
				"ip link set dev gt1 mtu 1380",
				"ip addr add 10.0.0.9/24 dev gt1",
				"ip route add 10.0.0.0/8 via 10.0.0.3 dev gt1 onlink proto 241 metric 5000",
				"ip route add 10.3.0.0/16 dev gt1 proto 241 metric 5000",
				"ip route replace 10.1.0.0/16 via 10.0.0.3 dev gt1 onlink proto 241 metric 5000",
				"ip route del 10.2.0.0/16 dev gt1 proto 241 metric 5000",
			},
		},
		{
			name: "wanted route destinations are masked",
			cur: LinkConfig{Name: "gt1",
				Routes: []Route{{Dst: pfx("172.16.0.0/16"), Metric: 5000}}},
			want: LinkConfig{Name: "gt1",
				Routes: []Route{{Dst: pfx("172.16.9.9/16")}}},
		},
		{
			name: "duplicate wanted entries collapse",
			cur:  LinkConfig{Name: "gt1"},
			want: LinkConfig{Name: "gt1",
				Addrs:  []netip.Prefix{pfx("10.0.0.1/24"), pfx("10.0.0.1/24")},
				Routes: []Route{{Dst: pfx("10.9.0.0/16")}, {Dst: pfx("10.9.0.0/16"), Metric: 5000}}},
			ops: []string{
				"ip addr add 10.0.0.1/24 dev gt1",
				"ip route add 10.9.0.0/16 dev gt1 proto 241 metric 5000",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := opStrings(PlanLink(tt.cur, tt.want))
			if diff := cmp.Diff(tt.ops, got); diff != "" {
				t.Errorf("PlanLink ops (-want +got):\n%s", diff)
			}
			// Idempotence: a link already in the wanted state needs nothing.
			if again := PlanLink(tt.want, tt.want); len(again) != 0 {
				t.Errorf("PlanLink(want, want) = %q, want nothing", opStrings(again))
			}
		})
	}
}

// TestPlanLinkAddBeforeDelete checks the ordering on every table case and a
// few more: no add or replace comes after a delete.
func TestPlanLinkAddBeforeDelete(t *testing.T) {
	cur := LinkConfig{Name: "x", Addrs: []netip.Prefix{pfx("10.0.0.1/24"), pfx("10.0.1.1/24")},
		Routes: []Route{{Dst: pfx("10.5.0.0/16")}, {Dst: pfx("10.6.0.0/16"), Via: addr("10.0.0.2")}}}
	want := LinkConfig{Name: "x", Addrs: []netip.Prefix{pfx("10.0.2.1/24")},
		Routes: []Route{{Dst: pfx("10.7.0.0/16")}, {Dst: pfx("10.6.0.0/16"), Via: addr("10.0.2.2")}}}
	seenDelete := false
	for _, op := range PlanLink(cur, want) {
		switch op.Kind {
		case DelAddr, DelRoute:
			seenDelete = true
		default:
			if seenDelete {
				t.Fatalf("%q after a delete in %q", op, opStrings(PlanLink(cur, want)))
			}
		}
	}
	if !seenDelete {
		t.Fatal("expected deletes")
	}
}
