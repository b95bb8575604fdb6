package nodeconfig

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/gatenet/gate/services/control"
)

// Validate checks the whole document. It returns nil or an *Error listing
// every problem with its key path (and the warnings found beside them).
func (c *Config) Validate() error {
	var is issues
	c.validate(&is)
	return is.err("configuration")
}

func (c *Config) validate(is *issues) {
	switch c.Version {
	case Version:
	case 0:
		is.errorf("version", 0, "missing (this document needs version: %d)", Version)
	default:
		is.errorf("version", 0, "%d is not supported (this gate reads version %d)", c.Version, Version)
	}
	if c.Hostname != "" {
		if err := checkHostname(c.Hostname); err != nil {
			is.errorf("hostname", 0, "%v", err)
		}
	}
	if c.WAN != "" {
		if err := CheckInterfaceName(c.WAN); err != nil {
			is.errorf("wan", 0, "%v", err)
		}
	}
	own := c.validateInterfaces(is)
	c.validateNetworks(is, own)
	if c.Controller != nil {
		c.Controller.validate(is)
	}
}

// validateInterfaces checks the NICs and returns their static addresses.
func (c *Config) validateInterfaces(is *issues) map[netip.Addr]string {
	own := map[netip.Addr]string{}
	macs := map[string]string{}
	var gateways []string
	for _, name := range c.InterfaceNames() {
		nic := c.Interfaces[name]
		path := "interfaces." + name
		if err := CheckInterfaceName(name); err != nil {
			is.errorf(path, 0, "%v", err)
		}
		if nic.MAC != "" {
			if other, dup := macs[nic.MAC]; dup {
				is.errorf(path+".mac", 0, "%s is also interfaces.%s's MAC", nic.MAC, other)
			}
			macs[nic.MAC] = name
		}
		switch {
		case nic.DHCP && nic.Address.IsValid():
			is.errorf(path, 0, "dhcp: true and a static address exclude each other; keep one")
		case !nic.DHCP && !nic.Address.IsValid():
			is.errorf(path, 0, "set dhcp: true or a static address")
		}
		if nic.Address.IsValid() {
			if err := checkHostPrefix(nic.Address); err != nil {
				is.errorf(path+".address", 0, "%v", err)
			} else if other, dup := own[nic.Address.Addr()]; dup {
				is.errorf(path+".address", 0, "%s is also interfaces.%s's address", nic.Address.Addr(), other)
			} else {
				own[nic.Address.Addr()] = name
			}
		}
		if nic.Gateway.IsValid() {
			gateways = append(gateways, name)
			sub := nic.Address.Masked()
			switch {
			case !nic.Address.IsValid():
				is.errorf(path+".gateway", 0, "a gateway needs a static address (with DHCP it comes from the DHCP server)")
			case !sub.Contains(nic.Gateway):
				is.errorf(path+".gateway", 0, "%s is outside the NIC's subnet %s", nic.Gateway, sub)
			case nic.Gateway == nic.Address.Addr():
				is.errorf(path+".gateway", 0, "%s is the NIC's own address", nic.Gateway)
			}
		}
		for i, a := range nic.DNS {
			if !usable(a) {
				is.errorf(index(path+".dns", i), 0, "%s is not a usable server address", a)
			}
		}
	}
	if len(gateways) > 1 {
		is.warnf("interfaces", 0, "%s all have a gateway; the default route goes via the WAN NIC's", strings.Join(gateways, ", "))
	}
	return own
}

func (c *Config) validateNetworks(is *issues, own map[netip.Addr]string) {
	ids := map[string]int{}
	for i, n := range c.Networks {
		path := index("networks", i)
		id := n.validateJoin(is, path, c.Controller != nil)
		if id != "" {
			if j, dup := ids[id]; dup {
				is.errorf(path+".join", 0, "network %s is also networks[%d]", id, j)
			}
			ids[id] = i
		}
		if n.Address.IsValid() {
			if !usable(n.Address) {
				is.errorf(path+".address", 0, "%s is not a usable host address", n.Address)
			} else if nic, clash := own[n.Address]; clash {
				is.errorf(path+".address", 0, "%s is interfaces.%s's address, not an overlay address", n.Address, nic)
			}
		}
		if g := n.Gateway; g != nil {
			gp := path + ".gateway"
			if len(g.Serve) == 0 {
				is.errorf(gp+".serve", 0, "a gateway serves at least one CIDR (the local networks reached through it)")
			}
			for k, p := range g.Serve {
				if p != p.Masked() {
					is.errorf(index(gp+".serve", k), 0, "%s is not a network address (did you mean %s?)", p, p.Masked())
					continue
				}
				for m := range k {
					if q := g.Serve[m]; q == q.Masked() && q.Overlaps(p) {
						is.errorf(index(gp+".serve", k), 0, "%s overlaps serve[%d] %s", p, m, q)
						break
					}
				}
			}
			if g.LAN != "" {
				if err := CheckInterfaceName(g.LAN); err != nil {
					is.errorf(gp+".lan", 0, "%v", err)
				}
			}
		}
	}
}

// validateJoin checks join, controller and token; it returns the network
// ID, or "" when join is malformed.
func (n Network) validateJoin(is *issues, path string, localController bool) string {
	var id string
	switch {
	case n.Join == "":
		is.errorf(path+".join", 0, "missing: a join string (gate://HOST:PORT/NETWORKID?pin=...) or a network ID")
		return ""
	case strings.Contains(n.Join, "://"):
		j, err := control.ParseJoinString(n.Join)
		if err != nil {
			is.errorf(path+".join", 0, "%v", err)
			return ""
		}
		id = j.NetworkID
		if n.Controller != "" {
			is.errorf(path+".controller", 0, "the join string already names the controller; drop one")
		}
		if n.Token != "" && j.Token != "" {
			is.errorf(path+".token", 0, "the join string already carries a token; drop one")
		}
	default:
		id = control.NormalizeID(n.Join)
		if err := control.CheckNetworkID(id); err != nil {
			is.errorf(path+".join", 0, "%q is neither a join string (gate://HOST:PORT/NETWORKID?pin=...) nor a network ID (16 hex digits)", n.Join)
			return ""
		}
		if n.Controller == "" && !localController {
			is.errorf(path+".controller", 0, "needed with a bare network ID (gate://HOST:PORT?pin=sha256:...), unless this node runs the controller")
		}
	}
	if n.Controller != "" {
		if _, err := control.ParseControllerAddress(n.Controller); err != nil {
			is.errorf(path+".controller", 0, "%s", strings.Replace(err.Error(), "join string", "controller address", 1))
		}
	}
	if n.Token != "" {
		if err := control.CheckTokenSecret(n.Token); err != nil {
			is.errorf(path+".token", 0, "%v", err)
		}
	}
	return id
}

func (c *Controller) validate(is *issues) {
	if c.Listen == "" {
		is.errorf("controller.listen", 0, "missing: the address to listen on, e.g. \":8443\"")
	} else if err := checkHostPort(c.Listen, true); err != nil {
		is.errorf("controller.listen", 0, "%v", err)
	}
	if c.Advertise != "" {
		if err := checkHostPort(c.Advertise, false); err != nil {
			is.errorf("controller.advertise", 0, "%v", err)
		}
	}
}

func checkHostPort(s string, listen bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not HOST:PORT", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: port must be 1-65535", s)
	}
	switch {
	case host == "" && !listen:
		return fmt.Errorf("%q: members need a host to dial", s)
	case host != "" && listen:
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("%q: listen on an IP address of this node, or on all (\":PORT\")", s)
		}
	case host != "":
		if _, err := netip.ParseAddr(host); err != nil && checkHostname(host) != nil {
			return fmt.Errorf("%q: %q is neither an IP address nor a host name", s, host)
		}
	}
	return nil
}

// CheckInterfaceName reports whether s can name a Linux network interface
// (the kernel's dev_valid_name: 1-15 bytes, no '/', ':' or white space,
// not "." or "..").
func CheckInterfaceName(s string) error {
	if s == "" || len(s) > 15 || s == "." || s == ".." || strings.ContainsAny(s, "/: \t\n\r\x00") {
		return fmt.Errorf("%q is not an interface name (1-15 characters, no '/', ':' or spaces)", s)
	}
	return nil
}

// checkHostname accepts RFC 1123 host names of at most 64 bytes (the
// kernel's limit for the node name).
func checkHostname(s string) error {
	if len(s) > 64 {
		return fmt.Errorf("%q is longer than 64 characters", s)
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not a host name (labels of letters, digits and inner '-', separated by '.')", s)
		}
		for _, r := range label {
			if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-') {
				return fmt.Errorf("%q is not a host name (labels of letters, digits and inner '-', separated by '.')", s)
			}
		}
	}
	return nil
}

func usable(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast() && !a.IsLoopback() && !(a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}))
}

// checkHostPrefix checks an interface address: a usable host, not its
// subnet's network or (IPv4) broadcast address.
func checkHostPrefix(p netip.Prefix) error {
	a := p.Addr()
	if !usable(a) || a.IsLinkLocalUnicast() {
		return fmt.Errorf("%s is not a usable host address", p)
	}
	if a.Is4() && p.Bits() < 31 {
		if a == p.Masked().Addr() {
			return fmt.Errorf("%s is the subnet's network address, not a host address", p)
		}
		b := a.As4()
		m := net.CIDRMask(p.Bits(), 32)
		for i := range b {
			b[i] |= ^m[i]
		}
		if a == netip.AddrFrom4(b) {
			return fmt.Errorf("%s is the subnet's broadcast address, not a host address", p)
		}
	}
	return nil
}
