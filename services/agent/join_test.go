package agent

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatenet/gate/services/nodeconfig"
)

// todaysNetworksJSON is a networks.json as the agent wrote it while it
// kept *localapi.Gateway (before the domain's nodeconfig.Gateway).
const todaysNetworksJSON = `{
  "version": 1,
  "default_controller": "gate://198.51.100.10:8443?pin=sha256:ab",
  "networks": [
    {
      "id": "d363b4e9bd3d6aa8",
      "controller": "198.51.100.10:8443",
      "pin": "sha256:ab",
      "address": "192.168.254.11",
      "gateway": {
        "serve": [
          "172.16.0.0/16"
        ],
        "lan": "eth0",
        "masquerade_lan": false,
        "masquerade_internet": true
      },
      "iface": "gtd363b4e9bd",
      "listen_port": 51820,
      "joined": "2025-01-02T03:04:05Z"
    }
  ]
}`

// TestLoadsTodaysNetworksJSON: a node upgraded in place keeps its
// memberships and their gateway roles.
func TestLoadsTodaysNetworksJSON(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, stateFile), []byte(todaysNetworksJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	a, stop := newAgent(t, dir)
	stop() // the loops are not wanted: only what was loaded
	want := []Membership{{
		ID: "d363b4e9bd3d6aa8", Controller: "198.51.100.10:8443", Pin: "sha256:ab",
		Address:    netip.MustParseAddr("192.168.254.11"),
		Gateway:    &nodeconfig.Gateway{Serve: []netip.Prefix{netip.MustParsePrefix("172.16.0.0/16")}, LAN: "eth0", MasqueradeInternet: true},
		Iface:      "gtd363b4e9bd",
		ListenPort: 51820,
		Joined:     time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	}}
	got := a.Memberships()
	for i := range got {
		got[i].Online, got[i].LastSync, got[i].Error, got[i].permanentErr = false, time.Time{}, "", false
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(Membership{}), cmp.Comparer(func(x, y netip.Addr) bool { return x == y }),
		cmp.Comparer(func(x, y netip.Prefix) bool { return x == y })); diff != "" {
		t.Errorf("loaded memberships (-want +got):\n%s", diff)
	}
	if a.doc.DefaultController != "gate://198.51.100.10:8443?pin=sha256:ab" {
		t.Errorf("default controller %q", a.doc.DefaultController)
	}
}

// TestParseJoinIsTheDomainsRule: the agent refuses what the document
// refuses, in its words. Each of these was taken by the agent before its
// check became nodeconfig's.
func TestParseJoinIsTheDomainsRule(t *testing.T) {
	pin := "sha256:" + strings.Repeat("ab", 32)
	js := "gate://198.51.100.10:8443/d363b4e9bd3d6aa8?pin=" + pin
	serve := func(s ...string) []netip.Prefix {
		var ps []netip.Prefix
		for _, x := range s {
			ps = append(ps, netip.MustParsePrefix(x))
		}
		return ps
	}
	for _, tc := range []struct {
		name string
		req  nodeconfig.JoinRequest
		want string
	}{
		{"NAT instance serving nothing", nodeconfig.JoinRequest{Join: js, Gateway: &nodeconfig.Gateway{MasqueradeInternet: true}},
			"gateway: serve: a gateway serves at least one CIDR"},
		{"overlapping serve", nodeconfig.JoinRequest{Join: js, Gateway: &nodeconfig.Gateway{Serve: serve("172.16.0.0/16", "172.16.5.0/24")}},
			"gateway: serve[1]: 172.16.5.0/24 overlaps serve[0] 172.16.0.0/16"},
		{"join string and controller", nodeconfig.JoinRequest{Join: js, Controller: "gate://203.0.113.9:8443?pin=" + pin},
			"controller: the join string already names the controller; drop one"},
		{"broadcast address", nodeconfig.JoinRequest{Join: js, Address: netip.MustParseAddr("255.255.255.255")},
			"address 255.255.255.255 is not a usable host address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &Agent{}
			m, err := a.parseJoin(tc.req)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("parseJoin = %+v, %v; want %q", m, err, tc.want)
			}
			if want := tc.req.Check(); want == nil || want.Error() != err.Error() {
				t.Errorf("the agent says %v, the domain %v", err, want)
			}
		})
	}
	// A bare network ID goes to the last controller.
	a := &Agent{}
	a.doc.DefaultController = "gate://198.51.100.10:8443?pin=" + pin
	m, err := a.parseJoin(nodeconfig.JoinRequest{Join: " D363B4E9BD3D6AA8 "})
	if err != nil || m.ID != "d363b4e9bd3d6aa8" || m.Controller != "198.51.100.10:8443" || m.Pin != pin {
		t.Errorf("bare ID: %+v, %v", m, err)
	}
	if _, err := (&Agent{}).parseJoin(nodeconfig.JoinRequest{Join: "d363b4e9bd3d6aa8"}); err == nil || !strings.Contains(err.Error(), "no controller known yet") {
		t.Errorf("bare ID without a controller: %v", err)
	}
}
