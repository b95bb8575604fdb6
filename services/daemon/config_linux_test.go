package daemon

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatenet/gate/services/cloud/cloudtest"
	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/controller"
	"github.com/gatenet/gate/services/desired"
	"github.com/gatenet/gate/services/intent"
	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/nstest"
)

// memberEnv makes the test binary a plain member daemon (a second node, in
// a namespace of its own): TestMain calls memberHelper first.
const memberEnv = "GATE_TEST_MEMBER_DIR"

// memberHelper runs `gate up` with the preseed in $GATE_TEST_MEMBER_DIR
// until SIGTERM, and exits, when the test binary was started as a member.
func memberHelper() {
	dir := os.Getenv(memberEnv)
	if dir == "" {
		return
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	err := Run(ctx, Options{StateDir: filepath.Join(dir, "state"), Socket: filepath.Join(dir, "gate.sock"),
		Preseed: filepath.Join(dir, "preseed.yaml"), Hostname: "member-b", Version: "test",
		Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, "member: "+f+"\n", a...) }})
	if err != nil {
		fmt.Fprintln(os.Stderr, "member:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// logLines collects a daemon's log.
type logLines struct {
	t  *testing.T
	mu sync.Mutex
	ls []string
}

func (l *logLines) logf(f string, a ...any) {
	s := fmt.Sprintf(f, a...)
	l.t.Log(s)
	l.mu.Lock()
	l.ls = append(l.ls, s)
	l.mu.Unlock()
}

func (l *logLines) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.ls {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

// TestCloudJoin: a real daemon, told --cloud=digitalocean or aws, finds a
// fake metadata service on 169.254.169.254 (inside this test's namespace
// only), whose user-data joins a real controller with a pre-allowed
// single-use token and a requested address; it passes traffic to a second
// member over the tunnel. A restart applies nothing twice; an invalid
// user-data then is rejected whole, reported in the status with key
// paths and lines, and the network joined before stays up.
func TestCloudJoin(t *testing.T) {
	for i, mode := range []string{intent.CloudDigitalOcean, intent.CloudAWS} {
		t.Run(mode, func(t *testing.T) { testCloudJoin(t, mode, 18443+i) })
	}
}

func testCloudJoin(t *testing.T, mode string, port int) {
	ctx := context.Background()
	dir := t.TempDir()
	// Member B lives in a namespace of its own, reached over a veth.
	nsB := nstest.New(t)
	nstest.Veth(t, "cj0", "cj1", nsB)
	nstest.Run(t, "ip", "addr", "add", "10.99.0.1/24", "dev", "cj0")
	nstest.In(t, nsB, "ip", "addr", "add", "10.99.0.2/24", "dev", "cj1")

	ctlAddr := fmt.Sprintf("10.99.0.1:%d", port)
	srv, err := controller.New(controller.Config{StateDir: filepath.Join(dir, "ctl"), Listen: ctlAddr, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	cctx, stopCtl := context.WithCancel(ctx)
	ctlDone := make(chan error, 1)
	go func() { ctlDone <- srv.Serve(cctx) }()
	defer func() { stopCtl(); <-ctlDone; srv.Close() }()
	admin, err := control.NewClient(ctlAddr, srv.Pin(), nil, srv.AdminToken())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	h := &harness{t: t, dir: dir}
	h.eventually("controller answers", func() error { _, err := admin.Networks(ctx); return err })
	n, err := admin.CreateNetwork(ctx, control.CreateNetworkRequest{Name: "cloud", CIDR: netip.MustParsePrefix("10.98.0.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	tokA, err := admin.CreateToken(ctx, n.ID, control.CreateTokenRequest{Allow: true, Address: netip.MustParseAddr("10.98.0.11"), Note: mode})
	if err != nil {
		t.Fatal(err)
	}
	tokB, err := admin.CreateToken(ctx, n.ID, control.CreateTokenRequest{Allow: true, Address: netip.MustParseAddr("10.98.0.12")})
	if err != nil {
		t.Fatal(err)
	}

	// Member B: a plain `gate up` with a preseed, in its namespace.
	bdir := filepath.Join(dir, "b")
	os.MkdirAll(bdir, 0o700)
	os.WriteFile(filepath.Join(bdir, "preseed.yaml"), []byte("version: 1\nnetworks:\n  - join: "+tokB.JoinString+"\n"), 0o600)
	self, _ := os.Executable()
	var bout bytes.Buffer
	member := exec.Command("ip", "netns", "exec", nsB, self)
	member.Env = append(os.Environ(), memberEnv+"="+bdir)
	member.Stdout, member.Stderr = &bout, &bout
	if err := member.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		member.Process.Signal(syscall.SIGTERM)
		member.Wait()
		if t.Failed() {
			t.Logf("member B's log:\n%s", bout.String())
		}
	}()

	// The metadata service, with user-data that joins.
	userData := "#cloud-config\npackages: [htop]\ngate:\n  networks:\n    - join: " + tokA.JoinString + "\n      address: 10.98.0.11\n"
	var setUserData func(string)
	wantID := ""
	switch mode {
	case intent.CloudDigitalOcean:
		f := &cloudtest.DigitalOcean{UserData: userData, DropletID: "3164444"}
		cloudtest.Serve(t, f)
		setUserData, wantID = f.SetUserData, "3164444"
	case intent.CloudAWS:
		f := &cloudtest.IMDSv2{UserData: userData, InstanceID: "i-0a1b2c3d4e5f60718"}
		cloudtest.Serve(t, f)
		setUserData, wantID = f.SetUserData, "i-0a1b2c3d4e5f60718"
		defer func() {
			if u := f.Unauthorized(); slices.Contains(u, "/latest/user-data") {
				t.Errorf("user-data was asked for without a token: %v", u)
			}
		}()
	}

	h.socket = filepath.Join(dir, "a.sock")
	logs := &logLines{t: t}
	start := func() (stop func()) {
		d, err := New(Options{StateDir: filepath.Join(dir, "a"), Socket: h.socket, Hostname: "cloud-a", Version: "test", Logf: logs.logf, Cloud: mode})
		if err != nil {
			t.Fatal(err)
		}
		dctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- d.Run(dctx) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("daemon: %v", err)
			}
		}
	}
	config := func(state string) *localapi.ConfigStatus {
		var c *localapi.ConfigStatus
		h.eventually("config "+state, func() error {
			st, err := h.local().Status(ctx)
			if err != nil {
				return err
			}
			if c = st.Config; c == nil || c.State != state {
				return fmt.Errorf("config %+v", c)
			}
			return nil
		})
		return c
	}
	joined := func() {
		h.eventually("joined with 10.98.0.11", func() error {
			ns := h.networks()
			if len(ns) != 1 || ns[0].Status != control.StatusOK || len(ns[0].Addresses) != 1 || ns[0].Addresses[0].String() != "10.98.0.11/24" {
				return fmt.Errorf("networks %+v", ns)
			}
			return nil
		})
		deadline := time.Now().Add(20 * time.Second)
		for {
			out, err := exec.Command("ping", "-c1", "-W1", "10.98.0.12").CombinedOutput()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("ping member B's overlay address 10.98.0.12: %v\n%s", err, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// First boot of the instance: detected, applied, joined.
	stop := start()
	c := config(localapi.ConfigApplied)
	if !strings.HasPrefix(c.Source, mode+": http://169.254.169.254") || c.InstanceID != wantID || !c.FirstBoot {
		t.Errorf("config status %+v; want source %s, instance %s, first boot", c, mode, wantID)
	}
	if !slices.ContainsFunc(c.Warnings, func(w string) bool {
		return strings.Contains(w, "cloud-config keys ignored") && strings.Contains(w, "packages")
	}) {
		t.Errorf("warnings %q: want the ignored packages key", c.Warnings)
	}
	if !slices.Contains(c.Provenance, "networks: user-data ("+mode+")") {
		t.Errorf("provenance %q", c.Provenance)
	}
	joined()
	ms, err := admin.Members(ctx, n.ID)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := h.local().Status(ctx)
	if i := slices.IndexFunc(ms, func(m control.Member) bool { return m.NodeID == st.NodeID }); i < 0 || ms[i].State != "allowed" || !slices.Contains(ms[i].Addresses, netip.MustParseAddr("10.98.0.11")) {
		t.Errorf("controller's members %+v: want %s allowed with 10.98.0.11", ms, st.NodeID)
	}
	stop()
	if n := logs.count("joined " + n.ID); n != 1 {
		t.Errorf("%d joins logged, want 1", n)
	}

	// A reboot of the same instance applies nothing again.
	stop = start()
	c = config(localapi.ConfigApplied)
	if c.FirstBoot || c.InstanceID != wantID {
		t.Errorf("second start: %+v, want the same instance, not a first boot", c)
	}
	joined()
	stop()
	if n := logs.count("joined " + n.ID); n != 1 {
		t.Errorf("%d joins logged after a restart, want still 1", n)
	}

	// Broken user-data: an unknown key (a warning) and an invalid value
	// (an error). Rejected whole; the network stays.
	setUserData("#cloud-config\ngate:\n  colour: blue\n  hostname: ok-name\n  networks:\n    - join: " + tokA.JoinString + "\n      address: 10.98.0.300\n")
	stop = start()
	defer stop()
	c = config(localapi.ConfigRejected)
	wantErr := `gate.networks[0].address: "10.98.0.300" is not an IP address (user-data (` + mode + `), line 7)`
	if !slices.Contains(c.Errors, wantErr) {
		t.Errorf("errors %q, want %q", c.Errors, wantErr)
	}
	if !slices.ContainsFunc(c.Warnings, func(w string) bool { return strings.HasPrefix(w, "gate.colour: unknown key") }) {
		t.Errorf("warnings %q, want gate.colour: unknown key", c.Warnings)
	}
	if logs.count("config error: "+wantErr) == 0 {
		t.Errorf("the error is not in the log")
	}
	joined()
}

// TestControllerHere: `controller: {listen: ...}` in the document runs a
// controller in the daemon, its port open in the strict firewall beside
// the operator's; gate.controller=off on the kernel command line (a
// higher layer) switches it off at the next start, and closes the port.
// preseeded is a daemon run on a preseed document, as the appliance runs
// one, with a strict firewall that opens tcp/22.
type preseeded struct {
	h                  *harness
	logs               *logLines
	dir, preseed, name string
}

func newPreseeded(t *testing.T, name, doc string) *preseeded {
	dir := t.TempDir()
	p := &preseeded{h: &harness{t: t, dir: dir, socket: filepath.Join(dir, "gate.sock")}, logs: &logLines{t: t},
		dir: dir, preseed: filepath.Join(dir, "preseed.yaml"), name: name}
	if err := os.WriteFile(p.preseed, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// run starts the daemon with kernel command line cmdline; stop stops it
// and waits.
func (p *preseeded) run(cmdline string) (stop func()) {
	t := p.h.t
	d, err := New(Options{StateDir: filepath.Join(p.dir, "node"), Socket: p.h.socket, Hostname: p.name, Version: "test",
		Logf: p.logs.logf, Firewall: desired.FirewallStrict, AllowTCP: []uint16{22}, Preseed: p.preseed, Cmdline: cmdline})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("daemon: %v", err)
			}
		})
	}
}

func TestControllerHere(t *testing.T) {
	p := newPreseeded(t, "ctl-here", "version: 1\ncontroller: {listen: \"127.0.0.1:18460\", web: {listen: \"127.0.0.1:18461\"}}\n")
	h, logs, dir, preseed, run := p.h, p.logs, p.dir, p.preseed, p.run
	stop := run("")
	h.eventually("controller answers and its port is open", func() error {
		b, err := os.ReadFile(filepath.Join(dir, "node", "controller", "controller.url"))
		if err != nil {
			return err
		}
		js, err := control.ParseControllerAddress(strings.TrimSpace(string(b)))
		if err != nil {
			return err
		}
		tok, err := os.ReadFile(filepath.Join(dir, "node", "controller", "admin-token"))
		if err != nil {
			return err
		}
		c, err := control.NewClient(js.Controller, js.Pin, nil, strings.TrimSpace(string(tok)))
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Networks(context.Background()); err != nil {
			return err
		}
		out, _ := exec.Command("nft", "list", "table", "inet", "gate").CombinedOutput()
		if !strings.Contains(string(out), "18460") || !strings.Contains(string(out), "22") {
			return fmt.Errorf("strict firewall does not allow tcp/18460 and tcp/22:\n%s", out)
		}
		// The web console, on loopback: served, and not opened to the
		// network (loopback needs no rule).
		resp, err := http.Get("http://127.0.0.1:18461/signin")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("web console: %s", resp.Status)
		}
		if strings.Contains(string(out), "18461") {
			return fmt.Errorf("the loopback web console's port is opened:\n%s", out)
		}
		return nil
	})
	st, err := h.local().Status(context.Background())
	if err != nil || st.Config == nil || !slices.Contains(st.Config.Provenance, "controller: "+preseed) {
		t.Errorf("status %+v, %v: want the controller from the preseed", st.Config, err)
	}
	stop()

	// The kernel command line switches it off (recovery).
	stop = run("console=ttyS0 gate.controller=off")
	defer stop()
	h.eventually("config applied", func() error {
		st, err := h.local().Status(context.Background())
		if err != nil || st.Config == nil || st.Config.State != localapi.ConfigApplied {
			return fmt.Errorf("%+v, %v", st.Config, err)
		}
		return nil
	})
	out, _ := exec.Command("nft", "list", "table", "inet", "gate").CombinedOutput()
	if strings.Contains(string(out), "18460") {
		t.Errorf("controller off, its port still open:\n%s", out)
	}
	if n := logs.count("controller running here"); n != 1 {
		t.Errorf("controller started %d times, want 1", n)
	}
}

// TestControllerBeside: a controller in a process of its own beside `gate
// up` (a small site's gateway) asks the daemon to hold its port open; the
// strict firewall opens it, `gate status` says why, and it closes when
// the last hold ends, as when the controller is killed.
func TestControllerBeside(t *testing.T) {
	dir := t.TempDir()
	h := &harness{t: t, dir: dir, socket: filepath.Join(dir, "gate.sock")}
	logs := &logLines{t: t}
	d, err := New(Options{StateDir: filepath.Join(dir, "node"), Socket: h.socket, Hostname: "gw", Version: "test",
		Logf: logs.logf, Firewall: desired.FirewallStrict, AllowTCP: []uint16{22}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	}()
	rules := func() string {
		out, _ := exec.Command("nft", "list", "table", "inet", "gate").CombinedOutput()
		return string(out)
	}
	h.eventually("the strict firewall is up", func() error {
		if !strings.Contains(rules(), "tcp dport { 22 } accept") {
			return fmt.Errorf("no tcp/22 in:\n%s", rules())
		}
		return nil
	})
	if strings.Contains(rules(), "18461") {
		t.Fatalf("tcp/18461 open before anyone asked")
	}
	// Two holds (a controller restarting overlaps its old self).
	hold := func() (context.CancelFunc, chan error) {
		hctx, hcancel := context.WithCancel(context.Background())
		opened, end := make(chan struct{}), make(chan error, 1)
		go func() {
			end <- h.local().HoldPort(hctx, localapi.HoldRequest{Port: 18461, For: localapi.HoldForController}, func() { close(opened) })
		}()
		select {
		case <-opened:
		case err := <-end:
			t.Fatalf("hold: %v", err)
		}
		return hcancel, end
	}
	c1, e1 := hold()
	c2, e2 := hold()
	h.eventually("tcp/18461 open", func() error {
		if !strings.Contains(rules(), "18461") {
			return fmt.Errorf("not in:\n%s", rules())
		}
		return nil
	})
	st, err := h.local().Status(context.Background())
	want := []localapi.OpenPort{{Proto: "tcp", Port: 22, Why: "--allow-input"}, {Proto: "tcp", Port: 18461, Why: "the controller beside this daemon (gate controller)"}}
	if err != nil || !slices.Equal(st.InputOpen, want) {
		t.Errorf("status input_open %+v, %v; want %+v", st.InputOpen, err, want)
	}
	c1()
	if err := <-e1; err != nil {
		t.Errorf("hold 1: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	if !strings.Contains(rules(), "18461") {
		t.Errorf("one hold of two ended: the port closed")
	}
	c2()
	if err := <-e2; err != nil {
		t.Errorf("hold 2: %v", err)
	}
	h.eventually("tcp/18461 closed", func() error {
		if strings.Contains(rules(), "18461") {
			return fmt.Errorf("still in:\n%s", rules())
		}
		return nil
	})
	if logs.count("input tcp/18461 open") != 1 || logs.count("input tcp/18461 closed") != 1 {
		t.Errorf("want the port's opening and closing logged once each")
	}
}
