package cloud

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/gatenet/gate/services/nodeconfig"
	"github.com/google/go-cmp/cmp"
)

var cmpAddrs = []cmp.Option{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
}

func static(addr, gw string, dns ...string) nodeconfig.Interface {
	nic := nodeconfig.Interface{Address: netip.MustParsePrefix(addr)}
	if gw != "" {
		nic.Gateway = netip.MustParseAddr(gw)
	}
	for _, d := range dns {
		nic.DNS = append(nic.DNS, netip.MustParseAddr(d))
	}
	return nic
}

func TestParseNetworkConfig(t *testing.T) {
	for _, tc := range []struct {
		name  string
		doc   string
		want  map[string]nodeconfig.Interface
		notes []string
		err   string
	}{
		// cloud-init's NoCloud documentation, version 1.
		{name: "v1 doc example", doc: `version: 1
config:
   - type: physical
     name: interface0
     mac_address: "52:54:00:12:34:00"
     subnets:
        - type: static
          address: 192.168.1.10
          netmask: 255.255.255.0
          gateway: 192.168.1.254
`, want: map[string]nodeconfig.Interface{"interface0": func() nodeconfig.Interface {
			n := static("192.168.1.10/24", "192.168.1.254")
			n.MAC = "52:54:00:12:34:00"
			return n
		}()}},
		// The same, version 2, with its netmask-style address.
		{name: "v2 doc example", doc: `version: 2
ethernets:
  interface0:
    match:
      macaddress: "52:54:00:12:34:00"
    set-name: interface0
    addresses:
      - 192.168.1.10/255.255.255.0
    gateway4: 192.168.1.254
`, want: map[string]nodeconfig.Interface{"interface0": func() nodeconfig.Interface {
			n := static("192.168.1.10/24", "192.168.1.254")
			n.MAC = "52:54:00:12:34:00"
			return n
		}()}},
		{name: "v1 dhcp, nameserver, bond", doc: `network:
  version: 1
  config:
    - {type: physical, name: eth0, subnets: [{type: dhcp}]}
    - type: physical
      name: eth1
      subnets:
        - {type: static, address: 10.0.0.5/24}
        - {type: static, address: 10.0.1.5/24}
        - {type: static6, address: "2001:db8::5/64"}
    - {type: bond, name: bond0}
    - {type: nameserver, address: [1.1.1.1, 8.8.8.8]}
`, want: map[string]nodeconfig.Interface{
			"eth0": {DHCP: true},
			"eth1": static("10.0.0.5/24", "", "1.1.1.1", "8.8.8.8"),
		}, notes: []string{
			`network-config: config[1].subnets[1]: a further address ignored (Gate takes one per NIC)`,
			`network-config: config[1].subnets[2]: IPv6 (static6) ignored`,
			`network-config: config[2]: type "bond" ignored (Gate configures physical NICs)`,
			`network-config: nameserver entry applied to the static NICs without DNS servers`,
		}},
		{name: "v2 netplan style", doc: `network:
  version: 2
  ethernets:
    lan:
      match: {name: ens4}
      dhcp4: no
      addresses: [172.16.1.10/24, "2001:db8::10/64"]
      routes: [{to: default, via: 172.16.1.1}, {to: 10.9.0.0/16, via: 172.16.1.2}]
      nameservers: {addresses: [172.16.0.2]}
    wan:
      dhcp4: yes
    odd:
      match: {name: "en*"}
  vlans: {v10: {id: 10, link: lan}}
`, want: map[string]nodeconfig.Interface{
			"ens4": static("172.16.1.10/24", "172.16.1.1", "172.16.0.2"),
			"wan":  {DHCP: true},
			"odd":  {DHCP: true},
		}, notes: []string{
			"network-config: vlans ignored (Gate configures physical NICs)",
			"network-config: ethernets.lan.addresses[1]: IPv6 ignored",
			"network-config: ethernets.lan.routes[1]: route to 10.9.0.0/16 ignored (Gate sets the default route only)",
			"network-config: odd: no IPv4 configuration; Gate uses DHCP",
		}},
		{name: "v2 dhcp and static", doc: "version: 2\nethernets:\n  eth0: {dhcp4: true, addresses: [10.0.0.5/24]}\n",
			want:  map[string]nodeconfig.Interface{"eth0": static("10.0.0.5/24", "")},
			notes: []string{"network-config: eth0: both DHCP and a static address; Gate uses the static address"}},
		{name: "no version", doc: "ethernets: {}\n", err: "network-config: missing version: (1 or 2)"},
		{name: "version 3", doc: "version: 3\n", err: "version 3 is not supported"},
		{name: "v1 bad address", doc: "version: 1\nconfig:\n  - {type: physical, name: eth0, subnets: [{type: static, address: 10.0.0.300/24}]}\n",
			err: `config[0].subnets[0].address: "10.0.0.300/24" is not an IP address or CIDR`},
		{name: "v1 no netmask", doc: "version: 1\nconfig:\n  - {type: physical, name: eth0, subnets: [{type: static, address: 10.0.0.3}]}\n",
			err: `"10.0.0.3" has no prefix length or netmask`},
		{name: "v1 bad netmask", doc: "version: 1\nconfig:\n  - {type: physical, name: eth0, subnets: [{type: static, address: 10.0.0.3, netmask: 255.0.255.0}]}\n",
			err: `netmask "255.0.255.0" is not contiguous`},
		{name: "v1 no name", doc: "version: 1\nconfig:\n  - {type: physical}\n", err: "config[0]: a physical entry needs a name"},
		{name: "v1 subnet type", doc: "version: 1\nconfig:\n  - {type: physical, name: e, subnets: [{type: magic}]}\n", err: `config[0].subnets[0].type: unknown subnet type "magic"`},
		{name: "v2 bad dns", doc: "version: 2\nethernets:\n  eth0: {dhcp4: true, nameservers: {addresses: [x]}}\n", err: `ethernets.eth0.nameservers.addresses[0]: "x" is not an IP address`},
		{name: "v2 bad bool", doc: "version: 2\nethernets:\n  eth0: {dhcp4: maybe}\n", err: `want true or false, got "maybe"`},
		{name: "v2 bad mac", doc: "version: 2\nethernets:\n  eth0: {match: {macaddress: zz}}\n", err: `ethernets.eth0.match.macaddress: "zz" is not a MAC address`},
		{name: "v2 gateway outside", doc: "version: 2\nethernets:\n  eth0: {addresses: [10.0.0.5/24], gateway4: 10.1.0.1}\n", err: "interfaces.eth0.gateway: 10.1.0.1 is outside the NIC's subnet 10.0.0.0/24"},
		{name: "v2 bad name", doc: "version: 2\nethernets:\n  \"a/b\": {dhcp4: true}\n", err: `ethernets.a/b: "a/b" is not an interface name`},
		{name: "v2 twice", doc: "version: 2\nethernets:\n  a: {set-name: x, dhcp4: true}\n  b: {set-name: x, dhcp4: true}\n", err: "ethernets.b: NIC x configured twice"},
		{name: "not YAML", doc: "version: [\n", err: "network-config: yaml:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, notes, err := ParseNetworkConfig([]byte(tc.doc))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmpAddrs...); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
			if diff := cmp.Diff(tc.notes, notes); diff != "" {
				t.Errorf("notes (-want +got)\n%s", diff)
			}
		})
	}
}
