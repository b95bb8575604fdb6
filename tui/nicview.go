package tui

import (
	"fmt"
	"strings"

	"github.com/gatenet/gate/services/localapi"
)

func (m Model) interfacesView() string {
	var b strings.Builder
	b.WriteString(m.st.title.Render("Interfaces") + "\n")
	if len(m.snap.Interfaces) == 0 {
		b.WriteString("  none managed: NICs are configured by the appliance (gate up --manage-nics)\n")
		return b.String()
	}
	b.WriteString(m.st.dim.Render(fmt.Sprintf("%-10s %-5s %-6s %-18s %-15s %s", "NIC", "LINK", "MODE", "ADDRESS", "GATEWAY", "")) + "\n")
	for i, n := range m.snap.Interfaces {
		name := fmt.Sprintf("%-10s", clip(n.Name, 10))
		if i == m.nicSel {
			name = m.st.selected.Render(name)
		}
		gw := "-"
		if n.Gateway.IsValid() {
			gw = n.Gateway.String()
		}
		wan := ""
		if n.WAN {
			wan = "WAN"
		}
		b.WriteString(fmt.Sprintf("%s %-5s %-6s %-18s %-15s %s\n", name, clip(n.Link, 5), n.Mode, clip(prefixes(n.Addresses), 18), gw, wan))
	}
	if m.nicSel < len(m.snap.Interfaces) {
		b.WriteString("\n" + m.nicDetail(m.snap.Interfaces[m.nicSel]))
	}
	return b.String()
}

func (m Model) nicDetail(n localapi.Interface) string {
	var b strings.Builder
	b.WriteString(fmt.Sprintf("%s  mac %s", n.Name, orDash(n.MAC)))
	if len(n.DNS) > 0 {
		var dns []string
		for _, a := range n.DNS {
			dns = append(dns, a.String())
		}
		b.WriteString("  dns " + strings.Join(dns, ","))
	}
	b.WriteString("\n")
	if d := n.DHCP; d != nil {
		line := "DHCP " + d.State
		if d.Server.IsValid() {
			line += " from " + d.Server.String()
		}
		if !d.Expiry.IsZero() {
			line += ", lease ends in " + d.Expiry.Sub(m.now()).Round(1e9).String()
		}
		b.WriteString(line + "\n")
		if d.LastError != "" {
			b.WriteString(m.st.bad.Render("dhcp: ") + d.LastError + "\n")
		}
	}
	if n.Error != "" {
		b.WriteString(m.st.bad.Render("error: ") + n.Error + "\n")
	}
	return b.String()
}

func (m Model) editNICView() string {
	var b strings.Builder
	b.WriteString(m.st.title.Render("Interface "+nicName(m.form.name)) + "\n\n")
	mode := "( ) DHCP   (*) static"
	if m.form.dhcp {
		mode = "(*) DHCP   ( ) static"
	}
	rows := []struct {
		field int
		label string
		value string
	}{
		{fieldMode, "mode", mode},
		{fieldAddress, "address", m.fields[fieldAddress].View()},
		{fieldGateway, "gateway", m.fields[fieldGateway].View()},
		{fieldDNS, "dns", m.fields[fieldDNS].View()},
	}
	for _, r := range rows {
		marker := "  "
		if r.field == m.field {
			marker = "> "
		}
		if m.form.dhcp && r.field != fieldMode {
			b.WriteString(m.st.dim.Render(fmt.Sprintf("%s%-8s (from DHCP)", marker, r.label)) + "\n")
			continue
		}
		b.WriteString(fmt.Sprintf("%s%-8s %s\n", marker, r.label, r.value))
		// The validator's own message, on lines of its own under the
		// value: it is the one the API would give, and may be long.
		if e := m.formErrs[r.field]; e != "" {
			b.WriteString(m.st.bad.Width(max(m.width-13, 20)).MarginLeft(11).Render("! "+e) + "\n")
		}
	}
	b.WriteString("\n" + m.st.dim.Render("The change applies at once and reverts by itself in 60 s unless you keep it (c).") + "\n")
	if m.applying {
		b.WriteString(m.st.dim.Render("applying...") + "\n")
	}
	return b.String()
}
