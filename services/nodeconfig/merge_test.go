package nodeconfig

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func mustLayer(t *testing.T, src Source, name, doc string) *Layer {
	t.Helper()
	l, err := ParseLayer(src, name, []byte(doc))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return l
}

func TestMergePrecedenceAndProvenance(t *testing.T) {
	defaults := NewLayer(SourceDefaults, "", &Config{
		Hostname:   "gate",
		Interfaces: map[string]Interface{"eth0": {DHCP: true}, "eth1": {DHCP: true}},
	})
	preseed := mustLayer(t, SourcePreseed, "/boot/gate/preseed.yaml", `version: 1
hostname: preseeded
controller: {listen: ":8443"}
`)
	userData := mustLayer(t, SourceUserData, "user-data (NoCloud)", `version: 1
interfaces:
  eth1: {address: 172.16.1.10/24, gateway: 172.16.1.1}
networks:
  - join: `+netID+`
`)
	local := mustLayer(t, SourceLocal, "console", "version: 1\nwan: eth1\n")
	cmdline, err := ParseCmdline(`BOOT_IMAGE=/vmlinuz console=ttyS0,115200 gate.hostname="rescue" gate.iface.eth0=dhcp quiet`)
	if err != nil {
		t.Fatal(err)
	}
	// Given out of order, nil included: Merge sorts by source.
	e, err := Merge(cmdline, userData, nil, local, defaults, preseed)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Version:  1,
		Hostname: "rescue",
		WAN:      "eth1",
		Interfaces: map[string]Interface{
			"eth0": {DHCP: true},
			"eth1": {Address: netip.MustParsePrefix("172.16.1.10/24"), Gateway: netip.MustParseAddr("172.16.1.1")},
		},
		Networks:   []Network{{Join: netID}},
		Controller: &Controller{Listen: ":8443"},
	}
	if diff := cmp.Diff(want, e.Config, cmpAddrs...); diff != "" {
		t.Errorf("config (-want +got)\n%s", diff)
	}
	wantProv := []Provenance{
		{"controller", SourcePreseed, "/boot/gate/preseed.yaml"},
		{"hostname", SourceCmdline, "kernel command line"},
		{"interfaces.eth0", SourceCmdline, "kernel command line"},
		{"interfaces.eth1", SourceUserData, "user-data (NoCloud)"},
		{"networks", SourceUserData, "user-data (NoCloud)"},
		{"wan", SourceLocal, "console"},
	}
	if diff := cmp.Diff(wantProv, e.Provenance()); diff != "" {
		t.Errorf("provenance (-want +got)\n%s", diff)
	}
	if p, ok := e.Origin("interfaces.eth1.gateway"); !ok || p.Source != SourceUserData {
		t.Errorf("Origin(interfaces.eth1.gateway) = %+v, %v", p, ok)
	}
	if p, ok := e.Origin("networks[0].join"); !ok || p.Path != "networks" {
		t.Errorf("Origin(networks[0].join) = %+v, %v", p, ok)
	}
	if _, ok := e.Origin("version"); ok {
		t.Error("version has no layer")
	}
}

// A NIC is replaced whole: a static address above a DHCP default is not a
// conflict, and a null removes what a lower layer set.
func TestMergeUnitsAndNull(t *testing.T) {
	low := mustLayer(t, SourcePreseed, "preseed", `version: 1
hostname: a
interfaces: {eth0: {dhcp: true, dns: [1.1.1.1]}, eth1: {dhcp: true}}
controller: {listen: ":8443"}
networks: [{join: `+netID+`}]
`)
	high := mustLayer(t, SourceUserData, "user-data", `version: 1
hostname: null
interfaces:
  eth0: {address: 10.0.0.5/24}
  eth1: ~
controller: null
networks: []
`)
	e, err := Merge(low, high)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{Version: 1, Interfaces: map[string]Interface{"eth0": {Address: netip.MustParsePrefix("10.0.0.5/24")}}, Networks: []Network{}}
	if diff := cmp.Diff(want, e.Config, cmpAddrs...); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	for _, p := range e.Provenance() {
		if p.Path == "hostname" || p.Path == "controller" || p.Path == "interfaces.eth1" {
			t.Errorf("removed unit still has an origin: %+v", p)
		}
	}
	// interfaces: null drops every NIC of the lower layers.
	drop := mustLayer(t, SourceLocal, "console", "version: 1\ninterfaces: null\n")
	e, err = Merge(low, drop)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Config.Interfaces) != 0 {
		t.Errorf("interfaces left: %v", e.Config.Interfaces)
	}
}

// An invalid merge names the layer and line the bad value came from, and
// returns no configuration.
func TestMergeErrorsNameTheLayer(t *testing.T) {
	preseed := mustLayer(t, SourcePreseed, "preseed", "version: 1\nhostname: a\n")
	bad := mustLayer(t, SourceUserData, "user-data (AWS)", `version: 1
interfaces:
  eth0:
    address: 10.0.0.5/24
    gateway: 10.9.0.1
networks:
  - join: `+netID+`
`)
	e, err := Merge(preseed, bad)
	if e != nil {
		t.Errorf("an invalid merge returned a config: %+v", e.Config)
	}
	var me *Error
	if !errors.As(err, &me) {
		t.Fatalf("got %v", err)
	}
	var got []string
	for _, is := range me.Errors {
		got = append(got, is.String())
	}
	want := []string{
		"interfaces.eth0.gateway: 10.9.0.1 is outside the NIC's subnet 10.0.0.0/24 (user-data (AWS), line 5)",
		"networks[0].controller: needed with a bare network ID (gate://HOST:PORT?pin=sha256:...), unless this node runs the controller (user-data (AWS), line 7)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	// The same user-data is fine once a controller runs here and the
	// gateway is fixed from the console: it is the merge that is judged.
	fix := mustLayer(t, SourceLocal, "console", "version: 1\ninterfaces: {eth0: {dhcp: true}}\ncontroller: {listen: \":8443\"}\n")
	if _, err := Merge(preseed, bad, fix); err != nil {
		t.Errorf("fixed merge: %v", err)
	}
}

func TestParseEmbedded(t *testing.T) {
	data := []byte(`#cloud-config
packages: [curl]
gate:
  hostname: from-cloud-config
  interfacs: {}
runcmd: ["echo hi"]
`)
	l, others, err := ParseEmbedded(SourceUserData, "user-data", data, "gate")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"packages", "runcmd"}, others); diff != "" {
		t.Errorf("others (-want +got)\n%s", diff)
	}
	if l.Config.Hostname != "from-cloud-config" {
		t.Errorf("hostname %q", l.Config.Hostname)
	}
	if len(l.Warnings) != 1 || l.Warnings[0].String() != "gate.interfacs: unknown key (line 5)" {
		t.Errorf("warnings %v", l.Warnings)
	}
	_, _, err = ParseEmbedded(SourceUserData, "user-data", []byte("gate:\n  hostname: [x]\n"), "gate")
	if err == nil || !strings.Contains(err.Error(), "gate.hostname: want a string, got a list (line 2)") {
		t.Errorf("got %v", err)
	}
	l, _, err = ParseEmbedded(SourceUserData, "user-data", []byte("packages: [x]\n"), "gate")
	if l != nil || err != nil {
		t.Errorf("no gate key: got %v, %v", l, err)
	}
}

func TestCmdline(t *testing.T) {
	l, err := ParseCmdline(`ro gate.iface.eth0=10.0.0.5/24,10.0.0.1,1.1.1.1,2001:db8::1 gate.iface.eth1=default gate.wan=eth0 ` +
		`gate.join=` + joinStr + ` gate.controller=:8443 gate.frobnicate=1 gate.wan=eth0`)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		WAN: "eth0",
		Interfaces: map[string]Interface{"eth0": {
			Address: netip.MustParsePrefix("10.0.0.5/24"), Gateway: netip.MustParseAddr("10.0.0.1"),
			DNS: []netip.Addr{netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("2001:db8::1")},
		}},
		Networks:   []Network{{Join: joinStr}},
		Controller: &Controller{Listen: ":8443"},
	}
	if diff := cmp.Diff(want, l.Config, cmpAddrs...); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	var warns []string
	for _, w := range l.Warnings {
		warns = append(warns, w.String())
	}
	if diff := cmp.Diff([]string{
		"gate.frobnicate: unknown parameter (see gate.hostname, gate.wan, gate.iface.IFACE, gate.join, gate.controller)",
		"gate.wan: given twice; the last one wins",
	}, warns); diff != "" {
		t.Errorf("warnings (-want +got)\n%s", diff)
	}
	base := mustLayer(t, SourcePreseed, "preseed", "version: 1\ninterfaces: {eth1: {dhcp: true}}\ncontroller: {listen: \":1\"}\n")
	e, err := Merge(base, l)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := e.Config.Interfaces["eth1"]; ok {
		t.Error("gate.iface.eth1=default did not remove eth1")
	}
	off, err := ParseCmdline("gate.controller=off gate.join=none")
	if err != nil {
		t.Fatal(err)
	}
	e, err = Merge(base, off)
	if err != nil {
		t.Fatal(err)
	}
	if e.Config.Controller != nil || e.Config.Networks == nil || len(e.Config.Networks) != 0 {
		t.Errorf("off/none: %+v", e.Config)
	}

	for _, tc := range []struct{ cmdline, want string }{
		{"gate.hostname=bad_host", `gate.hostname: "bad_host" is not a host name`},
		{"gate.iface.eth0=10.0.0.300/24", `gate.iface.eth0: "10.0.0.300/24": want dhcp, default, or ADDRESS/LEN[,GATEWAY[,DNS...]]`},
		{"gate.iface.eth0=10.0.0.3/24,gw", `gate.iface.eth0: gateway "gw" is not an IP address`},
		{"gate.iface.eth0=10.0.0.3/24,,x", `gate.iface.eth0: DNS server "x" is not an IP address`},
		{"gate.iface.a/b=dhcp", `gate.iface.a/b: "a/b" is not an interface name`},
		{"gate.wan=", `gate.wan: "" is not an interface name`},
	} {
		if _, err := ParseCmdline(tc.cmdline); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.cmdline, err, tc.want)
		}
	}
	// A join string that is bad is the merge's to refuse, with its origin.
	bad, err := ParseCmdline("gate.join=gate://x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Merge(bad); err == nil || !strings.Contains(err.Error(), "networks[0].join: join string: controller \"x\" must be HOST:PORT (kernel command line)") {
		t.Errorf("got %v", err)
	}
}

func TestSplitCmdline(t *testing.T) {
	got := splitCmdline("  a=1 b=\"x y\"\tc  \"d=e f\"\n")
	want := []string{"a=1", `b="x y"`, "c", `"d=e f"`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	l, err := ParseCmdline(`"gate.hostname=quoted"`)
	if err != nil || l.Config.Hostname != "quoted" {
		t.Errorf("got %+v, %v", l, err)
	}
}
