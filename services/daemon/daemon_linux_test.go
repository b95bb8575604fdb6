package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/controller"
	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/nstest"
	"github.com/gatenet/gate/services/pgtest"
)

// TestMain: the tests run in a namespace of their own (nstest), and a
// PostgreSQL is started for those that ask for one (pgtest).
func TestMain(m *testing.M) { memberHelper(); nstest.MainRun(func() int { return pgtest.Run(m) }) }

// harness runs a real controller on loopback and real daemons in the test
// namespace, talking through the real local API.
type harness struct {
	t      *testing.T
	dir    string
	ctl    *controller.Server
	addr   string
	stopC  context.CancelFunc
	doneC  chan error
	admin  *control.Client
	socket string
	stopD  context.CancelFunc
	doneD  chan error
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (h *harness) startController() {
	h.t.Helper()
	s, err := controller.New(controller.Config{StateDir: filepath.Join(h.dir, "ctl"), Listen: h.addr, Logf: h.t.Logf})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.ctl, h.stopC, h.doneC = s, cancel, make(chan error, 1)
	go func() { h.doneC <- s.Serve(ctx) }()
	h.admin, err = control.NewClient(h.addr, s.Pin(), nil, s.AdminToken())
	if err != nil {
		h.t.Fatal(err)
	}
	h.eventually("controller answers", func() error { _, err := h.admin.Networks(context.Background()); return err })
}

func (h *harness) stopController() {
	h.admin.Close()
	h.stopC()
	<-h.doneC
	h.ctl.Close()
}

func (h *harness) startDaemon() {
	h.t.Helper()
	h.socket = filepath.Join(h.dir, "gate.sock")
	d, err := New(Options{StateDir: filepath.Join(h.dir, "node"), Socket: h.socket, Hostname: "test", Version: "test", Logf: h.t.Logf})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.stopD, h.doneD = cancel, make(chan error, 1)
	go func() { h.doneD <- d.Run(ctx) }()
	h.eventually("daemon answers", func() error { _, err := h.local().Status(context.Background()); return err })
}

func (h *harness) stopDaemon() {
	h.stopD()
	if err := <-h.doneD; err != nil {
		h.t.Errorf("daemon: %v", err)
	}
}

func (h *harness) local() *localapi.Client { return localapi.NewClient(h.socket) }

func (h *harness) eventually(what string, f func() error) {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (h *harness) networks() []localapi.Network {
	h.t.Helper()
	ns, err := h.local().Networks(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return ns
}

func ipJSON(t *testing.T, args ...string) []map[string]any {
	out, err := exec.Command("ip", append([]string{"-j"}, args...)...).Output()
	if err != nil {
		t.Fatalf("ip %v: %v", args, err)
	}
	var v []map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("ip %v: %v", args, err)
	}
	return v
}

func linkAddrs(t *testing.T, dev string) (bool, []string) {
	if exec.Command("ip", "link", "show", dev).Run() != nil {
		return false, nil
	}
	var addrs []string
	for _, l := range ipJSON(t, "addr", "show", "dev", dev) {
		infos, _ := l["addr_info"].([]any)
		for _, ai := range infos {
			m := ai.(map[string]any)
			if m["scope"] == "link" {
				continue // the kernel's own IPv6 link-local address
			}
			addrs = append(addrs, fmt.Sprintf("%v/%v", m["local"], m["prefixlen"]))
		}
	}
	return true, addrs
}

func TestDaemonEndToEnd(t *testing.T) {
	h := &harness{t: t, dir: t.TempDir(), addr: freePort(t)}
	h.startController()
	h.startDaemon()
	ctx := context.Background()

	for _, f := range []string{"identity.key", "wireguard.key"} {
		fi, err := os.Stat(filepath.Join(h.dir, "node", f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v; want 0600", f, err, fi.Mode().Perm())
		}
	}
	st, err := h.local().Status(ctx)
	if err != nil || control.CheckNodeID(st.NodeID) != nil || !st.Online {
		t.Fatalf("status = %+v, %v", st, err)
	}

	n, err := h.admin.CreateNetwork(ctx, control.CreateNetworkRequest{Name: "t", CIDR: netip.MustParsePrefix("10.77.0.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	pin := h.ctl.Pin()

	// Bad joins change nothing.
	for _, bad := range []string{
		"gate://" + h.addr + "/0123456789abcdef?pin=" + pin,                        // unknown network
		"gate://" + h.addr + "/" + n.ID + "?pin=sha256:" + strings.Repeat("0", 64), // wrong pin
		"gate://" + h.addr + "/" + n.ID,                                            // no pin
		n.ID,                                                                       // no controller known yet
	} {
		if _, err := h.local().Join(ctx, localapi.JoinRequest{Join: bad}); err == nil {
			t.Errorf("join %q succeeded", bad)
		} else {
			t.Logf("join %q: %v", bad, err)
		}
	}
	if got := h.networks(); len(got) != 0 {
		t.Fatalf("after bad joins: %+v", got)
	}

	// A plain join waits for the admin.
	join := control.JoinString{Controller: h.addr, NetworkID: n.ID, Pin: pin}.String()
	got, err := h.local().Join(ctx, localapi.JoinRequest{Join: join})
	if err != nil || got.Status != control.StatusRequesting {
		t.Fatalf("join = %+v, %v; want REQUESTING_CONFIGURATION", got, err)
	}
	if _, err := h.admin.AllowMember(ctx, n.ID, st.NodeID); err != nil {
		t.Fatal(err)
	}
	h.eventually("OK with an address in the kernel", func() error {
		ns := h.networks()
		if ns[0].Status != control.StatusOK {
			return fmt.Errorf("status %s", ns[0].Status)
		}
		ok, addrs := linkAddrs(t, ns[0].Interface)
		if !ok || len(addrs) != 1 || addrs[0] != "10.77.0.1/24" {
			return fmt.Errorf("link %s: %v %v", ns[0].Interface, ok, addrs)
		}
		return nil
	})
	dev := h.networks()[0].Interface
	if out, err := exec.Command("nft", "list", "table", "inet", "gate").CombinedOutput(); err != nil || !strings.Contains(string(out), dev) {
		t.Fatalf("nft table: %v\n%s", err, out)
	}

	// A route via another member reaches the kernel; one via us does not.
	for _, r := range []control.Route{
		{Dest: netip.MustParsePrefix("172.16.0.0/16"), Via: netip.MustParseAddr("10.77.0.11")},
		{Dest: netip.MustParsePrefix("172.17.0.0/16"), Via: netip.MustParseAddr("10.77.0.1")},
	} {
		if _, err := h.admin.AddRoute(ctx, n.ID, r); err != nil {
			t.Fatal(err)
		}
	}
	h.eventually("managed route installed", func() error {
		out, _ := exec.Command("ip", "route", "show", "proto", "241").Output()
		if !strings.Contains(string(out), "172.16.0.0/16 via 10.77.0.11 dev "+dev) {
			return fmt.Errorf("routes: %s", out)
		}
		if strings.Contains(string(out), "172.17.0.0/16") {
			return fmt.Errorf("route via ourselves installed: %s", out)
		}
		return nil
	})

	// Offline first: controller down, daemon restarted, configuration back.
	h.stopController()
	h.stopDaemon()
	if ok, _ := linkAddrs(t, dev); ok {
		t.Fatalf("shutdown left %s behind", dev)
	}
	h.startDaemon()
	h.eventually("last good configuration applied offline", func() error {
		ok, addrs := linkAddrs(t, dev)
		if !ok || len(addrs) != 1 {
			return fmt.Errorf("link %s: %v %v", dev, ok, addrs)
		}
		return nil
	})
	if st, _ := h.local().Status(ctx); st.Online {
		t.Errorf("status says online with the controller down")
	}
	h.startController()
	h.eventually("online again", func() error {
		if st, _ := h.local().Status(ctx); !st.Online {
			return fmt.Errorf("offline")
		}
		return nil
	})

	// Leave removes it all.
	if err := h.local().Leave(ctx, n.ID); err != nil {
		t.Fatal(err)
	}
	if ok, _ := linkAddrs(t, dev); ok {
		t.Errorf("leave left %s behind", dev)
	}
	if exec.Command("nft", "list", "table", "inet", "gate").Run() == nil {
		t.Errorf("leave left the nftables table behind")
	}
	if ms, _ := h.admin.Members(ctx, n.ID); len(ms) != 0 {
		t.Errorf("controller still lists %+v", ms)
	}
	if err := h.local().Leave(ctx, n.ID); err == nil || !strings.Contains(err.Error(), "not joined") {
		t.Errorf("second leave: %v", err)
	}
	h.stopDaemon()
	h.stopController()
}
