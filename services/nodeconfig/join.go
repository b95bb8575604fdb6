package nodeconfig

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/gatenet/gate/services/control"
)

// JoinRequest is a request to be a member of a network: what the CLI's
// join, the console's join form and the document's networks ask for. The
// local API carries it as it is (these JSON names are the body of POST
// /v1/join), and the agent acts on it. Check is its one validator.
type JoinRequest struct {
	// Join is a join string, or a bare network ID when Controller is set or
	// the node already knows a controller.
	Join       string     `json:"join"`
	Controller string     `json:"controller,omitempty"` // gate://HOST:PORT?pin=...
	Address    netip.Addr `json:"address,omitzero"`     // requested overlay address
	Gateway    *Gateway   `json:"gateway,omitempty"`
	// InstanceID is the cloud instance whose user-data asks for the join;
	// the controller records it with the join token.
	InstanceID string `json:"instance_id,omitempty"`
}

// MaxInstanceID is the longest cloud instance ID a join request carries.
const MaxInstanceID = 128

// Gateway is a node's gateway role in one network: it forwards between the
// overlay and local networks. Check is its one validator.
//
// The JSON names are the local API's and the agent's networks.json; the
// document writes the two switches as masquerade: {to_lan, to_internet}
// (decode.go, format.go).
type Gateway struct {
	Serve              []netip.Prefix `json:"serve"`               // local CIDRs reached through this node
	LAN                string         `json:"lan,omitempty"`       // interface facing them; "" = the default-route interface
	MasqueradeLAN      bool           `json:"masquerade_lan"`      // overlay traffic enters the LAN with this node's address
	MasqueradeInternet bool           `json:"masquerade_internet"` // NAT-instance job for the served CIDRs
	// AWSRouteTables are the VPC route tables this gateway points at
	// itself when it becomes the active gateway of a route with backups
	// (services/routetable): the overlay, and the default route when it
	// is the NAT instance.
	AWSRouteTables []string `json:"aws_route_tables,omitempty"`
}

// Clone returns a deep copy of g.
func (g *Gateway) Clone() *Gateway {
	if g == nil {
		return nil
	}
	c := *g
	c.Serve = slices.Clone(g.Serve)
	c.AWSRouteTables = slices.Clone(g.AWSRouteTables)
	return &c
}

// Problem is one thing wrong with a join request or a gateway role. Field
// is where, as the document's key path ends ("join", "controller",
// "token", "serve[1]", "lan"); Msg says what is wrong, naming the value.
type Problem struct {
	Field, Msg string
}

// Error returns Msg: a join's problems say what they are about.
func (p *Problem) Error() string { return p.Msg }

// Problems lists everything wrong with a gateway role (nil: no role, which
// is valid). The rules, the same for the document, the CLI, the console,
// the local API and the agent:
//
//   - serve: at least one CIDR, masquerade or not. A NAT instance
//     (masquerade_internet) masquerades only the CIDRs it serves, and the
//     overlay routes to it only those: a role that serves nothing would
//     forward nothing, so it is refused rather than taken silently.
//   - serve[i]: an IPv4 network address (the overlay is IPv4; its host
//     bits clear), overlapping none of the others.
//   - lan: an interface name (CheckInterfaceName) that is not one of
//     Gate's overlay interfaces (OverlayInterface), or "" for the
//     default-route interface.
//
// A role these accept, with its LAN resolved, is one that the firewall's
// Ruleset.Validate accepts too (services/firewall's tests hold the two to
// that); the firewall checks it again against the other overlays, which
// no role alone can.
func (g *Gateway) Problems() []Problem {
	if g == nil {
		return nil
	}
	var ps []Problem
	if len(g.Serve) == 0 {
		ps = append(ps, Problem{"serve", "a gateway serves at least one CIDR (the local networks reached through it)"})
	}
	for k, p := range g.Serve {
		f := index("serve", k)
		switch {
		case !p.IsValid() || !p.Addr().Is4():
			ps = append(ps, Problem{f, fmt.Sprintf("%s: want an IPv4 CIDR (the overlay is IPv4)", p)})
			continue
		case p != p.Masked():
			ps = append(ps, Problem{f, fmt.Sprintf("%s is not a network address (did you mean %s?)", p, p.Masked())})
			continue
		}
		for m := range k {
			if q := g.Serve[m]; q.IsValid() && q.Addr().Is4() && q == q.Masked() && q.Overlaps(p) {
				ps = append(ps, Problem{f, fmt.Sprintf("%s overlaps serve[%d] %s", p, m, q)})
				break
			}
		}
	}
	for k, t := range g.AWSRouteTables {
		if err := CheckRouteTable(t); err != nil {
			ps = append(ps, Problem{index("aws_route_tables", k), err.Error()})
		} else if slices.Contains(g.AWSRouteTables[:k], t) {
			ps = append(ps, Problem{index("aws_route_tables", k), fmt.Sprintf("%s is named twice", t)})
		}
	}
	if len(g.AWSRouteTables) > maxRouteTables {
		ps = append(ps, Problem{"aws_route_tables", fmt.Sprintf("%d route tables: at most %d", len(g.AWSRouteTables), maxRouteTables)})
	}
	if g.LAN != "" {
		if err := CheckInterfaceName(g.LAN); err != nil {
			ps = append(ps, Problem{"lan", err.Error()})
		} else if isOverlayInterface(g.LAN) {
			ps = append(ps, Problem{"lan", fmt.Sprintf("%s is one of Gate's overlay interfaces, not a LAN", show(g.LAN))})
		}
	}
	return ps
}

// maxRouteTables bounds a gateway's AWS route tables.
const maxRouteTables = 16

// CheckRouteTable says what is wrong with an AWS route table ID: rtb- and
// 8 or 17 lower-case hex digits.
func CheckRouteTable(id string) error {
	rest, ok := strings.CutPrefix(id, "rtb-")
	if ok && (len(rest) == 8 || len(rest) == 17) && strings.Trim(rest, "0123456789abcdef") == "" {
		return nil
	}
	return fmt.Errorf("route table %s: want rtb- and 8 or 17 hex digits", show(id))
}

// OverlayInterface is the name of the WireGuard interface of network id
// (16 hex digits) on every node: "gate" and the ID's first 10 digits.
func OverlayInterface(id string) string { return "gate" + id[:10] }

// isOverlayInterface says whether name is one that OverlayInterface gives.
func isOverlayInterface(name string) bool {
	rest, ok := strings.CutPrefix(name, "gate")
	return ok && len(rest) == 10 && control.CheckNetworkID(rest+"000000") == nil
}

// Check returns the first of g's Problems as the local API says it
// ("gateway: serve[0]: ..."), or nil.
func (g *Gateway) Check() error {
	if ps := g.Problems(); len(ps) > 0 {
		return fmt.Errorf("gateway: %s: %s", ps[0].Field, ps[0].Msg)
	}
	return nil
}

// CheckRequestedAddress checks an overlay address a node asks for: a
// usable IPv4 host address (the overlay is IPv4; the controller decides
// whether it is free and in the network). The zero Addr (none asked) is
// valid.
func CheckRequestedAddress(a netip.Addr) error {
	switch {
	case !a.IsValid():
		return nil
	case !usable(a):
		return fmt.Errorf("%s is not a usable host address", showAddr(a))
	case !a.Is4():
		return fmt.Errorf("%s: only IPv4 overlay addresses are supported", showAddr(a))
	}
	return nil
}

// ParseJoin is Gate's one reading of what a join names, for the document,
// the CLI, the console and the agent: a join string
// (gate://HOST:PORT/NETWORKID?pin=...[&token=...], control.ParseJoinString,
// which checks the controller's host), or a bare network ID, with beside it
// the controller address (gate://HOST:PORT?pin=...) and a token. Either
// may list several addresses of one controller (its replicas, one pin):
// gate://HOST:PORT,HOST:PORT/..., each checked as one alone is. A join
// string names its controller and may carry its token: one given beside it
// as well is refused (which would win is a guess).
//
// It returns the network and, when known, its controller, pin and token;
// for a bare network ID without a controller, Controller and Pin are "",
// for the caller to fill in (the agent's last controller, the node's own).
// An error is a *Problem whose Field is "join", "controller" or "token".
func ParseJoin(join, controller, token string) (control.JoinString, error) {
	var j control.JoinString
	s := strings.TrimSpace(join)
	switch {
	case s == "":
		return j, &Problem{"join", "missing: a join string (gate://HOST:PORT/NETWORKID?pin=...) or a network ID"}
	case strings.Contains(s, "://"):
		js, err := control.ParseJoinString(s)
		if err != nil {
			return j, &Problem{"join", err.Error()}
		}
		if controller != "" {
			return j, &Problem{"controller", "the join string already names the controller; drop one"}
		}
		if token != "" && js.Token != "" {
			return j, &Problem{"token", "the join string already carries a token; drop one"}
		}
		j = js
	default:
		id := control.NormalizeID(s)
		if control.CheckNetworkID(id) != nil {
			return j, &Problem{"join", fmt.Sprintf("%s is neither a join string (gate://HOST:PORT/NETWORKID?pin=...) nor a network ID (want 16 hex digits)", show(join))}
		}
		j.NetworkID = id
		if controller != "" {
			c, err := control.ParseControllerAddress(controller)
			if err != nil {
				return control.JoinString{}, &Problem{"controller", strings.Replace(err.Error(), "join string", "controller address", 1)}
			}
			j.Controller, j.Replicas, j.Pin = c.Controller, c.Replicas, c.Pin
		}
	}
	if token != "" {
		if err := control.CheckTokenSecret(token); err != nil {
			return control.JoinString{}, &Problem{"token", err.Error()}
		}
		j.Token = token
	}
	return j, nil
}

// problemField returns the field of a *Problem, or "join".
func problemField(err error) string {
	var p *Problem
	if errors.As(err, &p) {
		return p.Field
	}
	return "join"
}

// NetworkID returns the ID of the network r joins, or "" if Join is
// malformed (Check says why).
func (r JoinRequest) NetworkID() string {
	j, err := ParseJoin(r.Join, r.Controller, "")
	if err != nil {
		return ""
	}
	return j.NetworkID
}

// Check is the one validator of a join request: the join (ParseJoin), the
// requested address (CheckRequestedAddress), the gateway role
// (Gateway.Check) and the instance ID. The local API calls it before the
// daemon sees a request, the agent before it acts on one, the console and
// the CLI before they send one: all say the same. Whether a controller is
// known for a bare network ID is the agent's to say.
func (r JoinRequest) Check() error {
	if _, err := ParseJoin(r.Join, r.Controller, ""); err != nil {
		if f := problemField(err); f == "controller" && !strings.HasPrefix(err.Error(), "controller") {
			return fmt.Errorf("controller: %w", err)
		}
		return err
	}
	if err := CheckRequestedAddress(r.Address); err != nil {
		return fmt.Errorf("address %w", err)
	}
	if err := r.Gateway.Check(); err != nil {
		return err
	}
	if len(r.InstanceID) > MaxInstanceID {
		return fmt.Errorf("instance ID: at most %d characters", MaxInstanceID)
	}
	return nil
}
