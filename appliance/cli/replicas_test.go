package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/logring"
)

// replicaDaemon is a local API with one network on a controller run as
// two replicas (the node on the second) and one on a single controller.
type replicaDaemon struct{ joined []localapi.JoinRequest }

var replicaNetworks = []localapi.Network{{
	ID: "d363b4e9bd3d6aa8", Name: "prod", Status: control.StatusOK, Online: true,
	Controller: "198.51.100.10:8443", Controllers: []string{"198.51.100.10:8443", "198.51.100.11:8443"}, ControllerNow: "198.51.100.11:8443",
}, {
	ID: "0123456789abcdef", Name: "lab", Status: control.StatusOK, Online: true,
	Controller: "203.0.113.5:8443", Controllers: []string{"203.0.113.5:8443"}, ControllerNow: "203.0.113.5:8443",
}}

func (d *replicaDaemon) Status() localapi.Status {
	st := localapi.Status{NodeID: "9788637428", Online: true, Networks: len(replicaNetworks)}
	for _, n := range replicaNetworks {
		st.Controllers = append(st.Controllers, localapi.NetworkController{Network: n.ID, Now: n.ControllerNow, Addresses: n.Controllers, Online: n.Online})
	}
	return st
}
func (d *replicaDaemon) Networks() []localapi.Network                    { return replicaNetworks }
func (d *replicaDaemon) Watch(context.Context, uint64) localapi.Snapshot { return localapi.Snapshot{} }
func (d *replicaDaemon) Logs(context.Context, uint64) []logring.Line     { return nil }
func (d *replicaDaemon) Leave(context.Context, string) error             { return nil }
func (d *replicaDaemon) Join(_ context.Context, r localapi.JoinRequest) (localapi.Network, error) {
	d.joined = append(d.joined, r)
	return replicaNetworks[0], nil
}

func serveReplicaDaemon(t *testing.T) (string, *replicaDaemon) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "gate.sock")
	d := &replicaDaemon{}
	ln, err := localapi.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go localapi.Serve(ctx, ln, localapi.Handler(d))
	return sock, d
}

func runGate(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := Main(args, "test", &out, &errb); code != 0 {
		t.Fatalf("gate %q: exit %d: %s", args, code, errb.String())
	}
	return out.String()
}

// TestShowsTheReplica: gate networks and gate status say which address of
// a controller with several each network is on; --json carries it; a
// network with one address shows nothing more than before.
func TestShowsTheReplica(t *testing.T) {
	sock, d := serveReplicaDaemon(t)
	want := "d363b4e9bd3d6aa8: on controller 198.51.100.11:8443 (address 2 of 2: 198.51.100.10:8443,198.51.100.11:8443)"
	out := runGate(t, "networks", "--socket", sock)
	if !strings.Contains(out, want) || strings.Contains(out, "0123456789abcdef: on controller") {
		t.Errorf("gate networks:\n%s", out)
	}
	out = runGate(t, "status", "--socket", sock)
	if !strings.Contains(out, "network "+want+", online") || strings.Contains(out, "203.0.113.5") {
		t.Errorf("gate status:\n%s", out)
	}
	var ns []localapi.Network
	if err := json.Unmarshal([]byte(runGate(t, "networks", "--json", "--socket", sock)), &ns); err != nil {
		t.Fatal(err)
	}
	if len(ns) != 2 || ns[0].ControllerNow != "198.51.100.11:8443" || len(ns[0].Controllers) != 2 || ns[0].Controller != "198.51.100.10:8443" {
		t.Errorf("gate networks --json: %+v", ns)
	}
	var st localapi.Status
	if err := json.Unmarshal([]byte(runGate(t, "status", "--json", "--socket", sock)), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Controllers) != 2 || st.Controllers[0].Now != "198.51.100.11:8443" {
		t.Errorf("gate status --json: %+v", st.Controllers)
	}

	// gate join takes a list, in a join string or beside a bare ID.
	js := "gate://198.51.100.10:8443,198.51.100.11:8443/d363b4e9bd3d6aa8?pin=sha256:" + strings.Repeat("ab", 32)
	out = runGate(t, "join", js, "--socket", sock)
	if !strings.Contains(out, "on controller 198.51.100.11:8443 (address 2 of 2") {
		t.Errorf("gate join:\n%s", out)
	}
	ctl := "gate://198.51.100.10:8443,198.51.100.11:8443?pin=sha256:" + strings.Repeat("ab", 32)
	runGate(t, "join", "d363b4e9bd3d6aa8", "--controller", ctl, "--socket", sock)
	if len(d.joined) != 2 || d.joined[0].Join != js || d.joined[1].Controller != ctl {
		t.Errorf("the daemon was asked %+v", d.joined)
	}
	var out2, errb bytes.Buffer
	code := Main([]string{"join", "d363b4e9bd3d6aa8", "--controller", "gate://198.51.100.10:8443,198.51.100.10:8443?pin=sha256:" + strings.Repeat("ab", 32), "--socket", sock}, "test", &out2, &errb)
	if code == 0 || !strings.Contains(errb.String(), `controller "198.51.100.10:8443" is listed twice`) || len(d.joined) != 2 {
		t.Errorf("a duplicate address: exit %d, %s", code, errb.String())
	}
}
