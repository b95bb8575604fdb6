package nodeconfig

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decoder turns a node tree into a Config, strictly: every value is
// checked for type and shape here, with its key path; whole-document rules
// are Validate's.
type decoder struct {
	is    issues
	lines map[string]int // key path -> line, for messages after merging
	units []unit         // what the layer sets or removes, in order
	cfg   Config
}

// A unit is what a layer replaces as a whole: a top-level key, or one NIC
// under interfaces ("interfaces.eth0").
type unit struct {
	path   string // as rendered: "interfaces.eth0", `interfaces."eth0.100"`
	nic    string // for a unit under interfaces: the NIC's name as written
	remove bool   // the layer gave null: remove what lower layers set
}

// nicUnit is the unit of NIC name under interfaces.
func nicUnit(name string, remove bool) unit {
	return unit{path: join("interfaces", name), nic: name, remove: remove}
}

func (d *decoder) line(path string, n *yaml.Node) {
	if n != nil && n.Line > 0 {
		d.lines[path] = n.Line
	}
}

// document decodes a whole document. needVersion: documents (files,
// user-data) must say version: 1; a layer built by code need not.
func (d *decoder) document(root *yaml.Node, needVersion bool) {
	d.lines = map[string]int{}
	root = resolve(root)
	if root == nil || isNull(root) {
		if needVersion {
			d.is.errorf("version", 0, "missing: the document is empty (start it with version: %d)", Version)
		}
		return
	}
	if root.Kind != yaml.MappingNode {
		d.is.errorf("", root.Line, "want a mapping of keys at the top, got %s", describe(root))
		return
	}
	sawVersion := false
	for _, p := range pairs(&d.is, "", root) {
		d.lines[p.key] = p.line
		if p.key == "version" {
			sawVersion = true
			if v, ok := d.integer("version", p.val); ok {
				if v != Version {
					d.is.errorf("version", p.line, "%d is not supported (this gate reads version %d)", v, Version)
				}
				d.cfg.Version = v
			}
			continue
		}
		handle, known := map[string]func(string, *yaml.Node){
			"hostname": func(path string, n *yaml.Node) { d.cfg.Hostname, _ = d.str(path, n) },
			"wan":      func(path string, n *yaml.Node) { d.cfg.WAN, _ = d.str(path, n) },
			"interfaces": func(path string, n *yaml.Node) {
				d.interfaces(path, n)
			},
			"networks": func(path string, n *yaml.Node) {
				d.networks(path, n)
			},
			"controller": func(path string, n *yaml.Node) {
				d.cfg.Controller = d.controller(path, n)
			},
		}[p.key]
		if !known {
			d.is.warnf(key(p.key), p.line, "unknown key")
			continue
		}
		if isNull(p.val) {
			d.units = append(d.units, unit{path: p.key, remove: true})
			continue
		}
		if p.key != "interfaces" {
			d.units = append(d.units, unit{path: p.key})
		}
		handle(p.key, p.val)
	}
	if needVersion && !sawVersion {
		d.is.errorf("version", 0, "missing (start the document with version: %d)", Version)
	}
	if d.cfg.Version == 0 {
		d.cfg.Version = Version
	}
}

// fields walks a mapping, warning about unknown keys. A null value is
// taken as absent.
func (d *decoder) fields(path string, n *yaml.Node, handlers map[string]func(path string, n *yaml.Node)) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		d.is.errorf(path, n.Line, "want a mapping, got %s", describe(n))
		return
	}
	for _, p := range pairs(&d.is, path, n) {
		kp := join(path, p.key)
		d.lines[kp] = p.line
		h, ok := handlers[p.key]
		if !ok {
			d.is.warnf(kp, p.line, "unknown key")
			continue
		}
		if isNull(p.val) {
			continue
		}
		h(kp, p.val)
	}
}

// list walks a sequence; a single scalar where a list is wanted is an
// error, not a one-element list, so that typos show.
func (d *decoder) list(path string, n *yaml.Node, each func(path string, n *yaml.Node)) {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.is.errorf(path, n.Line, "want a list, got %s", describe(n))
		return
	}
	for i, e := range n.Content {
		ip := index(path, i)
		d.line(ip, e)
		each(ip, e)
	}
}

func (d *decoder) interfaces(path string, n *yaml.Node) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		d.is.errorf(path, n.Line, "want a mapping of NIC name to settings, got %s", describe(n))
		return
	}
	if d.cfg.Interfaces == nil {
		d.cfg.Interfaces = map[string]Interface{}
	}
	for _, p := range pairs(&d.is, path, n) {
		kp := join(path, p.key)
		d.lines[kp] = p.line
		if isNull(p.val) {
			d.units = append(d.units, nicUnit(p.key, true))
			continue
		}
		d.units = append(d.units, nicUnit(p.key, false))
		var nic Interface
		d.fields(kp, p.val, map[string]func(string, *yaml.Node){
			"mac":     func(p string, n *yaml.Node) { nic.MAC = d.mac(p, n) },
			"dhcp":    func(p string, n *yaml.Node) { nic.DHCP, _ = d.boolean(p, n) },
			"address": func(p string, n *yaml.Node) { nic.Address = d.hostPrefix(p, n) },
			"gateway": func(p string, n *yaml.Node) { nic.Gateway = d.addr(p, n) },
			"dns": func(p string, n *yaml.Node) {
				d.list(p, n, func(p string, n *yaml.Node) {
					if a := d.nameserver(p, n); a.IsValid() {
						nic.DNS = append(nic.DNS, a)
					}
				})
			},
		})
		d.cfg.Interfaces[p.key] = nic
	}
}

func (d *decoder) networks(path string, n *yaml.Node) {
	d.cfg.Networks = []Network{}
	d.list(path, n, func(path string, n *yaml.Node) {
		var nw Network
		d.fields(path, n, map[string]func(string, *yaml.Node){
			"join":       func(p string, n *yaml.Node) { nw.Join, _ = d.str(p, n) },
			"controller": func(p string, n *yaml.Node) { nw.Controller, _ = d.str(p, n) },
			"token":      func(p string, n *yaml.Node) { nw.Token, _ = d.str(p, n) },
			"address":    func(p string, n *yaml.Node) { nw.Address = d.addr(p, n) },
			"gateway":    func(p string, n *yaml.Node) { nw.Gateway = d.gateway(p, n) },
		})
		d.cfg.Networks = append(d.cfg.Networks, nw)
	})
}

func (d *decoder) gateway(path string, n *yaml.Node) *Gateway {
	g := &Gateway{}
	d.fields(path, n, map[string]func(string, *yaml.Node){
		"serve": func(p string, n *yaml.Node) {
			d.list(p, n, func(p string, n *yaml.Node) {
				if c := d.cidr(p, n); c.IsValid() {
					g.Serve = append(g.Serve, c)
				}
			})
		},
		"lan": func(p string, n *yaml.Node) { g.LAN, _ = d.str(p, n) },
		"aws_route_tables": func(p string, n *yaml.Node) {
			d.list(p, n, func(p string, n *yaml.Node) {
				if s, ok := d.str(p, n); ok {
					g.AWSRouteTables = append(g.AWSRouteTables, s)
				}
			})
		},
		"masquerade": func(p string, n *yaml.Node) {
			d.fields(p, n, map[string]func(string, *yaml.Node){
				"to_lan":      func(p string, n *yaml.Node) { g.MasqueradeLAN, _ = d.boolean(p, n) },
				"to_internet": func(p string, n *yaml.Node) { g.MasqueradeInternet, _ = d.boolean(p, n) },
			})
		},
	})
	return g
}

func (d *decoder) controller(path string, n *yaml.Node) *Controller {
	c := &Controller{}
	d.fields(path, n, map[string]func(string, *yaml.Node){
		"listen":    func(p string, n *yaml.Node) { c.Listen, _ = d.str(p, n) },
		"advertise": func(p string, n *yaml.Node) { c.Advertise, _ = d.str(p, n) },
		"db":        func(p string, n *yaml.Node) { c.DB = d.secret(p, n, "a postgres:// URL") },
		"web": func(p string, n *yaml.Node) {
			w := &ControllerWeb{}
			d.fields(p, n, map[string]func(string, *yaml.Node){
				"listen": func(p string, n *yaml.Node) { w.Listen, _ = d.str(p, n) },
				"cert":   func(p string, n *yaml.Node) { w.Cert, _ = d.str(p, n) },
				"key":    func(p string, n *yaml.Node) { w.Key, _ = d.str(p, n) },
			})
			c.Web = w
		},
	})
	return c
}

// secret reads a string that may hold a credential: unlike str, what is
// found instead of a string is described by its kind only, never quoted.
func (d *decoder) secret(path string, n *yaml.Node, want string) string {
	n = resolve(n)
	switch {
	case n.Kind == yaml.MappingNode:
		d.is.errorf(path, n.Line, "want %s, got a mapping", want)
	case n.Kind == yaml.SequenceNode:
		d.is.errorf(path, n.Line, "want %s, got a list", want)
	case n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str":
		d.is.errorf(path, n.Line, "want %s, got a value that is not a string (quote it; not shown: it may hold a password)", want)
	default:
		return n.Value
	}
	return ""
}

// scalar returns a scalar node, or reports what was found instead.
func (d *decoder) scalar(path string, n *yaml.Node, want string) (*yaml.Node, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode {
		d.is.errorf(path, n.Line, "want %s, got %s", want, describe(n))
		return nil, false
	}
	return n, true
}

func (d *decoder) str(path string, n *yaml.Node) (string, bool) {
	s, ok := d.scalar(path, n, "a string")
	if !ok {
		return "", false
	}
	if s.ShortTag() != "!!str" {
		d.is.errorf(path, s.Line, "want a string, got %s (quote it)", describe(s))
		return "", false
	}
	return s.Value, true
}

func (d *decoder) boolean(path string, n *yaml.Node) (bool, bool) {
	s, ok := d.scalar(path, n, "true or false")
	if !ok {
		return false, false
	}
	if s.ShortTag() != "!!bool" {
		d.is.errorf(path, s.Line, "want true or false, got %s", describe(s))
		return false, false
	}
	v, err := strconv.ParseBool(strings.ToLower(s.Value))
	if err != nil {
		d.is.errorf(path, s.Line, "want true or false, got %s", describe(s))
	}
	return v, err == nil
}

func (d *decoder) integer(path string, n *yaml.Node) (int, bool) {
	s, ok := d.scalar(path, n, "a number")
	if !ok {
		return 0, false
	}
	v, err := strconv.Atoi(s.Value)
	if s.ShortTag() != "!!int" || err != nil {
		d.is.errorf(path, s.Line, "want a whole number, got %s", describe(s))
		return 0, false
	}
	return v, true
}

// addr reads an IP address (no prefix length, no zone).
func (d *decoder) addr(path string, n *yaml.Node) netip.Addr {
	s, ok := d.str(path, n)
	if !ok {
		return netip.Addr{}
	}
	a, err := parseAddr(s)
	if err != nil {
		d.is.errorf(path, n.Line, "%v", err)
		return netip.Addr{}
	}
	return a
}

// nameserver reads a DNS server (ParseNameserver).
func (d *decoder) nameserver(path string, n *yaml.Node) netip.Addr {
	s, ok := d.str(path, n)
	if !ok {
		return netip.Addr{}
	}
	a, err := ParseNameserver(s)
	if err != nil {
		d.is.errorf(path, n.Line, "%v", err)
		return netip.Addr{}
	}
	return a
}

// cidr reads a network prefix; Validate checks that it is canonical.
func (d *decoder) cidr(path string, n *yaml.Node) netip.Prefix {
	s, ok := d.str(path, n)
	if !ok {
		return netip.Prefix{}
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		d.is.errorf(path, n.Line, "%s is not a CIDR", show(s))
		return netip.Prefix{}
	}
	return p
}

// hostPrefix reads an interface address: host address and prefix length.
func (d *decoder) hostPrefix(path string, n *yaml.Node) netip.Prefix {
	s, ok := d.str(path, n)
	if !ok {
		return netip.Prefix{}
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		if a, aerr := netip.ParseAddr(s); aerr == nil {
			d.is.errorf(path, n.Line, "%s has no prefix length (write e.g. %s/24)", show(s), showAddr(a))
		} else {
			d.is.errorf(path, n.Line, "%s is not a CIDR", show(s))
		}
		return netip.Prefix{}
	}
	return p
}

func (d *decoder) mac(path string, n *yaml.Node) string {
	s, ok := d.str(path, n)
	if !ok {
		return ""
	}
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		d.is.errorf(path, n.Line, "%s is not a MAC address (want e.g. 02:00:00:00:00:01)", show(s))
		return ""
	}
	return hw.String()
}
