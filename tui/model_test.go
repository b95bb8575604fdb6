package tui

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/logring"
)

// recorder is an API that records what the console asked for and answers
// from a script: the model's side of the conversation is what is tested.
type recorder struct {
	joins    []localapi.JoinRequest
	leaves   []string
	joinErr  error
	sets     map[string]localapi.SetInterfaceRequest
	confirms int
	power    []string
}

func (r *recorder) Watch(context.Context, uint64, time.Duration) (localapi.Snapshot, error) {
	return localapi.Snapshot{}, nil
}
func (r *recorder) Logs(context.Context, uint64, time.Duration) ([]logring.Line, error) {
	return nil, nil
}
func (r *recorder) Join(_ context.Context, req localapi.JoinRequest) (localapi.Network, error) {
	r.joins = append(r.joins, req)
	if r.joinErr != nil {
		return localapi.Network{}, r.joinErr
	}
	return localapi.Network{ID: networkIDOf(req), Status: control.StatusRequesting}, nil
}
func (r *recorder) Leave(_ context.Context, id string) error {
	r.leaves = append(r.leaves, id)
	return nil
}
func (r *recorder) SetInterface(_ context.Context, name string, req localapi.SetInterfaceRequest) (localapi.Pending, error) {
	if r.sets == nil {
		r.sets = map[string]localapi.SetInterfaceRequest{}
	}
	r.sets[name] = req
	return localapi.Pending{What: name + ": static " + req.Address.String()}, nil
}
func (r *recorder) Confirm(context.Context) error { r.confirms++; return nil }
func (r *recorder) Power(_ context.Context, action string) error {
	r.power = append(r.power, action)
	return nil
}

const pin = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func snapshot() localapi.Snapshot {
	start := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	return localapi.Snapshot{
		Rev:    7,
		Status: localapi.Status{NodeID: "9788637428", Hostname: "aws-gate-1", Version: "v1", Online: true, Started: start, Firewall: "strict", Forward: true},
		Networks: []localapi.Network{{
			ID: "d363b4e9bd3d6aa8", Name: "aws-do", Status: control.StatusOK, Interface: "gated363b4e9bd",
			Addresses: []netip.Prefix{netip.MustParsePrefix("192.168.254.11/24")},
			Gateway:   &localapi.Gateway{Serve: []netip.Prefix{netip.MustParsePrefix("172.16.0.0/16")}, MasqueradeInternet: true},
			Peers: []localapi.Peer{{NodeID: "a4f8166c39", Endpoint: netip.MustParseAddrPort("198.51.100.20:51820"),
				LastHandshake: start.Add(90 * time.Second), RxBytes: 1 << 20, TxBytes: 2048}},
		}, {
			ID: "0123456789abcdef", Name: "lab", Status: control.StatusRequesting,
		}},
	}
}

func newModel(api API, ascii bool) Model {
	m := New(api, Options{ASCII: ascii})
	m.now = func() time.Time { return time.Date(2026, 11, 22, 9, 2, 0, 0, time.UTC) }
	return m
}

// send feeds messages and returns the model and the last command.
func send(t *testing.T, m Model, msgs ...tea.Msg) (Model, tea.Cmd) {
	t.Helper()
	var cmd tea.Cmd
	for _, msg := range msgs {
		var next tea.Model
		next, cmd = m.Update(msg)
		m = next.(Model)
	}
	return m, cmd
}

func keys(s string) tea.KeyMsg { return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)} }

func TestDashboardAt80x24(t *testing.T) {
	for _, ascii := range []bool{false, true} {
		m, cmd := send(t, newModel(&recorder{}, ascii), tea.WindowSizeMsg{Width: 80, Height: 24}, snapshotMsg{snap: snapshot()})
		if cmd == nil {
			t.Fatal("no watch re-armed after a snapshot")
		}
		v := m.View()
		for _, want := range []string{"node 9788637428", "ONLINE", "aws-gate-1", "up 2m0s", "firewall strict",
			"d363b4e9bd3d6aa8", "aws-do", "OK", "192.168.254.11/24", "REQUESTING_CONFIGURATION",
			"gateway for 172.16.0.0/16", "a4f8166c39", "198.51.100.20:51820", "30s ago", "1.0 MiB", "j join"} {
			if !strings.Contains(v, want) {
				t.Errorf("ascii=%v: dashboard lacks %q:\n%s", ascii, want, v)
			}
		}
		lines := strings.Split(v, "\n")
		if len(lines) != 24 {
			t.Errorf("ascii=%v: %d lines, want 24", ascii, len(lines))
		}
		for i, l := range lines {
			if w := len([]rune(stripANSI(l))); w > 80 {
				t.Errorf("ascii=%v: line %d is %d wide: %q", ascii, i, w, l)
			}
		}
	}
}

func TestSelectingAPendingNetworkSaysWhatToDo(t *testing.T) {
	m, _ := send(t, newModel(&recorder{}, true), tea.WindowSizeMsg{Width: 80, Height: 24}, snapshotMsg{snap: snapshot()}, tea.KeyMsg{Type: tea.KeyDown})
	if v := m.View(); !strings.Contains(v, "gate member allow 0123456789abcdef 9788637428") {
		t.Errorf("no next step for a pending network:\n%s", v)
	}
}

func TestJoinValidatesBeforeAsking(t *testing.T) {
	api := &recorder{}
	m, _ := send(t, newModel(api, true), snapshotMsg{snap: snapshot()}, keys("j"))
	if m.screen != screenJoin {
		t.Fatal("j did not open the join screen")
	}
	m, cmd := send(t, m, keys("gate://bad"), tea.KeyMsg{Type: tea.KeyEnter})
	if cmd != nil || len(api.joins) != 0 || !strings.Contains(m.View(), `controller "bad" must be HOST:PORT`) {
		t.Fatalf("a bad join string was sent or not explained (cmd %v):\n%s", cmd != nil, m.View())
	}
	// Typing clears the complaint.
	m, _ = send(t, m, tea.KeyMsg{Type: tea.KeyBackspace})
	if strings.Contains(m.View(), "must be HOST:PORT") {
		t.Error("the error stayed after editing")
	}
	m.input.SetValue("")
	good := "gate://198.51.100.10:8443/d363b4e9bd3d6aa8?pin=" + pin
	m, cmd = send(t, m, keys(good), tea.KeyMsg{Type: tea.KeyEnter})
	if cmd == nil || !m.joining {
		t.Fatal("a good join string was not sent")
	}
	msg := cmd()
	if len(api.joins) != 1 || api.joins[0].Join != good {
		t.Fatalf("API got %+v", api.joins)
	}
	m, _ = send(t, m, msg)
	if m.joining || m.following != "d363b4e9bd3d6aa8" || !strings.Contains(m.View(), "Joined d363b4e9bd3d6aa8") {
		t.Errorf("after the join: joining=%v following=%q\n%s", m.joining, m.following, m.View())
	}
}

func TestJoinErrorFromTheDaemonIsShown(t *testing.T) {
	api := &recorder{joinErr: errors.New("controller: join token expired (HTTP 403)")}
	m, _ := send(t, newModel(api, true), keys("j"), keys("d363b4e9bd3d6aa8"))
	m, cmd := send(t, m, tea.KeyMsg{Type: tea.KeyEnter})
	m, _ = send(t, m, cmd())
	if !strings.Contains(m.View(), "join token expired") {
		t.Errorf("daemon error not shown:\n%s", m.View())
	}
}

func TestLeaveAsksFirst(t *testing.T) {
	api := &recorder{}
	m, _ := send(t, newModel(api, true), snapshotMsg{snap: snapshot()}, keys("x"))
	if !strings.Contains(m.View(), "Leave network d363b4e9bd3d6aa8?") {
		t.Fatalf("no confirmation:\n%s", m.View())
	}
	m, cmd := send(t, m, keys("n"))
	if cmd != nil || m.ask != nil {
		t.Fatal("n did not cancel")
	}
	m, cmd = send(t, m, keys("x"), keys("y"))
	if cmd == nil {
		t.Fatal("y did not leave")
	}
	m, _ = send(t, m, cmd())
	if len(api.leaves) != 1 || api.leaves[0] != "d363b4e9bd3d6aa8" || !strings.Contains(m.View(), "Left d363b4e9bd3d6aa8") {
		t.Errorf("leaves %v, view:\n%s", api.leaves, m.View())
	}
}

func TestKeysTypedTogetherAreTakenOneByOne(t *testing.T) {
	m, _ := send(t, newModel(&recorder{}, true), snapshotMsg{snap: snapshot()}, keys("xn"))
	if m.ask != nil {
		t.Error("x then n in one message left the confirmation open")
	}
}

func TestDaemonUnreachable(t *testing.T) {
	m, cmd := send(t, newModel(&recorder{}, true), snapshotMsg{err: errors.New("connection refused")})
	if cmd == nil || !strings.Contains(m.View(), "cannot reach the daemon") {
		t.Errorf("no retry or no message:\n%s", m.View())
	}
}

func TestLogsScrollAndFollow(t *testing.T) {
	m, _ := send(t, newModel(&recorder{}, true), tea.WindowSizeMsg{Width: 80, Height: 24})
	m, cmd := send(t, m, keys("l"))
	if cmd == nil {
		t.Fatal("logs not requested")
	}
	var lines []logring.Line
	for i := 1; i <= 100; i++ {
		lines = append(lines, logring.Line{Seq: uint64(i), Text: "line " + strings.Repeat("x", i%7) + string(rune('0'+i%10))})
	}
	m, _ = send(t, m, logsMsg{lines: lines})
	if !m.logView.AtBottom() || !m.follow {
		t.Error("new logs did not follow")
	}
	m, _ = send(t, m, tea.KeyMsg{Type: tea.KeyPgUp})
	if m.follow || !strings.Contains(m.View(), "scrolled") {
		t.Error("page up did not stop following")
	}
	m, _ = send(t, m, keys("f"))
	if !m.follow || !m.logView.AtBottom() {
		t.Error("f did not follow again")
	}
}

func TestHelpListsEveryKey(t *testing.T) {
	m, _ := send(t, newModel(&recorder{}, true), keys("?"))
	v := m.View()
	for _, b := range defaultKeys().all() {
		if !strings.Contains(v, b.Help().Desc) {
			t.Errorf("help lacks %q", b.Help().Desc)
		}
	}
	m, _ = send(t, m, keys("z"))
	if m.screen != screenDashboard {
		t.Error("any key did not leave help")
	}
}

func TestJoinRequest(t *testing.T) {
	tests := []struct{ in, wantJoin, wantErr string }{
		{"  d363B4E9bd3d6aa8 ", "d363b4e9bd3d6aa8", ""},
		{"gate://1.2.3.4:8443/d363b4e9bd3d6aa8?pin=" + pin, "gate://1.2.3.4:8443/d363b4e9bd3d6aa8?pin=" + pin, ""},
		{"", "", "paste a join string"},
		{"d363b4e9", "", "want 16 hex digits"},
		{"gate://1.2.3.4:8443/d363b4e9bd3d6aa8", "", "missing pin"},
	}
	for _, tt := range tests {
		got, err := joinRequest(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("joinRequest(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.Join != tt.wantJoin {
			t.Errorf("joinRequest(%q) = %+v, %v", tt.in, got, err)
		}
	}
}

func TestASCIITerms(t *testing.T) {
	for term, want := range map[string]bool{"vt100": true, "linux": true, "": true, "xterm-256color": false, "screen": false} {
		if asciiTerm(term) != want {
			t.Errorf("asciiTerm(%q) = %v", term, !want)
		}
	}
	v := send2View(t, true)
	if strings.ContainsAny(v, "╭╮╰╯─│") {
		t.Error("ASCII mode drew box characters")
	}
}

func send2View(t *testing.T, ascii bool) string {
	m, _ := send(t, newModel(&recorder{}, ascii), tea.WindowSizeMsg{Width: 80, Height: 24}, snapshotMsg{snap: snapshot()})
	return m.View()
}

func stripANSI(s string) string {
	var b strings.Builder
	in := false
	for _, r := range s {
		switch {
		case r == 0x1b:
			in = true
		case in && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'):
			in = false
		case !in:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestJoinFormSaysWhatTheAPISays: the join form refuses what the local
// API refuses, in the same words (both are nodeconfig's).
func TestJoinFormSaysWhatTheAPISays(t *testing.T) {
	for _, in := range []string{"d363b4e9", "hello", "gate://1.2.3.4:8443/d363b4e9bd3d6aa8", "gate://bad", "gate://a%C2%9Bb:1/d363b4e9bd3d6aa8?pin=" + pin} {
		_, err := joinRequest(in)
		want := localapi.JoinRequest{Join: in}.Check()
		if err == nil || want == nil || err.Error() != want.Error() {
			t.Errorf("joinRequest(%q) = %v; the API says %v", in, err, want)
		}
	}
}

func TestDashboardShowsFailover(t *testing.T) {
	s := snapshot()
	s.Networks[0].Gateway = nil
	s.Networks[0].Failover = []localapi.RouteFailover{{Dest: netip.MustParsePrefix("172.16.0.0/16"), Active: netip.MustParseAddr("192.168.254.12"),
		Reason: "192.168.254.11 is down: silent for 1.5s"}}
	m, _ := send(t, newModel(&recorder{}, false), tea.WindowSizeMsg{Width: 100, Height: 40}, snapshotMsg{snap: s})
	if v := m.View(); !strings.Contains(v, "172.16.0.0/16 now via 192.168.254.12: 192.168.254.11 is down: silent for 1.5s") {
		t.Errorf("the dashboard does not say which gateway the route goes through:\n%s", v)
	}
}
