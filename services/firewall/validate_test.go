package firewall

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/gatenet/gate/services/policy"
)

func pfx(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, x := range s {
		out = append(out, netip.MustParseAddr(x))
	}
	return out
}

// seedGateway is the AWS gate of the seed scenario: one NIC, serving the
// VPC to the overlay and masquerading the private subnet to the internet.
func seedGateway() Ruleset {
	return Ruleset{
		Strict:   true,
		AllowTCP: []uint16{22, 8443},
		AllowUDP: []uint16{51820},
		Overlays: []Overlay{{
			Iface:    "gt8056c2e2",
			Addrs:    addrs("192.168.254.11"),
			Prefixes: pfx("192.168.254.0/24"),
			Gateway: &Gateway{
				Serve:              pfx("172.16.0.0/16"),
				LAN:                "eth0",
				WAN:                "eth0",
				MasqueradeInternet: true,
			},
		}},
	}
}

func TestValidate(t *testing.T) {
	dbRules := compileRules(t, testNetwork(), idDB, "allow from tag:web to members on tcp/5432")
	web := netip.MustParsePrefix("192.168.254.21/32")
	db := pfx("192.168.254.11/32")
	tests := []struct {
		name string
		edit func(rs *Ruleset)
		want []string // substrings of the error; none: valid
	}{
		{name: "seed gateway", edit: func(rs *Ruleset) {}},
		{name: "empty ruleset", edit: func(rs *Ruleset) { *rs = Ruleset{} }},
		{name: "member, not gateway", edit: func(rs *Ruleset) { rs.Overlays[0].Gateway = nil; rs.Strict = false }},
		{name: "dual stack", edit: func(rs *Ruleset) {
			ov := &rs.Overlays[0]
			ov.Addrs = append(ov.Addrs, netip.MustParseAddr("fd8a::11"))
			ov.Prefixes = append(ov.Prefixes, pfx("fd8a::/64", "0.0.0.0/0")...)
			ov.Gateway.Serve = append(ov.Gateway.Serve, pfx("2001:db8::/56")...)
		}},
		{name: "gateway without serve needs no LAN", edit: func(rs *Ruleset) { rs.Overlays[0].Gateway = &Gateway{} }},
		{name: "no WAN", edit: func(rs *Ruleset) { rs.Overlays[0].Gateway.WAN = "" }},
		{name: "port zero", edit: func(rs *Ruleset) { rs.AllowTCP = []uint16{22, 0}; rs.AllowUDP = []uint16{0} },
			want: []string{"AllowTCP[1]: port 0", "AllowUDP[0]: port 0"}},
		{name: "empty iface", edit: func(rs *Ruleset) { rs.Overlays[0].Iface = "" },
			want: []string{"Overlays[0].Iface: interface name is empty"}},
		{name: "long iface", edit: func(rs *Ruleset) { rs.Overlays[0].Iface = "gt0123456789abcd" },
			want: []string{"Overlays[0].Iface", "longer than 15"}},
		{name: "slash in iface", edit: func(rs *Ruleset) { rs.Overlays[0].Iface = "gt/1" },
			want: []string{"Overlays[0].Iface", `forbidden character "/"`}},
		{name: "space in LAN", edit: func(rs *Ruleset) { rs.Overlays[0].Gateway.LAN = "eth 0" },
			want: []string{"Overlays[0].Gateway.LAN", `forbidden character " "`}},
		{name: "colon in WAN", edit: func(rs *Ruleset) { rs.Overlays[0].Gateway.WAN = "eth0:1" },
			want: []string{"Overlays[0].Gateway.WAN", `forbidden character ":"`}},
		{name: "dot iface", edit: func(rs *Ruleset) { rs.Overlays[0].Iface = ".." },
			want: []string{"Overlays[0].Iface", "not allowed"}},
		{name: "duplicate iface", edit: func(rs *Ruleset) {
			rs.Overlays = append(rs.Overlays, Overlay{Iface: "gt8056c2e2"})
		}, want: []string{`Overlays[1].Iface: "gt8056c2e2" is already Overlays[0].Iface`}},
		{name: "invalid addr", edit: func(rs *Ruleset) { rs.Overlays[0].Addrs = []netip.Addr{{}} },
			want: []string{"Overlays[0].Addrs[0]: address is missing"}},
		{name: "mapped addr", edit: func(rs *Ruleset) { rs.Overlays[0].Addrs = addrs("::ffff:192.168.254.11") },
			want: []string{"Overlays[0].Addrs[0]", "IPv4-mapped", "192.168.254.11"}},
		{name: "zoned addr", edit: func(rs *Ruleset) { rs.Overlays[0].Addrs = addrs("fe80::1%eth0") },
			want: []string{"Overlays[0].Addrs[0]", "zone"}},
		{name: "unspecified addr", edit: func(rs *Ruleset) { rs.Overlays[0].Addrs = addrs("0.0.0.0") },
			want: []string{"Overlays[0].Addrs[0]", "unspecified"}},
		{name: "invalid prefix", edit: func(rs *Ruleset) { rs.Overlays[0].Prefixes = append(rs.Overlays[0].Prefixes, netip.Prefix{}) },
			want: []string{"Overlays[0].Prefixes[1]: prefix is missing"}},
		{name: "host bits", edit: func(rs *Ruleset) { rs.Overlays[0].Gateway.Serve = pfx("172.16.1.0/16") },
			want: []string{"Overlays[0].Gateway.Serve[0]", "host bits", "172.16.0.0/16"}},
		{name: "mapped prefix", edit: func(rs *Ruleset) { rs.Overlays[0].Prefixes = pfx("::ffff:192.168.254.0/120") },
			want: []string{"Overlays[0].Prefixes[0]", "IPv4-mapped"}},
		{name: "serve without LAN", edit: func(rs *Ruleset) { rs.Overlays[0].Gateway.LAN = "" },
			want: []string{"Overlays[0].Gateway.LAN: required when Serve is not empty"}},
		{name: "LAN is the overlay", edit: func(rs *Ruleset) { rs.Overlays[0].Gateway.LAN = "gt8056c2e2" },
			want: []string{"Overlays[0].Gateway.LAN", "overlay interface itself"}},
		{name: "WAN is the overlay", edit: func(rs *Ruleset) { rs.Overlays[0].Gateway.WAN = "gt8056c2e2" },
			want: []string{"Overlays[0].Gateway.WAN", "overlay interface itself"}},
		{name: "LAN is another overlay", edit: func(rs *Ruleset) {
			rs.Overlays = append(rs.Overlays, Overlay{Iface: "gtother"})
			rs.Overlays[0].Gateway.LAN = "gtother"
		}, want: []string{`Overlays[0].Gateway.LAN: "gtother" is Overlays[1].Iface`}},
		{name: "serve family not behind overlay", edit: func(rs *Ruleset) {
			rs.Overlays[0].Gateway.Serve = append(rs.Overlays[0].Gateway.Serve, pfx("2001:db8::/56")...)
		}, want: []string{"Overlays[0].Gateway.Serve[1]", "2001:db8::/56 is IPv6", "Overlays[0].Prefixes has no IPv6 prefix"}},
		{name: "policy", edit: func(rs *Ruleset) { rs.Overlays[0].Policy = dbRules }},
		{name: "empty policy", edit: func(rs *Ruleset) { rs.Overlays[0].Policy = &policy.Ruleset{} }},
		{name: "policy naming a set it lacks", edit: func(rs *Ruleset) {
			rs.Overlays[0].Policy = &policy.Ruleset{Input: []policy.CompiledRule{{Rule: 1, Allow: true, FromSets: []string{"tag:web"}, To: db}}}
		}, want: []string{"Overlays[0].Policy", `source set "tag:web"`}},
		{name: "policy rules out of order", edit: func(rs *Ruleset) {
			rs.Overlays[0].Policy = &policy.Ruleset{Forward: []policy.CompiledRule{
				{Rule: 2, From: []netip.Prefix{web}, To: pfx("172.16.0.0/16")},
				{Rule: 1, From: []netip.Prefix{web}, To: pfx("172.16.0.0/16")},
			}}
		}, want: []string{"Overlays[0].Policy", "forward: rule 1 after rule 2"}},
		{name: "policy with a bad service", edit: func(rs *Ruleset) {
			rs.Overlays = append(rs.Overlays, Overlay{Iface: "gtx", Policy: &policy.Ruleset{Input: []policy.CompiledRule{
				{Rule: 1, From: []netip.Prefix{web}, To: db, Services: []policy.Service{{Proto: policy.ICMP, Lo: 8, Hi: 8}}},
			}}})
		}, want: []string{"Overlays[1].Policy", "takes no ports"}},
		{name: "every error reported", edit: func(rs *Ruleset) {
			rs.AllowUDP = []uint16{0}
			rs.Overlays[0].Iface = ""
			rs.Overlays[0].Gateway.LAN = ""
		}, want: []string{"AllowUDP[0]", "Overlays[0].Iface", "Overlays[0].Gateway.LAN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := seedGateway()
			tt.edit(&rs)
			err := rs.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error mentioning %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to mention %q", err, w)
				}
			}
		})
	}
}
