package pid1

import (
	"fmt"
	"strings"
	"time"

	"github.com/gatenet/gate/services/localapi"
)

// The machine-readable lines PID 1 prints on every console as the daemon's
// state changes. The boot tests (scripts/boot-test.sh, net-test.sh,
// console-qemu-test.sh) wait for them; an operator at the console, or a
// cloud's serial log, sees where the appliance is without asking:
//
//	gate: ready node=<id> version=<v> hostname=<h> firewall=<mode> uptime=<s>s
//	gate: network wan=<nic> address=<a/len> gateway=<gw|-> dns=<a,b> mode=<dhcp|static> default_route=<bool> uptime=<s>s
//	gate: config state=<s> source="<src>" instance=<id|-> first_boot=<bool> errors=<n> warnings=<n> uptime=<s>s[: error: ...; warning: ...]
//
// They are derived, by told.next, from the snapshots of one watch of the
// daemon's local API (watcher, watch.go), the stream the console
// follows too.

// told is what the consoles have been told so far: the state each line
// last printed, without its uptime. It lives as long as PID 1, across
// restarts of the daemon, so that a restarted daemon that comes back as it
// was does not print the same lines again.
type told struct {
	ready   bool   // the ready line is printed once per boot
	network string // the WAN's fields on the last network line
	config  string // the last config line's fields and items
}

// next returns the lines that snapshot s adds to what t has told, and
// what has been told then. version is PID 1's (the ready line's), up the
// time since boot at s.
func (t told) next(s localapi.Snapshot, version string, up time.Duration) (told, []string) {
	var lines []string
	secs := fmt.Sprintf("uptime=%.2fs", up.Seconds())
	// Ready once the daemon answers and its first reconcile pass has run
	// (the firewall is in place), so the line never says firewall= with
	// nothing after it.
	if st := s.Status; !t.ready && st.Firewall != "" {
		t.ready = true
		lines = append(lines, fmt.Sprintf("gate: ready node=%s version=%s hostname=%s firewall=%s %s",
			st.NodeID, version, st.Hostname, st.Firewall, secs))
	}
	if n := networkFields(s.Interfaces); n != "" && n != t.network {
		t.network = n
		lines = append(lines, "gate: network "+n+" "+secs)
	}
	if c := s.Status.Config; c != nil && c.State != localapi.ConfigPending {
		head, items := configLine(c)
		if head+items != t.config {
			t.config = head + items
			lines = append(lines, "gate: "+head+" "+secs+items)
		}
	}
	return t, lines
}

// networkFields renders the WAN (the first NIC marked WAN that has
// addresses) as the network line's fields, or "" while it has no IPv4
// address.
func networkFields(nics []localapi.Interface) string {
	for _, n := range nics {
		if !n.WAN || len(n.Addresses) == 0 {
			continue
		}
		addr := ""
		for _, a := range n.Addresses {
			if a.Addr().Is4() {
				addr = a.String()
				break
			}
		}
		if addr == "" {
			return ""
		}
		dns := make([]string, len(n.DNS))
		for i, d := range n.DNS {
			dns[i] = d.String()
		}
		gw := "-"
		if n.Gateway.IsValid() {
			gw = n.Gateway.String()
		}
		return fmt.Sprintf("wan=%s address=%s gateway=%s dns=%s mode=%s default_route=%v",
			n.Name, addr, gw, strings.Join(dns, ","), n.Mode, n.DefaultRoute)
	}
	return ""
}

// configLine renders the status as the console line's head (key=value
// fields) and its items (": error: ...; warning: ...", or "").
func configLine(s *localapi.ConfigStatus) (head, items string) {
	inst := s.InstanceID
	if inst == "" {
		inst = "-"
	}
	head = fmt.Sprintf("config state=%s source=%q instance=%s first_boot=%v errors=%d warnings=%d",
		s.State, s.Source, inst, s.FirstBoot, len(s.Errors), len(s.Warnings))
	var list []string
	for _, e := range s.Errors {
		list = append(list, "error: "+e)
	}
	for _, w := range s.Warnings {
		list = append(list, "warning: "+w)
	}
	if len(list) > 0 {
		items = ": " + strings.Join(list, "; ")
	}
	return head, strings.ReplaceAll(items, "\n", " ")
}
