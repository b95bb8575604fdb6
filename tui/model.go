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
)

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

	confirm string // network ID awaiting "leave? y/n"
	notice  string // one-line outcome of the last action

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
	in.CharLimit = 512
	in.Prompt = "> "
	return Model{
		api: api, keys: defaultKeys(), st: newStyles(opt.ASCII), now: time.Now,
		width: 80, height: 24, input: in, follow: true,
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
		return m, watchCmd(m.api, msg.snap.Rev)
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
		if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !msg.Paste && m.screen != screenJoin {
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
	if m.confirm != "" {
		switch {
		case key.Matches(msg, k.Yes):
			id := m.confirm
			m.confirm = ""
			m.notice = "Leaving " + id + "..."
			return m, leaveCmd(m.api, id)
		case key.Matches(msg, k.No):
			m.confirm = ""
		}
		return m, nil
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
			m.confirm = n.ID
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
