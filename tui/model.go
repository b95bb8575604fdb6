package tui

import (
	"context"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/logring"
)

type screen int

const (
	screenDashboard screen = iota
	screenJoin
	screenLogs
	screenHelp
	screenInterfaces
	screenEditNIC
)

// Messages from the commands.
type (
	snapshotMsg struct {
		snap localapi.Snapshot
		err  error
	}
	logsMsg struct {
		lines []logring.Line
		err   error
	}
	joinedMsg struct {
		network localapi.Network
		err     error
	}
	leftMsg struct {
		id  string
		err error
	}
	retryWatchMsg struct{}
	retryLogsMsg  struct{}
	setNICMsg     struct {
		pending localapi.Pending
		err     error
	}
	doneMsg struct {
		what string // what succeeded, for the notice
		err  error
	}
	tickMsg struct{}
)

// question is a yes/no prompt in the footer; yes runs on "y".
type question struct {
	prompt string
	yes    func() tea.Cmd
}

// How long one watch waits: it answers sooner on a change, and at the
// latest after this, with fresh counters (handshake ages, bytes).
const watchWait = 2 * time.Second

// Model is the console's state.
type Model struct {
	api    API
	keys   keyMap
	st     styles
	now    func() time.Time
	width  int
	height int
	screen screen
	prev   screen // where help returns to

	snap    localapi.Snapshot
	connErr error // the daemon could not be reached
	sel     int   // selected network on the dashboard

	input     textinput.Model
	joinErr   string
	joining   bool
	following string // network the join screen follows

	ask    *question // a yes/no prompt waiting for an answer
	notice string    // one-line outcome of the last action

	nicSel   int
	form     nicForm
	field    int
	fields   [numFields]textinput.Model // address, gateway, dns (mode has none)
	formErrs map[int]string
	applying bool
	ticking  bool

	logs     []logring.Line
	logSeq   uint64
	logView  viewport.Model
	follow   bool
	logsLive bool
}

// Options configure the console.
type Options struct {
	ASCII bool // ASCII borders (serial consoles)
}

// New returns the console's model for api.
func New(api API, opt Options) Model {
	in := textinput.New()
	in.Placeholder = "gate://HOST:PORT/NETWORKID?pin=sha256:...  or a network ID"
	in.CharLimit = 4096 // a join string may list several controller addresses
	in.Prompt = "> "
	var fields [numFields]textinput.Model
	for i, ph := range map[int]string{fieldAddress: "172.16.1.10/24", fieldGateway: "172.16.1.1 (optional)", fieldDNS: "172.16.0.2, 1.1.1.1 (optional)"} {
		fields[i] = textinput.New()
		fields[i].Placeholder = ph
		fields[i].CharLimit = 64
		fields[i].Prompt = ""
	}
	return Model{
		api: api, keys: defaultKeys(), st: newStyles(opt.ASCII), now: time.Now,
		width: 80, height: 24, input: in, follow: true, fields: fields,
		logView: viewport.New(78, 16),
	}
}

// Init starts the watch; everything else starts on demand.
func (m Model) Init() tea.Cmd { return watchCmd(m.api, 0) }

func watchCmd(api API, since uint64) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), watchWait+10*time.Second)
		defer cancel()
		s, err := api.Watch(ctx, since, watchWait)
		sanitize(&s)
		return snapshotMsg{s, err}
	}
}

func logsCmd(api API, since uint64) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		wait := 25 * time.Second
		if since == 0 {
			wait = 0
		}
		ls, err := api.Logs(ctx, since, wait)
		sanitize(&ls)
		return logsMsg{ls, err}
	}
}

func joinCmd(api API, r localapi.JoinRequest) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n, err := api.Join(ctx, r)
		return joinedMsg{n, err}
	}
}

func leaveCmd(api API, id string) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return leftMsg{id, api.Leave(ctx, id)}
	}
}

// actionCmd runs one API call and reports it as a doneMsg.
func actionCmd(what string, f func(ctx context.Context) error) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return doneMsg{what: what, err: f(ctx)}
	}
}

func setNICCmd(api API, name string, r localapi.SetInterfaceRequest) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p, err := api.SetInterface(ctx, name, r)
		return setNICMsg{p, err}
	}
}

func after(d time.Duration, msg tea.Msg) tea.Cmd {
	return tea.Tick(d, func(time.Time) tea.Msg { return msg })
}

// Update handles one message. It never blocks: I/O is in the commands.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.logView.Width, m.logView.Height = max(msg.Width-2, 10), max(msg.Height-6, 3)
		m.refreshLogView()
		return m, nil
	case snapshotMsg:
		if msg.err != nil {
			m.connErr = msg.err
			return m, after(time.Second, retryWatchMsg{})
		}
		m.connErr = nil
		m.snap = msg.snap
		if m.sel >= len(m.snap.Networks) {
			m.sel = max(len(m.snap.Networks)-1, 0)
		}
		if m.nicSel >= len(m.snap.Interfaces) {
			m.nicSel = max(len(m.snap.Interfaces)-1, 0)
		}
		cmds := []tea.Cmd{watchCmd(m.api, msg.snap.Rev)}
		if m.snap.Status.Pending != nil && !m.ticking {
			// A countdown on screen: redraw every second.
			m.ticking = true
			cmds = append(cmds, after(time.Second, tickMsg{}))
		}
		return m, tea.Batch(cmds...)
	case tickMsg:
		if m.snap.Status.Pending == nil {
			m.ticking = false
			return m, nil
		}
		return m, after(time.Second, tickMsg{})
	case setNICMsg:
		m.applying = false
		if msg.err != nil {
			m.notice = "Not applied: " + msg.err.Error()
			return m, nil
		}
		m.screen = screenInterfaces
		m.notice = "Applied " + msg.pending.What + ": press c to keep it"
		return m, nil
	case doneMsg:
		if msg.err != nil {
			m.notice = msg.what + " failed: " + msg.err.Error()
		} else {
			m.notice = msg.what
		}
		return m, nil
	case retryWatchMsg:
		return m, watchCmd(m.api, m.snap.Rev)
	case logsMsg:
		if msg.err != nil {
			return m, after(2*time.Second, retryLogsMsg{})
		}
		for _, l := range msg.lines {
			m.logs = append(m.logs, l)
			m.logSeq = l.Seq
		}
		if len(m.logs) > 2000 {
			m.logs = m.logs[len(m.logs)-2000:]
		}
		m.refreshLogView()
		return m, logsCmd(m.api, max(m.logSeq, 1))
	case retryLogsMsg:
		return m, logsCmd(m.api, m.logSeq)
	case joinedMsg:
		m.joining = false
		if msg.err != nil {
			m.joinErr = msg.err.Error()
			return m, nil
		}
		m.following = msg.network.ID
		m.input.SetValue("")
		m.notice = "Joined " + msg.network.ID
		return m, nil
	case leftMsg:
		if msg.err != nil {
			m.notice = "Leave failed: " + msg.err.Error()
		} else {
			m.notice = "Left " + msg.id
		}
		return m, nil
	case tea.KeyMsg:
		// Keys typed faster than the program reads arrive as one message
		// (a serial line, tmux send-keys); outside a text field, take
		// them one by one.
		if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !msg.Paste && m.screen != screenJoin && m.screen != screenEditNIC {
			var cmds []tea.Cmd
			var next tea.Model = m
			for _, r := range msg.Runes {
				var cmd tea.Cmd
				next, cmd = next.(Model).key(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
				cmds = append(cmds, cmd)
			}
			return next, tea.Batch(cmds...)
		}
		return m.key(msg)
	}
	if m.screen == screenJoin {
		var cmd tea.Cmd
		m.input, cmd = m.input.Update(msg)
		return m, cmd
	}
	return m, nil
}

func (m Model) key(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	k := m.keys
	if msg.Type == tea.KeyCtrlC {
		return m, tea.Quit
	}
	if m.ask != nil {
		switch {
		case key.Matches(msg, k.Yes):
			q := m.ask
			m.ask = nil
			return m, q.yes()
		case key.Matches(msg, k.No):
			m.ask = nil
		}
		return m, nil
	}
	if key.Matches(msg, k.Keep) && m.snap.Status.Pending != nil && m.screen != screenJoin && m.screen != screenEditNIC {
		m.notice = "Keeping " + m.snap.Status.Pending.What
		return m, actionCmd("Kept "+m.snap.Status.Pending.What, func(ctx context.Context) error { return m.api.Confirm(ctx) })
	}
	switch m.screen {
	case screenJoin:
		switch {
		case key.Matches(msg, k.Cancel):
			m.screen = screenDashboard
			m.input.Blur()
			return m, nil
		case key.Matches(msg, k.Submit):
			if m.joining {
				return m, nil
			}
			req, err := joinRequest(m.input.Value())
			if err != nil {
				m.joinErr = err.Error()
				return m, nil
			}
			m.joinErr, m.joining, m.following = "", true, networkIDOf(req)
			return m, joinCmd(m.api, req)
		}
		var cmd tea.Cmd
		m.input, cmd = m.input.Update(msg)
		if m.joinErr != "" {
			m.joinErr = "" // typing clears the last complaint
		}
		return m, cmd
	case screenHelp:
		m.screen = m.prev
		return m, nil
	case screenEditNIC:
		return m.formKey(msg)
	}
	switch {
	case key.Matches(msg, k.Quit):
		return m, tea.Quit
	case key.Matches(msg, k.Help):
		m.prev, m.screen = m.screen, screenHelp
	case key.Matches(msg, k.Dashboard):
		m.screen = screenDashboard
	case key.Matches(msg, k.Join):
		m.screen, m.joinErr = screenJoin, ""
		return m, m.input.Focus()
	case key.Matches(msg, k.Interfaces):
		m.screen = screenInterfaces
	case m.screen == screenInterfaces && key.Matches(msg, k.Edit):
		if m.nicSel < len(m.snap.Interfaces) {
			return m.startEdit(m.snap.Interfaces[m.nicSel])
		}
		m.notice = "No interface to edit (NICs are managed on the appliance only)"
	case m.screen == screenInterfaces && key.Matches(msg, k.Up):
		m.nicSel = max(m.nicSel-1, 0)
	case m.screen == screenInterfaces && key.Matches(msg, k.Down):
		if m.nicSel < len(m.snap.Interfaces)-1 {
			m.nicSel++
		}
	case key.Matches(msg, k.Reboot), key.Matches(msg, k.PowerOff):
		action, what := "reboot", "Reboot"
		if key.Matches(msg, k.PowerOff) {
			action, what = "poweroff", "Power off"
		}
		m.ask = &question{prompt: what + " this machine?", yes: func() tea.Cmd {
			return actionCmd(what+" requested", func(ctx context.Context) error { return m.api.Power(ctx, action) })
		}}
	case key.Matches(msg, k.Logs):
		m.screen = screenLogs
		if !m.logsLive {
			m.logsLive = true
			return m, logsCmd(m.api, 0)
		}
	case m.screen == screenLogs:
		return m.logKey(msg)
	case key.Matches(msg, k.Up):
		m.sel = max(m.sel-1, 0)
	case key.Matches(msg, k.Down):
		if m.sel < len(m.snap.Networks)-1 {
			m.sel++
		}
	case key.Matches(msg, k.Leave):
		if n, ok := m.selected(); ok {
			id := n.ID
			m.ask = &question{prompt: "Leave network " + id + "?", yes: func() tea.Cmd {
				return leaveCmd(m.api, id)
			}}
		} else {
			m.notice = "No network to leave"
		}
	}
	return m, nil
}

func (m Model) logKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	k := m.keys
	switch {
	case key.Matches(msg, k.Up):
		m.logView.ScrollUp(1)
		m.follow = false
	case key.Matches(msg, k.Down):
		m.logView.ScrollDown(1)
	case key.Matches(msg, k.PageUp):
		m.logView.PageUp()
		m.follow = false
	case key.Matches(msg, k.PageDown):
		m.logView.PageDown()
	case key.Matches(msg, k.Follow):
		m.follow = true
		m.logView.GotoBottom()
	}
	if m.logView.AtBottom() {
		m.follow = true
	}
	return m, nil
}

func (m *Model) refreshLogView() {
	var b []byte
	for i, l := range m.logs {
		if i > 0 {
			b = append(b, '\n')
		}
		b = append(b, wrap(l.Text, m.logView.Width)...)
	}
	m.logView.SetContent(string(b))
	if m.follow {
		m.logView.GotoBottom()
	}
}

func (m Model) selected() (localapi.Network, bool) {
	if m.sel < 0 || m.sel >= len(m.snap.Networks) {
		return localapi.Network{}, false
	}
	return m.snap.Networks[m.sel], true
}

// startEdit opens the form for a NIC, filled with what it has now.
func (m Model) startEdit(n localapi.Interface) (tea.Model, tea.Cmd) {
	m.form = formFor(n)
	m.fields[fieldAddress].SetValue(m.form.address)
	m.fields[fieldGateway].SetValue(m.form.gateway)
	m.fields[fieldDNS].SetValue(m.form.dns)
	m.field, m.screen, m.formErrs = fieldMode, screenEditNIC, nil
	return m, nil
}

// formKey edits the NIC form: tab/down and shift+tab/up move, space
// toggles DHCP, enter applies, esc goes back. Every change is validated at
// once, so an error shows next to its field as it is typed.
func (m Model) formKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	k := m.keys
	switch {
	case key.Matches(msg, k.Cancel):
		m.screen = screenInterfaces
		return m, nil
	case msg.Type == tea.KeyTab || msg.Type == tea.KeyDown:
		m = m.focus((m.field + 1) % numFields)
		return m, nil
	case msg.Type == tea.KeyShiftTab || msg.Type == tea.KeyUp:
		m = m.focus((m.field + numFields - 1) % numFields)
		return m, nil
	case m.field == fieldMode && (key.Matches(msg, k.Toggle) || msg.String() == "d" || msg.String() == "s"):
		m.form.dhcp = !m.form.dhcp
		if msg.String() == "d" || msg.String() == "s" {
			m.form.dhcp = msg.String() == "d"
		}
	case key.Matches(msg, k.Apply):
		if m.applying {
			return m, nil
		}
		req, errs := m.form.request(m.snap.Interfaces)
		m.formErrs = errs
		if len(errs) > 0 {
			return m, nil
		}
		m.applying = true
		return m, setNICCmd(m.api, m.form.name, req)
	default:
		if m.field != fieldMode {
			var cmd tea.Cmd
			m.fields[m.field], cmd = m.fields[m.field].Update(msg)
			m.form.address = m.fields[fieldAddress].Value()
			m.form.gateway = m.fields[fieldGateway].Value()
			m.form.dns = m.fields[fieldDNS].Value()
			_, m.formErrs = m.form.request(m.snap.Interfaces)
			return m, cmd
		}
	}
	_, m.formErrs = m.form.request(m.snap.Interfaces)
	return m, nil
}

func (m Model) focus(f int) Model {
	for i := range m.fields {
		if i == fieldMode {
			continue
		}
		if i == f {
			m.fields[i].Focus()
		} else {
			m.fields[i].Blur()
		}
	}
	m.field = f
	return m
}
