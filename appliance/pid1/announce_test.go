package pid1

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatenet/gate/services/localapi"
)

func TestConfigLine(t *testing.T) {
	for _, c := range []struct {
		s           localapi.ConfigStatus
		head, items string
	}{
		{localapi.ConfigStatus{State: "applied", Source: "none"},
			`config state=applied source="none" instance=- first_boot=false errors=0 warnings=0`, ""},
		{localapi.ConfigStatus{State: "rejected", Source: "nocloud: /dev/vdb (vfat CIDATA)", InstanceID: "iid-1",
			Errors: []string{"a: bad\nvalue"}, Warnings: []string{"b: unknown key"}},
			`config state=rejected source="nocloud: /dev/vdb (vfat CIDATA)" instance=iid-1 first_boot=false errors=1 warnings=1`,
			": error: a: bad value; warning: b: unknown key"},
	} {
		head, items := configLine(&c.s)
		if head != c.head || items != c.items {
			t.Errorf("configLine(%+v) =\n%q %q, want\n%q %q", c.s, head, items, c.head, c.items)
		}
	}
}

// snap builds a snapshot for the table below.
type snap struct {
	firewall string
	nics     []localapi.Interface
	config   *localapi.ConfigStatus
}

func (s snap) snapshot() localapi.Snapshot {
	return localapi.Snapshot{
		Status:     localapi.Status{NodeID: "fb175923af", Hostname: "gate", Firewall: s.firewall, LastError: "ignored here", Config: s.config},
		Interfaces: s.nics,
	}
}

func wan(name, addr, gw string, dns ...string) localapi.Interface {
	n := localapi.Interface{Name: name, Mode: "dhcp", WAN: true, DefaultRoute: true}
	if addr != "" {
		n.Addresses = []netip.Prefix{netip.MustParsePrefix(addr)}
	}
	if gw != "" {
		n.Gateway = netip.MustParseAddr(gw)
	}
	for _, d := range dns {
		n.DNS = append(n.DNS, netip.MustParseAddr(d))
	}
	return n
}

// TestToldNext feeds a sequence of snapshots, as one watch of the daemon
// would see them (across restarts of the daemon), and checks the lines
// each adds: their exact format is what the boot tests grep.
func TestToldNext(t *testing.T) {
	const (
		ready   = "gate: ready node=fb175923af version=v1 hostname=gate firewall=strict uptime=2.50s"
		network = "gate: network wan=eth0 address=10.0.77.10/24 gateway=10.0.77.1 dns=10.0.77.53,10.0.77.54 mode=dhcp default_route=true uptime=2.50s"
	)
	eth0 := wan("eth0", "10.0.77.10/24", "10.0.77.1", "10.0.77.53", "10.0.77.54")
	applied := &localapi.ConfigStatus{State: localapi.ConfigApplied, Source: "nocloud: /dev/vdb (vfat CIDATA)", InstanceID: "iid-gate-nocloud-1", FirstBoot: true,
		Warnings: []string{"user-data (nocloud): cloud-config keys ignored (Gate reads only gate:): ssh_authorized_keys"}}
	const appliedLine = `gate: config state=applied source="nocloud: /dev/vdb (vfat CIDATA)" instance=iid-gate-nocloud-1 first_boot=true errors=0 warnings=1 uptime=2.50s: warning: user-data (nocloud): cloud-config keys ignored (Gate reads only gate:): ssh_authorized_keys`
	rejected := &localapi.ConfigStatus{State: localapi.ConfigRejected, Source: "none", Errors: []string{"gate.hostname: bad"}}
	const rejectedLine = `gate: config state=rejected source="none" instance=- first_boot=false errors=1 warnings=0 uptime=2.50s: error: gate.hostname: bad`

	for _, tc := range []struct {
		name  string
		snaps []snap
		want  [][]string // the lines after each snapshot
	}{
		{"nothing before the first reconcile pass",
			[]snap{{}, {firewall: "strict"}},
			[][]string{nil, {ready}}},
		{"ready once, across daemon restarts",
			[]snap{{firewall: "strict"}, {firewall: "strict"}, {}, {firewall: "guard"}},
			[][]string{{ready}, nil, nil, nil}},
		{"all three from one snapshot, ready first",
			[]snap{{firewall: "strict", nics: []localapi.Interface{eth0}, config: applied}},
			[][]string{{ready, network, appliedLine}}},
		{"network: not without an IPv4 address on the WAN",
			[]snap{
				{nics: []localapi.Interface{{Name: "eth0", Mode: "dhcp"}, wan("eth1", "", "")}},
				{nics: []localapi.Interface{wan("eth0", "2001:db8::1/64", "")}},
				{nics: []localapi.Interface{eth0}},
			},
			[][]string{nil, nil, {network}}},
		{"network: the first WAN with addresses is the one printed",
			[]snap{{nics: []localapi.Interface{wan("eth1", "", ""), {Name: "eth2", Addresses: eth0.Addresses}, eth0, wan("eth3", "10.0.0.1/8", "")}}},
			[][]string{{network}}},
		{"network: no gateway, no DNS, static",
			[]snap{{nics: []localapi.Interface{{Name: "eth1", Mode: "static", WAN: true, Addresses: []netip.Prefix{netip.MustParsePrefix("2001:db8::2/64"), netip.MustParsePrefix("172.16.1.10/24")}}}}},
			[][]string{{"gate: network wan=eth1 address=172.16.1.10/24 gateway=- dns= mode=static default_route=false uptime=2.50s"}}},
		{"network: again only when what it prints changes",
			[]snap{
				{nics: []localapi.Interface{eth0}},
				{nics: []localapi.Interface{eth0}},
				{nics: []localapi.Interface{wan("eth0", "10.0.77.10/24", "10.0.77.1", "10.0.77.53")}},
				{nics: []localapi.Interface{wan("eth0", "10.0.77.11/24", "10.0.77.1", "10.0.77.53")}},
			},
			[][]string{{network}, nil,
				{"gate: network wan=eth0 address=10.0.77.10/24 gateway=10.0.77.1 dns=10.0.77.53 mode=dhcp default_route=true uptime=2.50s"},
				{"gate: network wan=eth0 address=10.0.77.11/24 gateway=10.0.77.1 dns=10.0.77.53 mode=dhcp default_route=true uptime=2.50s"}}},
		{"network: the same WAN back after a daemon restart is not news",
			[]snap{{nics: []localapi.Interface{eth0}}, {}, {nics: []localapi.Interface{eth0}}},
			[][]string{{network}, nil, nil}},
		{"config: not while pending, then each change",
			[]snap{
				{config: &localapi.ConfigStatus{State: localapi.ConfigPending, Source: "none"}},
				{config: applied},
				{config: applied},
				{config: rejected},
				{config: &localapi.ConfigStatus{State: localapi.ConfigPending}},
				{},
				{config: rejected},
				{config: applied},
			},
			[][]string{nil, {appliedLine}, nil, {rejectedLine}, nil, nil, nil, {appliedLine}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var told told
			for i, s := range tc.snaps {
				var got []string
				told, got = told.next(s.snapshot(), "v1", 2500*time.Millisecond)
				if diff := cmp.Diff(tc.want[i], got); diff != "" {
					t.Errorf("snapshot %d: lines (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}
