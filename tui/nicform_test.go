package tui

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/nodeconfig"
)

func TestNICFormRequest(t *testing.T) {
	others := []localapi.Interface{
		{Name: "eth0", Addresses: []netip.Prefix{netip.MustParsePrefix("172.16.1.10/24")}},
		{Name: "eth1", Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.5/24")}},
	}
	tests := []struct {
		name string
		form nicForm
		want localapi.SetInterfaceRequest
		errs map[int]string
	}{
		{name: "dhcp", form: nicForm{name: "eth1", dhcp: true}, want: localapi.SetInterfaceRequest{DHCP: true}},
		{name: "static", form: nicForm{name: "eth1", address: " 10.0.0.9/24 ", gateway: "10.0.0.1", dns: "10.0.0.2, 1.1.1.1"},
			want: localapi.SetInterfaceRequest{Address: netip.MustParsePrefix("10.0.0.9/24"), Gateway: netip.MustParseAddr("10.0.0.1"),
				DNS: []netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("1.1.1.1")}}},
		{name: "keeping its own address is not a duplicate", form: nicForm{name: "eth1", address: "10.0.0.5/24"},
			want: localapi.SetInterfaceRequest{Address: netip.MustParsePrefix("10.0.0.5/24")}},
		{name: "empty", form: nicForm{name: "eth1"}, errs: map[int]string{fieldAddress: "required"}},
		{name: "bad CIDR", form: nicForm{name: "eth1", address: "10.0.0.300/24"}, errs: map[int]string{fieldAddress: "not an address/prefix"}},
		{name: "no prefix", form: nicForm{name: "eth1", address: "10.0.0.9"}, errs: map[int]string{fieldAddress: "not an address/prefix"}},
		{name: "network address", form: nicForm{name: "eth1", address: "10.0.0.0/24"}, errs: map[int]string{fieldAddress: "network address"}},
		{name: "broadcast", form: nicForm{name: "eth1", address: "10.0.0.255/24"}, errs: map[int]string{fieldAddress: "broadcast"}},
		{name: "IPv6", form: nicForm{name: "eth1", address: "fd00::1/64"}, errs: map[int]string{fieldAddress: "IPv4 only"}},
		{name: "duplicate", form: nicForm{name: "eth1", address: "172.16.1.10/16"}, errs: map[int]string{fieldAddress: "eth0 already has 172.16.1.10"}},
		{name: "gateway outside", form: nicForm{name: "eth1", address: "10.0.0.9/24", gateway: "10.0.1.1"}, errs: map[int]string{fieldGateway: "outside 10.0.0.0/24"}},
		{name: "gateway is self", form: nicForm{name: "eth1", address: "10.0.0.9/24", gateway: "10.0.0.9"}, errs: map[int]string{fieldGateway: "own address"}},
		{name: "bad DNS", form: nicForm{name: "eth1", address: "10.0.0.9/24", dns: "10.0.0.2, dns.example"}, errs: map[int]string{fieldDNS: `"dns.example" is not an IP address`}},
	}
	for _, tt := range tests {
		got, errs := tt.form.request(others)
		if len(tt.errs) > 0 {
			if len(errs) != len(tt.errs) {
				t.Errorf("%s: errors %v, want %v", tt.name, errs, tt.errs)
			}
			for f, want := range tt.errs {
				if !strings.Contains(errs[f], want) {
					t.Errorf("%s: field %d error %q, want %q", tt.name, f, errs[f], want)
				}
			}
			continue
		}
		if len(errs) > 0 || got.DHCP != tt.want.DHCP || got.Address != tt.want.Address || got.Gateway != tt.want.Gateway || len(got.DNS) != len(tt.want.DNS) {
			t.Errorf("%s: request = %+v, %v; want %+v", tt.name, got, errs, tt.want)
		}
	}
}

func nicSnapshot() localapi.Snapshot {
	s := snapshot()
	s.Interfaces = []localapi.Interface{
		{Name: "eth0", Link: "up", Mode: "dhcp", WAN: true, Addresses: []netip.Prefix{netip.MustParsePrefix("172.16.1.10/24")}, Gateway: netip.MustParseAddr("172.16.1.1"),
			DHCP: &localapi.DHCP{State: "bound", Server: netip.MustParseAddr("172.16.1.1")}},
	}
	return s
}

func TestEditNICShowsErrorsAsTyped(t *testing.T) {
	api := &recorder{}
	m, _ := send(t, newModel(api, true), tea.WindowSizeMsg{Width: 80, Height: 24}, snapshotMsg{snap: nicSnapshot()}, keys("i"))
	if v := m.View(); !strings.Contains(v, "eth0") || !strings.Contains(v, "WAN") || !strings.Contains(v, "DHCP bound from 172.16.1.1") {
		t.Fatalf("interfaces screen:\n%s", v)
	}
	m, _ = send(t, m, keys("e"))
	if m.screen != screenEditNIC || !strings.Contains(m.View(), "(*) DHCP") {
		t.Fatalf("edit screen:\n%s", m.View())
	}
	// Static, then a bad address: the error shows next to the field.
	m, _ = send(t, m, tea.KeyMsg{Type: tea.KeySpace}, tea.KeyMsg{Type: tea.KeyTab})
	m.fields[fieldAddress].SetValue("")
	m.fields[fieldGateway].SetValue("") // a new subnet: the old gateway would be outside it
	m, _ = send(t, m, keys("1"), keys("0"), keys("."), keys("0"), keys("."), keys("0"), keys("."), keys("0"), keys("/"), keys("2"), keys("4"))
	if v := m.View(); !strings.Contains(v, "(*) static") || !strings.Contains(v, "network address") {
		t.Fatalf("no error next to the address:\n%s", v)
	}
	m, cmd := send(t, m, tea.KeyMsg{Type: tea.KeyEnter})
	if cmd != nil || len(api.sets) != 0 {
		t.Fatal("an invalid form was applied")
	}
	m, _ = send(t, m, tea.KeyMsg{Type: tea.KeyBackspace}, tea.KeyMsg{Type: tea.KeyBackspace}, tea.KeyMsg{Type: tea.KeyBackspace},
		tea.KeyMsg{Type: tea.KeyBackspace}, keys("9"), keys("/"), keys("2"), keys("4"))
	if v := m.View(); strings.Contains(v, "! ") {
		t.Fatalf("error stayed after fixing the address:\n%s", v)
	}
	m, cmd = send(t, m, tea.KeyMsg{Type: tea.KeyEnter})
	if cmd == nil {
		t.Fatal("a valid form was not applied")
	}
	m, _ = send(t, m, cmd())
	if got := api.sets["eth0"]; got.Address != netip.MustParsePrefix("10.0.0.9/24") {
		t.Fatalf("applied %+v", got)
	}
	// The daemon reports the change on probation: a countdown and c.
	s := nicSnapshot()
	s.Status.Pending = &localapi.Pending{What: "eth0: static 10.0.0.9/24", Deadline: m.now().Add(42 * time.Second)}
	m, _ = send(t, m, snapshotMsg{snap: s})
	if v := m.View(); !strings.Contains(v, "Keep eth0: static 10.0.0.9/24?") || !strings.Contains(v, "reverts in 42s") {
		t.Fatalf("no countdown:\n%s", v)
	}
	m, cmd = send(t, m, keys("c"))
	if cmd == nil {
		t.Fatal("c did not confirm")
	}
	send(t, m, cmd())
	if api.confirms != 1 {
		t.Errorf("confirms = %d", api.confirms)
	}
}

func TestPowerAsksFirst(t *testing.T) {
	api := &recorder{}
	m, _ := send(t, newModel(api, true), snapshotMsg{snap: snapshot()}, keys("R"))
	if !strings.Contains(m.View(), "Reboot this machine?") {
		t.Fatalf("no question:\n%s", m.View())
	}
	m, cmd := send(t, m, keys("n"))
	if cmd != nil || len(api.power) != 0 {
		t.Fatal("n rebooted")
	}
	m, cmd = send(t, m, keys("P"), keys("y"))
	if cmd == nil {
		t.Fatal("y did nothing")
	}
	send(t, m, cmd())
	if len(api.power) != 1 || api.power[0] != "poweroff" {
		t.Errorf("power = %v", api.power)
	}
}

func TestDashboardShowsNICs(t *testing.T) {
	m, _ := send(t, newModel(&recorder{}, true), tea.WindowSizeMsg{Width: 80, Height: 24}, snapshotMsg{snap: nicSnapshot()})
	v := m.View()
	if !strings.Contains(v, "eth0       up    dhcp   172.16.1.10/24 via 172.16.1.1 WAN") {
		t.Errorf("dashboard lacks the NIC line:\n%s", v)
	}
	if lines := strings.Split(v, "\n"); len(lines) != 24 {
		t.Errorf("%d lines, want 24", len(lines))
	}
}

func TestTallBodyIsCut(t *testing.T) {
	s := nicSnapshot()
	for i := 0; i < 30; i++ {
		s.Interfaces = append(s.Interfaces, localapi.Interface{Name: fmt.Sprintf("eth%d", i+1), Link: "up", Mode: "dhcp"})
	}
	m, _ := send(t, newModel(&recorder{}, true), tea.WindowSizeMsg{Width: 80, Height: 24}, snapshotMsg{snap: s})
	lines := strings.Split(m.View(), "\n")
	if len(lines) != 24 || !strings.Contains(lines[23], "j join") {
		t.Errorf("%d lines, last %q; want 24 with the help bar last", len(lines), lines[len(lines)-1])
	}
}

// TestAttackNICForm: the form refuses what the document refuses, with
// the document validator's own words: a NIC name that is no interface
// name (the daemon's snapshot is shown and sent back), a DNS server with
// a zone or one resolv.conf would drop.
func TestAttackNICForm(t *testing.T) {
	for _, tc := range []struct {
		form  nicForm
		field int
		want  error
	}{
		{nicForm{name: "\x1b[2J", dhcp: true}, fieldMode, nodeconfig.CheckInterfaceName("\x1b[2J")},
		{nicForm{name: "eth0/../x", address: "10.0.0.9/24"}, fieldMode, nodeconfig.CheckInterfaceName("eth0/../x")},
		{nicForm{name: "eth1", address: "10.0.0.9/24", dns: "fe80::1%eth0"}, fieldDNS, nodeconfig.CheckNameserver(netip.MustParseAddr("fe80::1%eth0"))},
		{nicForm{name: "eth1", address: "10.0.0.9/24", dns: "127.0.0.1"}, fieldDNS, nodeconfig.CheckNameserver(netip.MustParseAddr("127.0.0.1"))},
		{nicForm{name: "eth1", address: "10.0.0.9/24", dns: "1.1.1.1 224.0.0.1"}, fieldDNS, nodeconfig.CheckNameserver(netip.MustParseAddr("224.0.0.1"))},
	} {
		_, errs := tc.form.request(nil)
		if tc.want == nil || errs[tc.field] != tc.want.Error() {
			t.Errorf("%+v: field %d error %q, want %v", tc.form, tc.field, errs[tc.field], tc.want)
		}
	}
	// The form's title shows the name as the validator quotes it.
	m := newModel(&recorder{}, true)
	m.form = nicForm{name: "\x1b]0;owned\x07", dhcp: true}
	if v := m.editNICView(); strings.ContainsAny(v, "\x07") || strings.Contains(v, "\x1b]0") {
		t.Errorf("form title carries the raw name: %q", v)
	}
}
