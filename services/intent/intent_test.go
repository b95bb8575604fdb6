package intent

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/state"
)

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

func tempState(t *testing.T) *state.Dir {
	t.Helper()
	st, err := state.Open(filepath.Join(t.TempDir(), "node"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

const preseedDoc = `version: 1
hostname: from-preseed
interfaces:
  eth0: {dhcp: true}
  eth1: {address: 172.16.1.10/24, gateway: 172.16.1.1}
`

// TestAssembleLayers: each layer overrides those below it, provenance names
// the layer of each value, and a bad combination is refused whole with the
// layer that made it.
func TestAssembleLayers(t *testing.T) {
	dir := t.TempDir()
	preseed := filepath.Join(dir, "preseed.yaml")
	if err := os.WriteFile(preseed, []byte(preseedDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		local    string // interfaces.json; "" none
		cmdline  string
		want     []string // provenance lines
		eth1     string   // eth1's address in force
		wantErrs string   // NICs error, if any
	}{
		{name: "preseed alone", want: []string{"hostname: " + preseed, "interfaces.eth0: " + preseed, "interfaces.eth1: " + preseed},
			eth1: "172.16.1.10/24"},
		{name: "local over preseed", local: `{"eth1": {"address": "172.16.9.10/24"}}`,
			want: []string{"hostname: " + preseed, "interfaces.eth0: " + preseed, "interfaces.eth1: " + InterfacesFile},
			eth1: "172.16.9.10/24"},
		{name: "kernel command line over local", local: `{"eth1": {"address": "172.16.9.10/24"}}`, cmdline: "quiet gate.iface.eth1=10.1.0.5/16",
			want: []string{"hostname: " + preseed, "interfaces.eth0: " + preseed, "interfaces.eth1: kernel command line"},
			eth1: "10.1.0.5/16"},
		{name: "the same address on two NICs", local: `{"eth0": {"address": "172.16.1.10/24"}}`, wantErrs: "172.16.1.10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tempState(t)
			if tt.local != "" {
				if err := st.Write(InterfacesFile, []byte(tt.local)); err != nil {
					t.Fatal(err)
				}
			}
			in := New(Options{State: st, Preseed: preseed, Cmdline: tt.cmdline, Logf: t.Logf})
			cfg, err := NICs(in.Layers())
			if tt.wantErrs != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrs) {
					t.Fatalf("NICs = %v, want an error with %q", err, tt.wantErrs)
				}
				if in.NICs() != nil {
					t.Error("invalid NIC settings were not left to DHCP")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Interfaces["eth1"].Address.String(); got != tt.eth1 {
				t.Errorf("eth1 = %s, want %s", got, tt.eth1)
			}
			if got := in.Status().Provenance; !slices.Equal(got, tt.want) {
				t.Errorf("provenance\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestProposal: a change made on the machine is checked whole with the
// other layers, persisted, published with current provenance, and reverted
// at its deadline unless confirmed (or kept when the controllers answer).
func TestProposal(t *testing.T) {
	st := tempState(t)
	var mu sync.Mutex
	published := 0
	reachable := false
	logs := &logLines{t: t}
	in := New(Options{State: st, Logf: logs.logf,
		Publish: func() { mu.Lock(); published++; mu.Unlock() },
		Reachable: func(time.Time) bool {
			mu.Lock()
			defer mu.Unlock()
			return reachable
		}})
	pubs := func() int { mu.Lock(); defer mu.Unlock(); return published }
	static := localapi.SetInterfaceRequest{Address: netip.MustParsePrefix("10.66.0.5/24"), Gateway: netip.MustParseAddr("10.66.0.1"),
		Confirm: localapi.Duration(300 * time.Millisecond)}
	const local = "interfaces.nic2: " + InterfacesFile

	// Refused whole: nothing written, nothing published.
	bad := static
	bad.Gateway = netip.MustParseAddr("10.67.0.1")
	if _, err := in.Propose("nic2", bad); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("a gateway outside the subnet: %v", err)
	}
	if _, err := st.Read(InterfacesFile); !os.IsNotExist(err) || pubs() != 0 {
		t.Fatalf("a refused change wrote %s (%v) or was published (%d)", InterfacesFile, err, pubs())
	}

	// Unconfirmed: in force at once, reverted at the deadline.
	p, err := in.Propose("nic2", static)
	if err != nil || !strings.Contains(p.What, "10.66.0.5/24 via 10.66.0.1") {
		t.Fatalf("Propose = %+v, %v", p, err)
	}
	if cfg := in.NICs(); cfg == nil || cfg.Interfaces["nic2"].Address != static.Address {
		t.Errorf("NICs after the proposal: %+v", cfg)
	}
	if !slices.Contains(in.Status().Provenance, local) || in.Pending() == nil || pubs() != 1 {
		t.Errorf("after the proposal: provenance %q, pending %v, published %d", in.Status().Provenance, in.Pending(), pubs())
	}
	if _, err := in.Propose("nic2", static); err == nil || !strings.Contains(err.Error(), "waiting for confirmation") {
		t.Errorf("a second change while one is pending: %v", err)
	}
	eventually(t, "reverted", func() bool { return in.Pending() == nil })
	if _, err := st.Read(InterfacesFile); !os.IsNotExist(err) {
		t.Errorf("%s outlived the revert: %v", InterfacesFile, err)
	}
	if slices.Contains(in.Status().Provenance, local) {
		t.Errorf("provenance after the revert: %q", in.Status().Provenance)
	}
	if pubs() != 2 || logs.count("reverted nic2: static 10.66.0.5/24") != 1 {
		t.Errorf("revert published %d times, logged %d", pubs()-1, logs.count("reverted"))
	}

	// Confirmed: it stays past its deadline, on disk too.
	if _, err := in.Propose("nic2", static); err != nil {
		t.Fatal(err)
	}
	if err := in.Confirm(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if b, err := st.Read(InterfacesFile); err != nil || !strings.Contains(string(b), "10.66.0.5/24") {
		t.Errorf("confirmed setting on disk: %s, %v", b, err)
	}
	if err := in.Confirm(); err == nil {
		t.Error("confirming nothing succeeded")
	}

	// Kept without a word from the operator when the controllers answer
	// after the change; a second New reads what is in force.
	mu.Lock()
	reachable = true
	mu.Unlock()
	dhcp := localapi.SetInterfaceRequest{DHCP: true, Confirm: localapi.Duration(10 * time.Second)}
	if _, err := in.Propose("nic3", dhcp); err != nil {
		t.Fatal(err)
	}
	// The log line comes after the proposal is settled: wait for both.
	eventually(t, "kept", func() bool { return in.Pending() == nil && logs.count("kept nic3: DHCP") > 0 })
	if n := logs.count("kept nic3: DHCP"); n != 1 {
		t.Errorf("the change was kept %d times for the controllers' answer, want once", n)
	}
	again := New(Options{State: st, Logf: t.Logf})
	if cfg := again.NICs(); cfg == nil || !cfg.Interfaces["nic3"].DHCP || cfg.Interfaces["nic2"].Address != static.Address {
		t.Errorf("NICs after a restart: %+v", cfg)
	}
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("not %s in 5s", what)
}
