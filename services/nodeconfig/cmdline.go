package nodeconfig

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParseCmdline reads the kernel command line's overrides, a layer of
// source SourceCmdline, for recovery when a bad configuration locked the
// node out. Parameters other than gate.* are ignored; an unknown gate.*
// parameter is a warning; a malformed value is an error (the whole layer is
// then refused, so a typo cannot half-apply). The syntax:
//
//	gate.hostname=NAME                 hostname
//	gate.wan=IFACE                     the WAN NIC
//	gate.iface.IFACE=dhcp              NIC IFACE by DHCP
//	gate.iface.IFACE=ADDR/LEN[,GW[,DNS...]]
//	                                   NIC IFACE static: address, gateway, DNS servers
//	gate.iface.IFACE=default           drop IFACE's settings from the other layers
//	gate.join=JOINSTRING               networks: exactly this one network
//	gate.join=none                     networks: none (leave every network)
//	gate.controller=LISTEN             run a controller listening on LISTEN (":8443")
//	gate.controller=off                run no controller
//
// Each replaces the whole unit, as a layer does: gate.iface.eth0=dhcp
// replaces every setting of eth0. A value may be double-quoted, as the
// kernel allows. Given twice, the last one wins (with a warning).
func ParseCmdline(cmdline string) (*Layer, error) {
	l := &Layer{Source: SourceCmdline, lines: map[string]int{}}
	var is issues
	seen := map[string]bool{}
	for _, arg := range splitCmdline(cmdline) {
		key, val, _ := strings.Cut(strings.ReplaceAll(arg, `"`, ""), "=")
		if !strings.HasPrefix(key, "gate.") {
			continue
		}
		path := dottedKey(key) // the key as messages show it
		if seen[key] {
			is.warnf(path, 0, "given twice; the last one wins")
		}
		seen[key] = true
		switch {
		case key == "gate.hostname":
			if err := CheckHostname(val); err != nil {
				is.errorf(path, 0, "%v", err)
				continue
			}
			l.Config.Hostname = val
			l.set(unit{path: "hostname"})
		case key == "gate.wan":
			if err := CheckInterfaceName(val); err != nil {
				is.errorf(path, 0, "%v", err)
				continue
			}
			l.Config.WAN = val
			l.set(unit{path: "wan"})
		case strings.HasPrefix(key, "gate.iface."):
			name := strings.TrimPrefix(key, "gate.iface.")
			if err := CheckInterfaceName(name); err != nil {
				is.errorf(path, 0, "%v", err)
				continue
			}
			if val == "default" {
				l.set(nicUnit(name, true))
				continue
			}
			nic, err := parseIfaceArg(val)
			if err != nil {
				is.errorf(path, 0, "%v", err)
				continue
			}
			if l.Config.Interfaces == nil {
				l.Config.Interfaces = map[string]Interface{}
			}
			l.Config.Interfaces[name] = nic
			l.set(nicUnit(name, false))
		case key == "gate.join":
			l.Config.Networks = []Network{}
			if val != "none" {
				l.Config.Networks = []Network{{Join: val}}
			}
			l.set(unit{path: "networks"})
		case key == "gate.controller":
			if val == "off" {
				l.Config.Controller = nil
				l.set(unit{path: "controller", remove: true})
				continue
			}
			l.Config.Controller = &Controller{Listen: val}
			l.set(unit{path: "controller"})
		default:
			is.warnf(path, 0, "unknown parameter (see gate.hostname, gate.wan, gate.iface.IFACE, gate.join, gate.controller)")
		}
	}
	l.Warnings = is.warns
	if err := is.err("kernel command line"); err != nil {
		return nil, err
	}
	return l, nil
}

// set records a unit, replacing an earlier mention of the same one.
func (l *Layer) set(u unit) {
	for i, v := range l.units {
		if v.path == u.path {
			l.units = append(l.units[:i], l.units[i+1:]...)
			break
		}
	}
	l.units = append(l.units, u)
}

// parseIfaceArg reads "dhcp" or "ADDR/LEN[,GW[,DNS...]]": addresses as the
// document takes them (no zones); Validate checks the rest.
func parseIfaceArg(s string) (Interface, error) {
	if s == "dhcp" {
		return Interface{DHCP: true}, nil
	}
	parts := strings.Split(s, ",")
	var nic Interface
	p, err := netip.ParsePrefix(parts[0])
	if err != nil {
		return nic, fmt.Errorf("%s: want dhcp, default, or ADDRESS/LEN[,GATEWAY[,DNS...]]", show(s))
	}
	nic.Address = p
	if len(parts) > 1 && parts[1] != "" {
		if nic.Gateway, err = parseAddr(parts[1]); err != nil {
			return nic, fmt.Errorf("gateway %w", err)
		}
	}
	for _, d := range parts[min(2, len(parts)):] {
		a, err := ParseNameserver(d)
		if err != nil {
			return nic, fmt.Errorf("DNS server %w", err)
		}
		nic.DNS = append(nic.DNS, a)
	}
	return nic, nil
}

// splitCmdline splits a kernel command line at white space outside double
// quotes, as the kernel's next_arg does.
func splitCmdline(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, any := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			cur.WriteRune(r)
			any = true
		case !quoted && (r == ' ' || r == '\t' || r == '\n' || r == '\r'):
			if any {
				out = append(out, cur.String())
				cur.Reset()
				any = false
			}
		default:
			cur.WriteRune(r)
			any = true
		}
	}
	if any {
		out = append(out, cur.String())
	}
	return out
}
