package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatenet/gate/services/intent"
	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/nstest"
)

// TestCommitConfirm: a static address set through the local API is
// applied at once; unconfirmed it reverts by itself at the deadline;
// confirmed it stays. Bad settings are refused and change nothing.
func TestCommitConfirm(t *testing.T) {
	other := nstest.New(t)
	nstest.Veth(t, "nic2", "peer2", other)
	dir := t.TempDir()
	h := &harness{t: t, dir: dir, socket: filepath.Join(dir, "gate.sock")}
	stateDir := filepath.Join(dir, "node")
	d, err := New(Options{StateDir: stateDir, Socket: h.socket, Hostname: "appliance", Version: "test", Logf: t.Logf,
		ManageNICs: true, NICs: []string{"nic2"}, ResolvConf: filepath.Join(dir, "resolv.conf")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	c := h.local()
	h.eventually("nic2 managed", func() error {
		nics, err := c.Interfaces(ctx)
		if err != nil || len(nics) != 1 {
			return fmt.Errorf("%v %v", nics, err)
		}
		return nil
	})
	has := func(addr string) bool {
		_, addrs := linkAddrs(t, "nic2")
		return slices.Contains(addrs, addr)
	}
	settings := filepath.Join(stateDir, intent.InterfacesFile)
	static := localapi.SetInterfaceRequest{Address: netip.MustParsePrefix("10.66.0.5/24"), Gateway: netip.MustParseAddr("10.66.0.1")}

	// Refused, nothing changed.
	for _, bad := range []struct {
		name string
		req  localapi.SetInterfaceRequest
		want string
	}{
		{"nic2", localapi.SetInterfaceRequest{Address: netip.MustParsePrefix("10.66.0.5/24"), Gateway: netip.MustParseAddr("10.67.0.1")}, "outside"},
		{"nic9", static, "not a NIC Gate manages"},
		{"nic2\x1b[2J", static, "is not one"},             // escaped by the client, refused by the local API
		{"../confirm", static, `"../confirm" is not one`}, // no path tricks either
	} {
		if _, err := c.SetInterface(ctx, bad.name, bad.req); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("SetInterface(%s, %+v) = %v, want an error with %q", bad.name, bad.req, err, bad.want)
		}
	}
	if _, err := os.Stat(settings); !os.IsNotExist(err) {
		t.Fatalf("a refused setting wrote %s", settings)
	}

	// Unconfirmed: applied, then reverted.
	static.Confirm = localapi.Duration(2 * time.Second)
	p, err := c.SetInterface(ctx, "nic2", static)
	if err != nil || !strings.Contains(p.What, "10.66.0.5/24") {
		t.Fatalf("SetInterface = %+v, %v", p, err)
	}
	h.eventually("static address applied", func() error {
		if !has("10.66.0.5/24") {
			return fmt.Errorf("not on nic2")
		}
		return nil
	})
	st, _ := c.Status(ctx)
	if st.Pending == nil {
		t.Error("status shows no pending change")
	}
	// Where each value comes from follows the change, not the start.
	const local = "interfaces.nic2: " + intent.InterfacesFile
	if st.Config == nil || !slices.Contains(st.Config.Provenance, local) {
		t.Errorf("provenance after the change: %+v; want %q", st.Config, local)
	}
	if _, err := c.SetInterface(ctx, "nic2", static); err == nil || !strings.Contains(err.Error(), "waiting for confirmation") {
		t.Errorf("a second change while one is pending: %v", err)
	}
	h.eventually("reverted at the deadline", func() error {
		if has("10.66.0.5/24") {
			return fmt.Errorf("still on nic2")
		}
		if _, err := os.Stat(settings); !os.IsNotExist(err) {
			return fmt.Errorf("%s still there", settings)
		}
		return nil
	})
	if st, _ := c.Status(ctx); st.Pending != nil || st.Config == nil || slices.Contains(st.Config.Provenance, local) {
		t.Errorf("status after the revert: pending %+v, config %+v", st.Pending, st.Config)
	}

	// Confirmed: it stays, past the deadline.
	static.Confirm = localapi.Duration(2 * time.Second)
	if _, err := c.SetInterface(ctx, "nic2", static); err != nil {
		t.Fatal(err)
	}
	if err := c.Confirm(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if !has("10.66.0.5/24") {
		t.Error("a confirmed setting reverted")
	}
	if b, err := os.ReadFile(settings); err != nil || !strings.Contains(string(b), "10.66.0.5/24") {
		t.Errorf("settings file: %s, %v", b, err)
	}
	if err := c.Confirm(ctx); err == nil {
		t.Error("confirming nothing succeeded")
	}
	// Power is for the appliance's own daemon only, never a test host's init.
	if err := c.Power(ctx, "reboot"); err == nil || !strings.Contains(err.Error(), "appliance only") {
		t.Errorf("Power on a non-appliance: %v", err)
	}
}
