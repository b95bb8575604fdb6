package intent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/localapi"
)

const (
	testPin   = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	testNetID = "d363b4e9bd3d6aa8"
	testToken = "tok-0123456789abcdef"
)

// TestJoinOnce: the preseed's networks are joined once per preseed
// document; a bare network ID is this node's own controller's, and its
// token reaches the controller in the join string (it was dropped before:
// the node joined without it and waited for an admin instead).
func TestJoinOnce(t *testing.T) {
	preseed := filepath.Join(t.TempDir(), "preseed.yaml")
	doc := "version: 1\ncontroller: {listen: ':8443'}\nnetworks:\n  - {join: " + testNetID + ", token: " + testToken + "}\n"
	if err := os.WriteFile(preseed, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	st := tempState(t)
	var got []localapi.JoinRequest
	join := func(ctx context.Context, r localapi.JoinRequest) (localapi.Network, error) {
		got = append(got, r)
		return localapi.Network{ID: testNetID, Status: "OK"}, nil
	}
	local := "gate://192.0.2.7:8443?pin=" + testPin
	for range 2 { // a second start, as after a reboot
		in := New(Options{State: st, Preseed: preseed, Logf: t.Logf})
		p := in.Load(context.Background())
		in.Join(context.Background(), p, join, local)
	}
	if len(got) != 1 {
		t.Fatalf("joined %d times, want once: %+v", len(got), got)
	}
	j, err := control.ParseJoinString(got[0].Join)
	if err != nil || j.Controller != "192.0.2.7:8443" || j.NetworkID != testNetID || j.Pin != testPin || j.Token != testToken {
		t.Errorf("join = %q (%+v, %v), want this node's controller, the network and the token", got[0].Join, j, err)
	}

	// Without a controller here the token has nowhere to go: said, not
	// dropped.
	st2 := tempState(t)
	logs := &logLines{t: t}
	got = nil
	in := New(Options{State: st2, Preseed: preseed, Logf: logs.logf})
	in.Join(context.Background(), in.Load(context.Background()), join, "")
	if len(got) != 0 || logs.count("needs the controller's address") != 1 {
		t.Errorf("a token with a bare ID and no controller: joined %+v; logs %q", got, strings.Join(logs.ls, "\n"))
	}
}
