// Package localapi is the node daemon's local API: the types, an HTTP
// server over a unix socket, and the client that the CLI and the console
// use. The socket is the only way in, and it is root's alone (0600 in a 0700
// directory): whoever can reach it can join and leave networks.
//
// It owns the wire and nothing of the domain: the requests it carries and
// their validators are the domain's (services/nodeconfig: JoinRequest,
// Gateway), named here as they are so that the bytes on the socket are
// theirs. It must not define or check a domain value of its own; what it
// checks itself is only what the socket needs (sizes, printable ASCII).
//
// This package must stay free of netlink, nftables and WireGuard imports:
// the console links it and runs without network privileges.
package localapi

import (
	"net/netip"
	"time"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/nodeconfig"
)

// DefaultSocket is where `gate up` listens unless told otherwise.
const DefaultSocket = "/run/gate/gate.sock"

// Status is the node's overall state (GET /v1/status).
type Status struct {
	NodeID string `json:"node_id"`
	// Fingerprint is the pin of the node's identity key (sha256:...),
	// which an admin compares before allowing the node.
	Fingerprint string    `json:"fingerprint"`
	Hostname    string    `json:"hostname"`
	Version     string    `json:"version"`
	Online      bool      `json:"online"`
	Started     time.Time `json:"started"`
	Networks    int       `json:"networks"`
	Firewall    string    `json:"firewall"`   // "strict" or "guard"
	Forward     bool      `json:"forwarding"` // IPv4 forwarding switched on by Gate
	// InputOpen lists what the strict firewall lets in besides Gate's
	// own traffic, and why (empty when the firewall is not strict).
	InputOpen []OpenPort `json:"input_open,omitempty"`
	LastError string     `json:"last_error,omitempty"`
	// Pending is a change waiting for confirmation, if any.
	Pending *Pending `json:"pending,omitempty"`
	// Config is where the node's configuration document came from and
	// what was wrong with it (configstatus.go); nil when the daemon does
	// not read one.
	Config *ConfigStatus `json:"config,omitempty"`
	// Controllers says, for each joined network, which address of its
	// controller the node is on.
	Controllers []NetworkController `json:"controllers,omitempty"`
}

// NetworkController is which address of its controller a joined network is
// on (Status.Controllers): Network.ControllerNow of Network.Controllers.
type NetworkController struct {
	Network   string   `json:"network"`
	Now       string   `json:"now"`
	Addresses []string `json:"addresses"`
	Online    bool     `json:"online"`
}

// Gateway is a node's gateway role in one network: the domain's
// (nodeconfig.Gateway, whose Check is its one validator), carried as it is.
type Gateway = nodeconfig.Gateway

// Peer is a peer as the node sees it on its WireGuard device.
type Peer struct {
	NodeID        string         `json:"node_id"`
	Hostname      string         `json:"hostname"`
	PublicKey     string         `json:"public_key"`
	Endpoint      netip.AddrPort `json:"endpoint,omitzero"`
	AllowedIPs    []netip.Prefix `json:"allowed_ips"`
	LastHandshake time.Time      `json:"last_handshake,omitzero"`
	RxBytes       uint64         `json:"rx_bytes"`
	TxBytes       uint64         `json:"tx_bytes"`
}

// Network is one joined network (GET /v1/networks).
type Network struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	Status     string          `json:"status"` // control.Status*
	Controller string          `json:"controller"`
	Interface  string          `json:"interface,omitempty"`
	ListenPort int             `json:"listen_port"`
	MTU        int             `json:"mtu,omitempty"`
	Addresses  []netip.Prefix  `json:"addresses"`
	Routes     []control.Route `json:"routes"` // the routes installed here (not those via this node)
	Peers      []Peer          `json:"peers"`
	Gateway    *Gateway        `json:"gateway,omitempty"`
	Online     bool            `json:"online"` // controller reached on the last attempt
	LastSync   time.Time       `json:"last_sync,omitzero"`
	Error      string          `json:"error,omitempty"`
	// Rules are the network's rules this node enforces on what it
	// receives (input) and, as a gateway, on what it forwards into the
	// subnets it serves (forward), in order, each with what it matched;
	// the last of each chain is the default deny (Rule 0). Nil: the
	// controller sends no rules (one older than policy): nothing is
	// filtered.
	Rules []PolicyRule `json:"rules,omitempty"`
	// Failover lists the routes with several gateways and which one this
	// node sends through, and why (services/failover).
	Failover []RouteFailover `json:"failover,omitempty"`

	// Controllers are every address of the network's controller, in
	// order, Controller (the first) first: more than one for a controller
	// run as replicas behind one pin.
	Controllers []string `json:"controllers,omitempty"`
	// ControllerNow is the one of them the node is on: the address that
	// answered last (Controller until one has).
	ControllerNow string `json:"controller_now,omitempty"`
}

// RouteFailover is one route with several gateways as this node sees it.
type RouteFailover struct {
	Dest netip.Prefix `json:"dest"`
	// Active is the gateway this node sends the route's traffic through,
	// since Since, for Reason. When this node is a gateway of the route
	// (Serving), it is the one members that see what this node sees send
	// through (ActiveHere: this node), and State says how the route works
	// from here.
	Active     netip.Addr      `json:"active,omitzero"`
	Since      time.Time       `json:"since,omitzero"`
	Reason     string          `json:"reason,omitempty"`
	Serving    bool            `json:"serving,omitempty"`
	ActiveHere bool            `json:"active_here,omitempty"`
	State      string          `json:"state,omitempty"`
	Gateways   []GatewayHealth `json:"gateways"`
	// RouteTables says what this node last did to point the cloud's
	// route tables at itself, as the active gateway.
	RouteTables string `json:"route_tables,omitempty"`
}

// GatewayHealth is one gateway of a route as this node last saw it.
type GatewayHealth struct {
	Addr   netip.Addr `json:"addr"`
	Up     bool       `json:"up"`
	Since  time.Time  `json:"since,omitzero"`
	Reason string     `json:"reason,omitempty"` // why it is down
}

// PolicyRule is one rule as a node enforces it, and what it matched since
// the rules were last applied.
type PolicyRule struct {
	Chain   string `json:"chain"` // "input" or "forward"
	Rule    int    `json:"rule"`  // its number in the network's rules; 0: the default deny
	Allow   bool   `json:"allow"`
	Text    string `json:"text"` // as compiled for this node: its own addresses, its served subnets
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// JoinRequest is the body of POST /v1/join: the domain's request to be a
// member of a network (nodeconfig.JoinRequest), carried as it is; the
// server checks it with its Check before the daemon sees it.
type JoinRequest = nodeconfig.JoinRequest

// Snapshot is everything the console shows, at one revision (GET
// /v1/watch).
type Snapshot struct {
	Rev        uint64      `json:"rev"`
	Status     Status      `json:"status"`
	Networks   []Network   `json:"networks"`
	Interfaces []Interface `json:"interfaces"`
}

// LeaveRequest is the body of POST /v1/leave.
type LeaveRequest struct {
	Network string `json:"network"`
}
