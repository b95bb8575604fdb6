package tui

import "github.com/charmbracelet/bubbles/key"

// keyMap is every key the console answers to; the help bar and the help
// screen are rendered from it, so they cannot drift from the code.
type keyMap struct {
	Dashboard, Join, Logs, Help, Quit key.Binding
	Interfaces, Edit, Toggle          key.Binding
	Up, Down, Leave                   key.Binding
	Submit, Cancel, Yes, No           key.Binding
	PageUp, PageDown, Follow          key.Binding
	Keep, Reboot, PowerOff            key.Binding
	Apply                             key.Binding
}

func defaultKeys() keyMap {
	return keyMap{
		Dashboard:  key.NewBinding(key.WithKeys("d", "1"), key.WithHelp("d", "dashboard")),
		Join:       key.NewBinding(key.WithKeys("j", "2"), key.WithHelp("j", "join")),
		Logs:       key.NewBinding(key.WithKeys("l", "4"), key.WithHelp("l", "logs")),
		Interfaces: key.NewBinding(key.WithKeys("i", "3"), key.WithHelp("i", "interfaces")),
		Edit:       key.NewBinding(key.WithKeys("e", "enter"), key.WithHelp("e", "edit")),
		Toggle:     key.NewBinding(key.WithKeys(" "), key.WithHelp("space", "dhcp/static")),
		Keep:       key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "keep change")),
		Reboot:     key.NewBinding(key.WithKeys("R"), key.WithHelp("R", "reboot")),
		PowerOff:   key.NewBinding(key.WithKeys("P"), key.WithHelp("P", "power off")),
		Apply:      key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "apply")),
		Help:       key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "all keys")),
		Quit:       key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),
		Up:         key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("up/k", "previous")),
		Down:       key.NewBinding(key.WithKeys("down", "tab"), key.WithHelp("down/tab", "next")),
		Leave:      key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "leave")),
		Submit:     key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "join")),
		Cancel:     key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back")),
		Yes:        key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "yes")),
		No:         key.NewBinding(key.WithKeys("n", "esc"), key.WithHelp("n", "no")),
		PageUp:     key.NewBinding(key.WithKeys("pgup", "b"), key.WithHelp("pgup", "page up")),
		PageDown:   key.NewBinding(key.WithKeys("pgdown", " "), key.WithHelp("pgdn", "page down")),
		Follow:     key.NewBinding(key.WithKeys("f", "end"), key.WithHelp("f", "follow")),
	}
}

// help lists the keys of a screen, shortest first.
func (k keyMap) help(s screen) []key.Binding {
	switch s {
	case screenJoin:
		return []key.Binding{k.Submit, k.Cancel}
	case screenLogs:
		return []key.Binding{k.Up, k.Down, k.PageUp, k.PageDown, k.Follow, k.Dashboard, k.Help}
	case screenHelp:
		return []key.Binding{k.Cancel}
	case screenInterfaces:
		return []key.Binding{k.Up, k.Down, k.Edit, k.Dashboard, k.Help}
	case screenEditNIC:
		return []key.Binding{k.Down, k.Toggle, k.Apply, k.Cancel}
	}
	return []key.Binding{k.Up, k.Down, k.Join, k.Leave, k.Interfaces, k.Logs, k.Help}
}

// all is every binding, for the help screen.
func (k keyMap) all() []key.Binding {
	return []key.Binding{k.Dashboard, k.Join, k.Interfaces, k.Logs, k.Help, k.Quit, k.Up, k.Down, k.Leave,
		k.Edit, k.Toggle, k.Apply, k.Keep, k.Reboot, k.PowerOff,
		k.Submit, k.Cancel, k.Yes, k.No, k.PageUp, k.PageDown, k.Follow}
}
