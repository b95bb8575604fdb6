package nodeconfig

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/gatenet/gate/services/control"
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

// Controller asks for a controller to run on this node.
type Controller struct {
	Listen    string `json:"listen"`              // HOST:PORT or :PORT
	Advertise string `json:"advertise,omitempty"` // HOST:PORT members dial; default: derived from Listen
	// DB is its database: a PostgreSQL URL (CheckDB), as `gate controller
	// --db` takes it, for replicas on other hosts sharing it; "" is
	// SQLite on the state disk. It may hold a password: show it only as
	// RedactDB renders it.
	DB string `json:"db,omitempty"`
	// Web serves the controller's web console, if set.
	Web *ControllerWeb `json:"web,omitempty"`
}

// ControllerWeb is where a controller run here serves its web console, as
// `gate controller --web` does: on a loopback address without TLS (for an
// SSH tunnel), or on any address with a certificate browsers trust (files
// on this node, PEM; re-read when they change).
type ControllerWeb struct {
	Listen string `json:"listen"`         // HOST:PORT
	Cert   string `json:"cert,omitempty"` // absolute path of the certificate (chain)
	Key    string `json:"key,omitempty"`  // absolute path of its key
}

// Loopback reports whether w listens on a loopback address only.
func (w *ControllerWeb) Loopback() bool {
	host, _, err := net.SplitHostPort(w.Listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// NetworkID returns the ID of the network n joins, or "" if Join is
// malformed (Validate reports that).
func (n Network) NetworkID() string {
	j, err := ParseJoin(n.Join, n.Controller, n.Token)
	if err != nil {
		return ""
	}
	return j.NetworkID
}

// JoinRequest turns n into a join request. A token given beside a join
// string or a bare network ID ends up in a join string; a bare network ID
// without a controller stays bare (the node's own, or already known,
// controller), and with a token as well it is an error: the caller fills
// in the node's own controller first (intent does).
func (n Network) JoinRequest() (JoinRequest, error) {
	r := JoinRequest{Join: n.Join, Address: n.Address, Gateway: n.Gateway.Clone()}
	j, err := ParseJoin(n.Join, n.Controller, n.Token)
	if err != nil {
		return r, fmt.Errorf("%s: %w", problemField(err), err)
	}
	switch {
	case j.Controller == "" && j.Token != "":
		// A token travels only inside a join string, which needs the
		// controller: dropping it would join without it, silently.
		return r, &Problem{"token", "a token beside a bare network ID needs the controller's address too (controller: gate://HOST:PORT?pin=...), or a controller running on this node"}
	case j.Controller == "":
		r.Join = j.NetworkID
	case strings.Contains(n.Join, "://") && n.Token == "":
		// The join string as it was written.
	case j.Token != "":
		r.Join = j.String()
	default:
		r.Join, r.Controller = j.NetworkID, j.ControllerAddress()
	}
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
		out.Networks[i].Gateway = n.Gateway.Clone()
	}
	if c.Controller != nil {
		cc := *c.Controller
		if cc.Web != nil {
			w := *cc.Web
			cc.Web = &w
		}
		out.Controller = &cc
	}
	return &out
}

// Redacted returns a copy of c with join tokens and the controller's
// database password replaced, for logs and status: both are credentials.
func (c *Config) Redacted() *Config {
	out := c.Clone()
	if out.Controller != nil && out.Controller.DB != "" {
		out.Controller.DB = RedactDB(out.Controller.DB)
	}
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
