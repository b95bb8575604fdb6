package nodeconfig

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/localapi"
)

// Version is the document version this package reads and writes.
const Version = 1

// MaxSize is the largest document Parse accepts (user-data is at most 64
// KiB on DigitalOcean and 16 KiB on AWS; a preseed is no bigger).
const MaxSize = 1 << 20

// Config is the node's desired configuration. The zero value is an empty
// document; Validate says whether a Config is complete and consistent.
type Config struct {
	Version    int                  `json:"version"`
	Hostname   string               `json:"hostname,omitempty"`
	WAN        string               `json:"wan,omitempty"` // NIC facing the internet; "" = the default-route NIC
	Interfaces map[string]Interface `json:"interfaces,omitempty"`
	Networks   []Network            `json:"networks,omitempty"`
	Controller *Controller          `json:"controller,omitempty"` // run a controller here
}

// Interface is one NIC's settings: DHCP, or a static address.
type Interface struct {
	// MAC, when set, finds the NIC by hardware address (lower case,
	// colon-separated); the key in Config.Interfaces is then only the
	// name Gate uses for it. Without MAC the key is the kernel's name.
	MAC     string       `json:"mac,omitempty"`
	DHCP    bool         `json:"dhcp,omitempty"`
	Address netip.Prefix `json:"address,omitzero"` // host address and prefix length: 172.16.1.10/24
	Gateway netip.Addr   `json:"gateway,omitzero"` // default route via; inside Address's subnet
	DNS     []netip.Addr `json:"dns,omitempty"`
}

// Network is one network to be a member of.
type Network struct {
	// Join is a join string (gate://HOST:PORT/NETWORKID?pin=...[&token=...])
	// or a bare network ID; a bare ID needs Controller, or a controller
	// running on this node.
	Join       string     `json:"join"`
	Controller string     `json:"controller,omitempty"` // gate://HOST:PORT?pin=sha256:...
	Token      string     `json:"token,omitempty"`      // join token, with a bare network ID
	Address    netip.Addr `json:"address,omitzero"`     // requested overlay address; the controller decides
	Gateway    *Gateway   `json:"gateway,omitempty"`
}

// Gateway is this node's gateway role in a network. Its semantics are
// those of localapi.Gateway.
type Gateway struct {
	Serve      []netip.Prefix `json:"serve"`         // local CIDRs reached through this node
	LAN        string         `json:"lan,omitempty"` // NIC facing them; "" = the default-route NIC
	Masquerade Masquerade     `json:"masquerade"`
}

// Masquerade says which traffic the gateway source-NATs.
type Masquerade struct {
	ToLAN      bool `json:"to_lan"`      // overlay traffic enters the LAN with this node's address
	ToInternet bool `json:"to_internet"` // the served CIDRs reach the internet through this node (NAT instance)
}

// Controller asks for a controller to run on this node.
type Controller struct {
	Listen    string `json:"listen"`              // HOST:PORT or :PORT
	Advertise string `json:"advertise,omitempty"` // HOST:PORT members dial; default: derived from Listen
}

// NetworkID returns the ID of the network n joins, or "" if Join is
// malformed (Validate reports that).
func (n Network) NetworkID() string {
	if j, err := control.ParseJoinString(n.Join); err == nil {
		return j.NetworkID
	}
	id := control.NormalizeID(n.Join)
	if control.CheckNetworkID(id) == nil {
		return id
	}
	return ""
}

// JoinRequest turns n into the daemon's local API request. A token given
// beside a join string or a bare network ID ends up in a join string.
func (n Network) JoinRequest() (localapi.JoinRequest, error) {
	r := localapi.JoinRequest{Join: n.Join, Address: n.Address}
	if n.Gateway != nil {
		r.Gateway = &localapi.Gateway{
			Serve:              slices.Clone(n.Gateway.Serve),
			LAN:                n.Gateway.LAN,
			MasqueradeLAN:      n.Gateway.Masquerade.ToLAN,
			MasqueradeInternet: n.Gateway.Masquerade.ToInternet,
		}
	}
	if j, err := control.ParseJoinString(n.Join); err == nil {
		if n.Token != "" && j.Token == "" {
			j.Token = n.Token
			r.Join = j.String()
		}
		return r, nil
	}
	id := control.NormalizeID(n.Join)
	if err := control.CheckNetworkID(id); err != nil {
		return r, fmt.Errorf("join %s: neither a join string nor a network ID", show(n.Join))
	}
	r.Join = id
	if n.Controller == "" {
		return r, nil // the node's own (or already known) controller
	}
	c, err := control.ParseControllerAddress(n.Controller)
	if err != nil {
		return r, fmt.Errorf("controller %s: %w", show(n.Controller), err)
	}
	if n.Token != "" {
		c.NetworkID, c.Token = id, n.Token
		r.Join = c.String()
		return r, nil
	}
	r.Controller = c.ControllerAddress()
	return r, nil
}

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config {
	if c == nil {
		return nil
	}
	out := *c
	if c.Interfaces != nil {
		out.Interfaces = make(map[string]Interface, len(c.Interfaces))
		for k, v := range c.Interfaces {
			v.DNS = slices.Clone(v.DNS)
			out.Interfaces[k] = v
		}
	}
	out.Networks = slices.Clone(c.Networks)
	for i, n := range out.Networks {
		if n.Gateway != nil {
			g := *n.Gateway
			g.Serve = slices.Clone(g.Serve)
			out.Networks[i].Gateway = &g
		}
	}
	if c.Controller != nil {
		cc := *c.Controller
		out.Controller = &cc
	}
	return &out
}

// Redacted returns a copy of c with join tokens replaced, for logs and
// status: a token is a credential.
func (c *Config) Redacted() *Config {
	out := c.Clone()
	for i, n := range out.Networks {
		if n.Token != "" {
			out.Networks[i].Token = "REDACTED"
		}
		if j, err := control.ParseJoinString(n.Join); err == nil && j.Token != "" {
			j.Token = "REDACTED"
			out.Networks[i].Join = j.String()
		}
	}
	return out
}

// InterfaceNames returns the keys of c.Interfaces, sorted.
func (c *Config) InterfaceNames() []string {
	return slices.Sorted(maps.Keys(c.Interfaces))
}
