package cloud

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gatenet/gate/services/nodeconfig"
)

// ParseNetworkConfig reads a NoCloud network-config file, cloud-init's
// network configuration version 1 or 2 (netplan's schema), with or without
// a top-level network: key, and maps the subset a gateway needs onto
// nodeconfig interfaces: DHCP or one static IPv4 address per NIC, its
// gateway, and its DNS servers. What it cannot express (bonds, bridges,
// VLANs, IPv6, further addresses, routes other than the default) is noted
// and ignored, not refused: the NIC still comes up.
//
// A NIC is named by v1's name or v2's set-name, match.name or ID; a MAC
// (v1 mac_address, v2 match.macaddress) is kept so the NIC is found by it.
func ParseNetworkConfig(data []byte) (map[string]nodeconfig.Interface, []string, error) {
	if len(data) > nodeconfig.MaxSize {
		return nil, nil, fmt.Errorf("network-config is %d bytes; the limit is %d", len(data), nodeconfig.MaxSize)
	}
	var top struct {
		Network yaml.Node `yaml:"network"`
		Version int       `yaml:"version"`
	}
	if err := yaml.Unmarshal(data, &top); err != nil {
		return nil, nil, cleanErr(fmt.Errorf("network-config: %w", err))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, cleanErr(fmt.Errorf("network-config: %w", err))
	}
	node := &doc
	if top.Network.Kind != 0 && top.Version == 0 {
		node = &top.Network
		if err := node.Decode(&top); err != nil {
			return nil, nil, cleanErr(fmt.Errorf("network-config: network: %w", err))
		}
	}
	var (
		nics  map[string]nodeconfig.Interface
		notes []string
		err   error
	)
	switch top.Version {
	case 1:
		var v1 netV1
		if err := node.Decode(&v1); err != nil {
			return nil, nil, cleanErr(fmt.Errorf("network-config version 1: %w", err))
		}
		nics, notes, err = v1.interfaces()
	case 2:
		var v2 netV2
		if err := node.Decode(&v2); err != nil {
			return nil, nil, cleanErr(fmt.Errorf("network-config version 2: %w", err))
		}
		nics, notes, err = v2.interfaces()
	case 0:
		return nil, nil, errors.New("network-config: missing version: (1 or 2)")
	default:
		return nil, nil, fmt.Errorf("network-config: version %d is not supported (1 or 2)", top.Version)
	}
	if err != nil {
		return nil, nil, cleanErr(fmt.Errorf("network-config version %d: %w", top.Version, err))
	}
	c := &nodeconfig.Config{Version: nodeconfig.Version, Interfaces: nics}
	if err := c.Validate(); err != nil {
		return nil, nil, cleanErr(fmt.Errorf("network-config version %d: %w", top.Version, err))
	}
	return nics, boundNotes(notes), nil
}

// checkNICName refuses what cannot name a NIC (nodeconfig's one rule, with
// the key it was given at).
func checkNICName(path, name string) error {
	if err := nodeconfig.CheckInterfaceName(name); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// yesNo is a YAML 1.1 boolean as netplan reads it: true/false, yes/no,
// on/off (go-yaml reads YAML 1.2, where yes is a string).
type yesNo bool

func (b *yesNo) UnmarshalYAML(n *yaml.Node) error {
	switch strings.ToLower(n.Value) {
	case "true", "yes", "on", "y":
		*b = true
	case "false", "no", "off", "n":
		*b = false
	default:
		return fmt.Errorf("line %d: want true or false, got %q", n.Line, n.Value)
	}
	return nil
}

// stringList is a list of strings that may be written as one string.
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = strings.Fields(strings.ReplaceAll(n.Value, ",", " "))
		return nil
	}
	var s []string
	err := n.Decode(&s)
	*l = s
	return err
}

type netV1 struct {
	Config []struct {
		Type    string     `yaml:"type"`
		Name    string     `yaml:"name"`
		MAC     string     `yaml:"mac_address"`
		Address stringList `yaml:"address"` // type nameserver
		Subnets []struct {
			Type    string     `yaml:"type"`
			Address string     `yaml:"address"`
			Netmask string     `yaml:"netmask"`
			Gateway string     `yaml:"gateway"`
			DNS     stringList `yaml:"dns_nameservers"`
		} `yaml:"subnets"`
	} `yaml:"config"`
}

func (v netV1) interfaces() (map[string]nodeconfig.Interface, []string, error) {
	nics := map[string]nodeconfig.Interface{}
	var notes []string
	var globalDNS []netip.Addr
	for i, e := range v.Config {
		path := fmt.Sprintf("config[%d]", i)
		switch e.Type {
		case "physical":
		case "nameserver":
			for k, s := range e.Address {
				a, err := netip.ParseAddr(s)
				if err != nil {
					return nil, nil, fmt.Errorf("%s.address[%d]: %q is not an IP address", path, k, s)
				}
				globalDNS = append(globalDNS, a)
			}
			continue
		default:
			notes = append(notes, fmt.Sprintf("network-config: %s: type %q ignored (Gate configures physical NICs)", path, e.Type))
			continue
		}
		if e.Name == "" {
			return nil, nil, fmt.Errorf("%s: a physical entry needs a name", path)
		}
		if err := checkNICName(path+".name", e.Name); err != nil {
			return nil, nil, err
		}
		if _, dup := nics[e.Name]; !dup && len(nics) == maxNICs {
			return nil, nil, fmt.Errorf("%s: more than %d NICs", path, maxNICs)
		}
		var nic nodeconfig.Interface
		if e.MAC != "" {
			mac, err := normalMAC(e.MAC)
			if err != nil {
				return nil, nil, fmt.Errorf("%s.mac_address: %w", path, err)
			}
			nic.MAC = mac
		}
		for k, s := range e.Subnets {
			sp := fmt.Sprintf("%s.subnets[%d]", path, k)
			switch s.Type {
			case "dhcp", "dhcp4":
				nic.DHCP = true
			case "static":
				if nic.Address.IsValid() {
					notes = append(notes, fmt.Sprintf("network-config: %s: a further address ignored (Gate takes one per NIC)", sp))
					continue
				}
				p, err := hostPrefix(s.Address, s.Netmask)
				if err != nil {
					return nil, nil, fmt.Errorf("%s.address: %w", sp, err)
				}
				if !p.Addr().Is4() {
					notes = append(notes, fmt.Sprintf("network-config: %s: IPv6 ignored", sp))
					continue
				}
				nic.Address = p
				if s.Gateway != "" {
					if nic.Gateway, err = netip.ParseAddr(s.Gateway); err != nil {
						return nil, nil, fmt.Errorf("%s.gateway: %q is not an IP address", sp, s.Gateway)
					}
				}
				if nic.DNS, err = addrs(sp+".dns_nameservers", s.DNS); err != nil {
					return nil, nil, err
				}
			case "static6", "dhcp6", "ipv6_dhcpv6-stateful", "ipv6_dhcpv6-stateless", "ipv6_slaac":
				notes = append(notes, fmt.Sprintf("network-config: %s: IPv6 (%s) ignored", sp, s.Type))
			case "manual":
			default:
				return nil, nil, fmt.Errorf("%s.type: unknown subnet type %q", sp, s.Type)
			}
		}
		nics[e.Name] = settle(e.Name, nic, &notes)
	}
	applyGlobalDNS(nics, globalDNS, &notes)
	return nics, notes, nil
}

type netV2 struct {
	Ethernets map[string]struct {
		Match struct {
			MAC  string `yaml:"macaddress"`
			Name string `yaml:"name"`
		} `yaml:"match"`
		SetName   string     `yaml:"set-name"`
		DHCP4     yesNo      `yaml:"dhcp4"`
		Addresses stringList `yaml:"addresses"`
		Gateway4  string     `yaml:"gateway4"`
		Routes    []struct {
			To  string `yaml:"to"`
			Via string `yaml:"via"`
		} `yaml:"routes"`
		Nameservers struct {
			Addresses stringList `yaml:"addresses"`
		} `yaml:"nameservers"`
	} `yaml:"ethernets"`
	Bonds   map[string]any `yaml:"bonds"`
	Bridges map[string]any `yaml:"bridges"`
	VLANs   map[string]any `yaml:"vlans"`
	Wifis   map[string]any `yaml:"wifis"`
}

func (v netV2) interfaces() (map[string]nodeconfig.Interface, []string, error) {
	nics := map[string]nodeconfig.Interface{}
	var notes []string
	for kind, m := range map[string]map[string]any{"bonds": v.Bonds, "bridges": v.Bridges, "vlans": v.VLANs, "wifis": v.Wifis} {
		if len(m) > 0 {
			notes = append(notes, fmt.Sprintf("network-config: %s ignored (Gate configures physical NICs)", kind))
		}
	}
	if len(v.Ethernets) > maxNICs {
		return nil, nil, fmt.Errorf("ethernets: more than %d NICs", maxNICs)
	}
	for _, id := range sortedKeys(v.Ethernets) {
		e := v.Ethernets[id]
		path := "ethernets." + show(id)
		name := id
		switch {
		case e.SetName != "":
			name = e.SetName
		case e.Match.Name != "" && !strings.ContainsAny(e.Match.Name, "*?["):
			name = e.Match.Name
		}
		if err := checkNICName(path, name); err != nil {
			return nil, nil, err
		}
		var nic nodeconfig.Interface
		nic.DHCP = bool(e.DHCP4)
		if e.Match.MAC != "" {
			mac, err := normalMAC(e.Match.MAC)
			if err != nil {
				return nil, nil, fmt.Errorf("%s.match.macaddress: %w", path, err)
			}
			nic.MAC = mac
		}
		for k, s := range e.Addresses {
			addr, mask, _ := strings.Cut(s, "/")
			if strings.Contains(mask, ".") { // 192.168.1.10/255.255.255.0, as cloud-init's own example writes it
				s = addr
			} else {
				mask = ""
			}
			p, err := hostPrefix(s, mask)
			if err != nil {
				return nil, nil, fmt.Errorf("%s.addresses[%d]: %w", path, k, err)
			}
			switch {
			case !p.Addr().Is4():
				notes = append(notes, fmt.Sprintf("network-config: %s.addresses[%d]: IPv6 ignored", path, k))
			case nic.Address.IsValid():
				notes = append(notes, fmt.Sprintf("network-config: %s.addresses[%d]: a further address ignored (Gate takes one per NIC)", path, k))
			default:
				nic.Address = p
			}
		}
		gw := e.Gateway4
		for k, r := range e.Routes {
			if r.To == "default" || r.To == "0.0.0.0/0" {
				if gw == "" {
					gw = r.Via
				}
				continue
			}
			notes = append(notes, fmt.Sprintf("network-config: %s.routes[%d]: route to %s ignored (Gate sets the default route only)", path, k, show(r.To)))
		}
		if gw != "" && nic.Address.IsValid() {
			a, err := netip.ParseAddr(gw)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: gateway %q is not an IP address", path, gw)
			}
			nic.Gateway = a
		}
		var err error
		if nic.DNS, err = addrs(path+".nameservers.addresses", e.Nameservers.Addresses); err != nil {
			return nil, nil, err
		}
		if _, dup := nics[name]; dup {
			return nil, nil, fmt.Errorf("%s: NIC %s configured twice", path, name)
		}
		nics[name] = settle(name, nic, &notes)
	}
	return nics, notes, nil
}

// settle makes a NIC a valid nodeconfig interface: a static address wins
// over DHCP (cloud-init would configure both; Gate does one), and a NIC
// with neither gets DHCP.
func settle(name string, nic nodeconfig.Interface, notes *[]string) nodeconfig.Interface {
	switch {
	case nic.DHCP && nic.Address.IsValid():
		*notes = append(*notes, fmt.Sprintf("network-config: %s: both DHCP and a static address; Gate uses the static address", name))
		nic.DHCP = false
	case !nic.DHCP && !nic.Address.IsValid():
		*notes = append(*notes, fmt.Sprintf("network-config: %s: no IPv4 configuration; Gate uses DHCP", name))
		nic.DHCP, nic.Gateway = true, netip.Addr{}
	}
	return nic
}

func applyGlobalDNS(nics map[string]nodeconfig.Interface, dns []netip.Addr, notes *[]string) {
	if len(dns) == 0 {
		return
	}
	for _, name := range sortedKeys(nics) {
		if nic := nics[name]; !nic.DHCP && len(nic.DNS) == 0 {
			nic.DNS = dns
			nics[name] = nic
		}
	}
	*notes = append(*notes, "network-config: nameserver entry applied to the static NICs without DNS servers")
}

// hostPrefix reads "ADDR/LEN", or "ADDR" with a dotted netmask.
func hostPrefix(addr, netmask string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(addr); err == nil {
		return p, nil
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", addr)
	}
	if netmask == "" {
		return netip.Prefix{}, fmt.Errorf("%q has no prefix length or netmask", addr)
	}
	m, err := netip.ParseAddr(netmask)
	if err != nil || !m.Is4() {
		return netip.Prefix{}, fmt.Errorf("netmask %q is not an IPv4 netmask", netmask)
	}
	b := m.As4()
	ones, bits := net.IPMask(b[:]).Size()
	if bits == 0 {
		return netip.Prefix{}, fmt.Errorf("netmask %q is not contiguous", netmask)
	}
	return netip.PrefixFrom(a, ones), nil
}

func addrs(path string, list []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for i, s := range list {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %q is not an IP address", path, i, s)
		}
		out = append(out, a)
	}
	return out, nil
}

func normalMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("%q is not a MAC address", s)
	}
	return hw.String(), nil
}
