package nodeconfig

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gatenet/gate/services/names"
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
		if err := CheckHostname(c.Hostname); err != nil {
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
		path := "interfaces." + key(name)
		if err := CheckInterfaceName(name); err != nil {
			is.errorf(path, 0, "%v", err)
		}
		if nic.MAC != "" {
			if other, dup := macs[nic.MAC]; dup {
				is.errorf(path+".mac", 0, "%s is also interfaces.%s's MAC", nic.MAC, key(other))
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
				is.errorf(path+".address", 0, "%s is also interfaces.%s's address", nic.Address.Addr(), key(other))
			} else {
				own[nic.Address.Addr()] = name
			}
		}
		if nic.Gateway.IsValid() {
			gateways = append(gateways, key(name))
			sub := nic.Address.Masked()
			switch {
			case nic.Gateway.Zone() != "":
				is.errorf(path+".gateway", 0, "%s: an address with a zone (%%IFACE) is not taken here", showAddr(nic.Gateway))
			case !nic.Address.IsValid():
				is.errorf(path+".gateway", 0, "a gateway needs a static address (with DHCP it comes from the DHCP server)")
			case !sub.Contains(nic.Gateway):
				is.errorf(path+".gateway", 0, "%s is outside the NIC's subnet %s", showAddr(nic.Gateway), sub)
			case nic.Gateway == nic.Address.Addr():
				is.errorf(path+".gateway", 0, "%s is the NIC's own address", showAddr(nic.Gateway))
			}
		}
		for i, a := range nic.DNS {
			if err := CheckNameserver(a); err != nil {
				is.errorf(index(path+".dns", i), 0, "%v", err)
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
			if err := CheckRequestedAddress(n.Address); err != nil {
				is.errorf(path+".address", 0, "%v", err)
			} else if nic, clash := own[n.Address]; clash {
				is.errorf(path+".address", 0, "%s is interfaces.%s's address, not an overlay address", n.Address, key(nic))
			}
		}
		for _, p := range n.Gateway.Problems() {
			is.errorf(path+".gateway."+p.Field, 0, "%s", p.Msg)
		}
	}
}

// validateJoin checks join, controller and token (ParseJoin); it returns
// the network ID, or "" when join is malformed. A bare network ID needs a
// controller beside it unless this node runs one.
func (n Network) validateJoin(is *issues, path string, localController bool) string {
	j, err := ParseJoin(n.Join, n.Controller, n.Token)
	if err != nil {
		is.errorf(path+"."+problemField(err), 0, "%v", err)
		if problemField(err) == "join" {
			return ""
		}
		j, _ = ParseJoin(n.Join, "", "") // the join itself is good
		return j.NetworkID
	}
	if j.Controller == "" && !localController {
		is.errorf(path+".controller", 0, "needed with a bare network ID (gate://HOST:PORT?pin=sha256:...), unless this node runs the controller")
	}
	return j.NetworkID
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
	if c.DB != "" {
		if err := CheckDB(c.DB); err != nil {
			is.errorf("controller.db", 0, "%v", err)
		}
	}
	if w := c.Web; w != nil {
		switch {
		case w.Listen == "":
			is.errorf("controller.web.listen", 0, "missing: the address of the web console, e.g. \"127.0.0.1:8444\"")
		case checkHostPort(w.Listen, true) != nil:
			is.errorf("controller.web.listen", 0, "%v", checkHostPort(w.Listen, true))
		case w.Listen == c.Listen:
			is.errorf("controller.web.listen", 0, "%s is the controller's own address: the console needs a port of its own", show(w.Listen))
		case w.Cert == "" && w.Key == "" && !w.Loopback():
			is.errorf("controller.web.listen", 0, "%s: without a certificate (cert, key) the web console listens on loopback only (127.0.0.1:PORT, reached through an SSH tunnel): sign-ins must not cross a network in the clear", show(w.Listen))
		}
		for _, f := range []struct{ key, path string }{{"cert", w.Cert}, {"key", w.Key}} {
			if f.path == "" {
				continue
			}
			if err := checkFilePath(f.path); err != nil {
				is.errorf("controller.web."+f.key, 0, "%v", err)
			}
		}
		if (w.Cert == "") != (w.Key == "") {
			is.errorf("controller.web", 0, "give both cert and key, or neither")
		}
	}
}

// checkFilePath checks the path of a file on this node: absolute, clean,
// printable.
func checkFilePath(p string) error {
	switch {
	case len(p) > 4096 || !utf8.ValidString(p) || strings.ContainsFunc(p, func(r rune) bool { return !unicode.IsPrint(r) }):
		return fmt.Errorf("%s is not a file path", show(p))
	case !filepath.IsAbs(p) || filepath.Clean(p) != p:
		return fmt.Errorf("%s: want an absolute, clean path, such as /var/lib/gate/web.crt", show(p))
	}
	return nil
}

func checkHostPort(s string, listen bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%s is not HOST:PORT", show(s))
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p < 1 || port[0] == '+' {
		return fmt.Errorf("%s: port must be 1-65535", show(s))
	}
	switch {
	case host == "" && !listen:
		return fmt.Errorf("%s: members need a host to dial", show(s))
	case host != "" && listen:
		a, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("%s: listen on an IP address of this node, or on all (\":PORT\")", show(s))
		}
		if z := a.Zone(); z != "" && CheckInterfaceName(z) != nil {
			return fmt.Errorf("%s: the zone of an address is an interface name", show(s))
		}
	case host != "":
		if err := checkDialHost(host); err != nil {
			return fmt.Errorf("%s: %w", show(s), err)
		}
	}
	return nil
}

// checkDialHost checks a host that members or this node dial: an IP
// address without a zone, or a DNS name.
func checkDialHost(host string) error {
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return fmt.Errorf("%s: an address with a zone cannot be dialled from elsewhere", show(host))
		}
		return nil
	}
	if !names.DialHost(host) {
		return fmt.Errorf("%s is neither an IP address nor a host name", show(host))
	}
	return nil
}

// CheckInterfaceName reports whether s can name a network interface: what
// Linux accepts for a link name (the kernel's dev_valid_name: 1-15 bytes,
// no '/', ':' or white space, not "." or ".."), and printable ASCII only,
// for a name is written to logs, status, the console and firewall rules.
// It is Gate's one check of an interface name: the document, the kernel
// command line, the agent, the console and the CLI call it, so that all
// say the same.
func CheckInterfaceName(s string) error {
	if !names.Interface(s) {
		return fmt.Errorf("%s is not an interface name (1-15 printable ASCII characters, no spaces, '/' or ':', not \".\" or \"..\")", show(s))
	}
	return nil
}

// MaxHostname is the longest host name a node takes: the kernel's limit
// for its node name (64 bytes), well within a DNS name's 253.
const MaxHostname = names.MaxHostname

// CheckHostname reports whether s can be the node's host name: an RFC 1123
// DNS name (labels of 1-63 letters, digits and inner hyphens, separated by
// dots, no trailing dot) of at most MaxHostname bytes. The document, the
// cloud's metadata and the kernel command line (gate.hostname=) all go
// through it.
func CheckHostname(s string) error {
	if len(s) > MaxHostname {
		return fmt.Errorf("%s is %d characters long; a host name has at most %d", show(s), len(s), MaxHostname)
	}
	if !names.Hostname(s) {
		return fmt.Errorf("%s is not a host name (labels of 1-63 letters, digits and inner '-', separated by '.')", show(s))
	}
	return nil
}

// CheckNameserver reports whether a can be a NIC's DNS server: what
// resolv.conf can name, by names.Nameserver, the rule netcfg writes the
// file by: a plain unicast address, IPv4 or IPv6 without a zone, neither
// unspecified, loopback, multicast nor the IPv4 broadcast address. The
// document, the kernel command line, the console and the CLI call it, so
// that a bad server is refused where it is written, not dropped later.
func CheckNameserver(a netip.Addr) error {
	if _, ok := names.Nameserver(a); !ok {
		return fmt.Errorf("%s is not a usable DNS server (a unicast address without a zone; not loopback, multicast or broadcast)", showAddr(a))
	}
	return nil
}

// ParseNameserver reads a DNS server as the document, the kernel command
// line, the console and the CLI take it: an IP address that
// CheckNameserver accepts.
func ParseNameserver(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		_, err = parseAddr(s) // its message
		return netip.Addr{}, err
	}
	if err := CheckNameserver(a); err != nil {
		return netip.Addr{}, err
	}
	return a.Unmap(), nil
}

// parseAddr reads an IP address (no prefix length, no zone); an
// IPv4-mapped IPv6 address is taken as IPv4.
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil && strings.Contains(s, "/"):
		return netip.Addr{}, fmt.Errorf("%s is not an IP address (no /prefix here)", show(s))
	case err != nil:
		return netip.Addr{}, fmt.Errorf("%s is not an IP address", show(s))
	case a.Zone() != "":
		return netip.Addr{}, fmt.Errorf("%s: an address with a zone (%%IFACE) is not taken here", show(s))
	}
	return a.Unmap(), nil
}

// usable says whether a can be a host's address: no zone, and not
// unspecified, multicast, loopback or the IPv4 broadcast address.
func usable(a netip.Addr) bool {
	return a.IsValid() && a.Zone() == "" && !a.IsUnspecified() && !a.IsMulticast() && !a.IsLoopback() && !(a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}))
}

// CheckHostPrefix checks an interface's static address: a usable host
// address with its prefix length, not its subnet's network or (IPv4)
// broadcast address. The console calls it as the operator types.
func CheckHostPrefix(p netip.Prefix) error { return checkHostPrefix(p) }

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
