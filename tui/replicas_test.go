package tui

import (
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
)

// TestNetworkShowsTheReplicaItIsOn: a network whose controller has several
// addresses says which one the node is on.
func TestNetworkShowsTheReplicaItIsOn(t *testing.T) {
	snap := snapshot()
	n := &snap.Networks[0]
	n.Controller, n.Controllers, n.ControllerNow = "198.51.100.10:8443", []string{"198.51.100.10:8443", "198.51.100.11:8443"}, "198.51.100.11:8443"
	m, _ := send(t, newModel(&recorder{}, true), tea.WindowSizeMsg{Width: 80, Height: 30}, snapshotMsg{snap: snap})
	v := m.View()
	if !strings.Contains(v, "controller 198.51.100.11:8443 (2 of 2 addresses)") {
		t.Errorf("no controller address shown:\n%s", v)
	}
	// One address: nothing more than before.
	m, _ = send(t, newModel(&recorder{}, true), tea.WindowSizeMsg{Width: 80, Height: 30}, snapshotMsg{snap: snapshot()})
	if strings.Contains(m.View(), "addresses)") {
		t.Errorf("controller line for one address:\n%s", m.View())
	}
}

// TestJoinTakesSeveralAddresses: a join string listing a controller's
// replicas is taken and sent as it was typed; a bad list is explained.
func TestJoinTakesSeveralAddresses(t *testing.T) {
	js := "gate://198.51.100.10:8443,198.51.100.11:8443,198.51.100.12:8443/d363b4e9bd3d6aa8?pin=" + pin
	api := &recorder{}
	m, cmd := send(t, newModel(api, true), snapshotMsg{snap: snapshot()}, keys("j"), keys(js), tea.KeyMsg{Type: tea.KeyEnter})
	if cmd == nil || !m.joining {
		t.Fatalf("not sent: %s", m.joinErr)
	}
	cmd()
	if len(api.joins) != 1 || api.joins[0].Join != js {
		t.Fatalf("API got %+v", api.joins)
	}
	api = &recorder{}
	m, cmd = send(t, newModel(api, true), snapshotMsg{snap: snapshot()}, keys("j"), keys("gate://a.example:1,,b.example:2/d363b4e9bd3d6aa8?pin="+pin), tea.KeyMsg{Type: tea.KeyEnter})
	if cmd != nil || len(api.joins) != 0 || !strings.Contains(m.View(), "controller address 2 of 3 is empty") {
		t.Fatalf("a bad list was sent or not explained:\n%s", m.View())
	}
}
