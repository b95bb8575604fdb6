package tui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/lipgloss"

	"github.com/gatenet/gate/services/localapi"
)

// View renders the screen; it is a pure function of the model.
func (m Model) View() string {
	var body string
	switch m.screen {
	case screenJoin:
		body = m.joinView()
	case screenLogs:
		body = m.logsView()
	case screenHelp:
		body = m.helpView()
	case screenInterfaces:
		body = m.interfacesView()
	case screenEditNIC:
		body = m.editNICView()
	default:
		body = m.dashboardView()
	}
	header := m.headerView()
	footer := m.footerView()
	// Pad the body so the help bar sits on the last line.
	room := m.height - lipgloss.Height(header) - lipgloss.Height(footer)
	if h := lipgloss.Height(body); h < room {
		body += strings.Repeat("\n", room-h)
	} else if h > room && room > 0 {
		// Too much for the screen: cut, so header and help stay in view.
		body = strings.Join(strings.Split(body, "\n")[:room], "\n")
	}
	return fit(lipgloss.JoinVertical(lipgloss.Left, header, body, footer), m.width)
}

func (m Model) headerView() string {
	s := m.snap.Status
	if m.connErr != nil && s.NodeID == "" {
		return m.st.bad.Render("gate: cannot reach the daemon: ") + terminal(m.connErr.Error())
	}
	online := m.st.ok.Render("ONLINE")
	if !s.Online {
		online = m.st.warn.Render("OFFLINE")
	}
	up := "-"
	if !s.Started.IsZero() {
		up = m.now().Sub(s.Started).Round(time.Second).String()
	}
	line1 := fmt.Sprintf("%s %s  node %s  %s", m.st.title.Render("gate"), s.Version, m.st.key.Render(s.NodeID), online)
	line2 := m.st.dim.Render(fmt.Sprintf("host %s  up %s  firewall %s  forwarding %v", s.Hostname, up, orDash(s.Firewall), s.Forward))
	out := line1 + "\n" + line2
	if m.connErr != nil {
		out += "\n" + m.st.bad.Render("daemon unreachable, retrying: ") + terminal(m.connErr.Error())
	}
	return out
}

func (m Model) footerView() string {
	var parts []string
	if p := m.snap.Status.Pending; p != nil {
		left := max(p.Deadline.Sub(m.now()).Round(time.Second), 0)
		parts = append(parts, m.st.warn.Render("Keep "+p.What+"?")+" "+m.helpItem(m.keys.Keep)+m.st.dim.Render(fmt.Sprintf("  (reverts in %v)", left)))
	}
	if m.ask != nil {
		parts = append(parts, m.st.warn.Render(m.ask.prompt+" ")+m.helpItem(m.keys.Yes)+"  "+m.helpItem(m.keys.No))
	} else if m.notice != "" {
		parts = append(parts, m.notice)
	}
	var keys []string
	for _, b := range m.keys.help(m.screen) {
		keys = append(keys, m.helpItem(b))
	}
	parts = append(parts, strings.Join(keys, "  "))
	return strings.Join(parts, "\n")
}

func (m Model) helpItem(b key.Binding) string {
	h := b.Help()
	return m.st.helpKey.Render(h.Key) + " " + m.st.helpDesc.Render(h.Desc)
}

func (m Model) dashboardView() string {
	var b strings.Builder
	ns := m.snap.Networks
	b.WriteString(m.st.title.Render("Networks") + "\n")
	if len(ns) == 0 {
		b.WriteString("  none joined: press " + m.st.key.Render("j") + " to join one\n")
	}
	// 16 + 1 + 10 + 1 + 24 + 1 leaves 27 columns of an 80-column
	// console for the addresses; the interface is in the detail below.
	statusCol := lipgloss.NewStyle().Width(25)
	for i, n := range ns {
		id := fmt.Sprintf("%-16s", n.ID)
		if i == m.sel {
			id = m.st.selected.Render(id)
		}
		b.WriteString(id + " " + fmt.Sprintf("%-10s ", clip(orDash(n.Name), 10)) + statusCol.Render(m.st.status(n.Status)) + addrs(n.Addresses) + "\n")
	}
	if nics := m.snap.Interfaces; len(nics) > 0 {
		// The machine's side at a glance; i shows the details.
		b.WriteString(m.st.title.Render("Interfaces") + "\n")
		for _, n := range nics {
			gw := ""
			if n.Gateway.IsValid() {
				gw = " via " + n.Gateway.String()
			}
			wan := ""
			if n.WAN {
				wan = " WAN"
			}
			b.WriteString(fmt.Sprintf("%-10s %-5s %-6s %s%s%s\n", clip(n.Name, 10), clip(n.Link, 5), n.Mode, clip(prefixes(n.Addresses), 34), gw, wan))
		}
	}
	if n, ok := m.selected(); ok {
		b.WriteString("\n" + m.networkDetail(n))
	}
	return b.String()
}

// networkDetail is the selected network: what to do next, routes, peers.
func (m Model) networkDetail(n localapi.Network) string {
	var b strings.Builder
	if step := nextStep(n, m.snap.Status); step != "" {
		b.WriteString(lipgloss.NewStyle().Width(max(m.width-1, 20)).Render(step) + "\n")
	}
	if n.Error != "" {
		b.WriteString(m.st.bad.Render("error: ") + n.Error + "\n")
	}
	if len(n.Controllers) > 1 {
		// A controller run as replicas: the one this node is on.
		b.WriteString(fmt.Sprintf("controller %s (%d of %d addresses)\n", n.ControllerNow, slices.Index(n.Controllers, n.ControllerNow)+1, len(n.Controllers)))
	}
	if n.Gateway != nil {
		g := n.Gateway
		b.WriteString(fmt.Sprintf("gateway for %s  lan %s  masquerade lan %v internet %v\n", prefixes(g.Serve), orDash(g.LAN), g.MasqueradeLAN, g.MasqueradeInternet))
	}
	for _, r := range n.Routes {
		b.WriteString("route " + r.String() + "\n")
	}
	for _, f := range n.Failover {
		// Which gateway of a route with several this node uses, and why.
		if f.Serving {
			who := f.Active.String()
			if f.ActiveHere {
				who = "this node"
			}
			b.WriteString(fmt.Sprintf("  %s served here: %s; active: %s\n", f.Dest, terminal(f.State), who))
			continue
		}
		b.WriteString(fmt.Sprintf("  %s now via %s: %s\n", f.Dest, f.Active, terminal(f.Reason)))
	}
	if len(n.Peers) > 0 {
		b.WriteString(m.st.title.Render("Peers") + "\n")
		b.WriteString(m.st.dim.Render(fmt.Sprintf("%-10s %-21s %-10s %9s %9s", "NODE", "ENDPOINT", "HANDSHAKE", "RX", "TX")) + "\n")
	}
	for _, p := range n.Peers {
		ep := "-"
		if p.Endpoint.IsValid() {
			ep = p.Endpoint.String()
		}
		b.WriteString(fmt.Sprintf("%-10s %-21s %-10s %9s %9s\n", p.NodeID, ep, m.age(p.LastHandshake), bytes(p.RxBytes), bytes(p.TxBytes)))
	}
	if n.Rules != nil {
		// Who may reach what, as this node enforces it: the network's
		// rules compiled for it, with what each matched.
		b.WriteString(m.st.title.Render("Rules (first match decides)") + "\n")
		b.WriteString(m.st.dim.Render(fmt.Sprintf("%-7s %4s %9s  %s", "CHAIN", "RULE", "PACKETS", "RULE TEXT")) + "\n")
		for _, r := range n.Rules {
			num, text := fmt.Sprint(r.Rule), r.Text
			if r.Rule == 0 {
				num, text = "-", "anything else: denied"
			}
			b.WriteString(fmt.Sprintf("%-7s %4s %9d  %s\n", r.Chain, num, r.Packets, clip(text, max(m.width-25, 20))))
		}
	}
	return b.String()
}

func (m Model) joinView() string {
	var b strings.Builder
	b.WriteString(m.st.title.Render("Join a network") + "\n\n")
	b.WriteString("Paste a join string from your admin, or a network ID:\n\n")
	b.WriteString(m.input.View() + "\n")
	if m.joinErr != "" {
		b.WriteString(m.st.bad.Render("! ") + m.joinErr + "\n")
	}
	if m.joining {
		b.WriteString(m.st.dim.Render("asking the controller...") + "\n")
	}
	if m.following != "" {
		for _, n := range m.snap.Networks {
			if n.ID == m.following {
				b.WriteString("\n" + n.ID + "  " + m.st.status(n.Status) + "\n" + m.networkDetail(n))
			}
		}
	}
	return b.String()
}

func (m Model) logsView() string {
	title := m.st.title.Render("Log")
	if !m.follow {
		title += m.st.dim.Render("  (scrolled; f to follow)")
	}
	return title + "\n" + m.logView.View()
}

func (m Model) helpView() string {
	var b strings.Builder
	b.WriteString(m.st.title.Render("Keys") + "\n\n")
	// Two columns, so that every key fits on 80x24.
	all := m.keys.all()
	half := (len(all) + 1) / 2
	for i := 0; i < half; i++ {
		h := all[i].Help()
		line := fmt.Sprintf("  %-8s %-28s", h.Key, h.Desc)
		if j := i + half; j < len(all) {
			h2 := all[j].Help()
			line += fmt.Sprintf("  %-8s %s", h2.Key, h2.Desc)
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

func (m Model) age(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return m.now().Sub(t).Round(time.Second).String() + " ago"
}

func bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n-1] + "~"
	}
	return s
}
