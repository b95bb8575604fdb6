package control

import (
	"encoding/json"
	"net/netip"
	"slices"
	"time"

	"github.com/gatenet/gate/services/jsonapi"
	"github.com/gatenet/gate/services/policy"
)

// Membership states as the controller stores them.
const (
	StatePending = "pending"
	StateAllowed = "allowed"
	StateDenied  = "denied"
)

// Statuses a member reports for a network, named as operators know them.
const (
	StatusRequesting = "REQUESTING_CONFIGURATION"
	StatusDenied     = "ACCESS_DENIED"
	StatusOK         = "OK"
	StatusNotFound   = "NOT_FOUND"
)

// Network is a network as the controller holds it.
type Network struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	CIDR      netip.Prefix `json:"cidr"`
	MTU       int          `json:"mtu"`
	AutoAllow bool         `json:"auto_allow"`
	// RequireToken: new members must bring a join token; without one
	// they are refused instead of waiting for an admin.
	RequireToken bool      `json:"require_token"`
	Routes       []Route   `json:"routes"`
	Created      time.Time `json:"created"`
	Revision     uint64    `json:"revision"`
	// Rules say who may reach what: read top to bottom, the first rule
	// that matches a packet decides; a packet no rule matches is denied
	// (services/policy).
	Rules policy.Policy `json:"rules"`
}

// Member is one node's membership of one network.
type Member struct {
	NetworkID string `json:"network_id"`
	NodeID    string `json:"node_id"`
	// Fingerprint is the pin of the node's identity key (sha256:...),
	// of which the node ID is the first 10 hex digits: what an admin
	// compares with `gate status` on the node before allowing it.
	Fingerprint string           `json:"fingerprint"`
	Hostname    string           `json:"hostname"`
	PublicKey   string           `json:"public_key"` // WireGuard public key, base64
	Endpoints   []netip.AddrPort `json:"endpoints"`
	State       string           `json:"state"`
	Addresses   []netip.Addr     `json:"addresses"`
	BehindNAT   bool             `json:"behind_nat"`
	LastSeen    time.Time        `json:"last_seen"`
	Version     string           `json:"version"`
	Created     time.Time        `json:"created"`
	ListenPort  int              `json:"listen_port"`
	Tags        []string         `json:"tags,omitempty"`
}

// CreateNetworkRequest is the body of POST /v1/networks.
type CreateNetworkRequest struct {
	Name      string       `json:"name"`
	CIDR      netip.Prefix `json:"cidr"`
	MTU       int          `json:"mtu,omitempty"` // 0 means the default, DefaultMTU
	AutoAllow bool         `json:"auto_allow"`
	// RequireToken refuses new members that bring no join token.
	RequireToken bool `json:"require_token,omitempty"`
}

// UpdateNetworkRequest is the body of PATCH /v1/networks/{id}; nil fields
// are left as they are.
type UpdateNetworkRequest struct {
	Name         *string `json:"name,omitempty"`
	MTU          *int    `json:"mtu,omitempty"`
	AutoAllow    *bool   `json:"auto_allow,omitempty"`
	RequireToken *bool   `json:"require_token,omitempty"`
}

// SetAddressRequest is the body of PUT /v1/networks/{id}/members/{node}/address.
type SetAddressRequest struct {
	Address netip.Addr `json:"address"`
}

// AddressCheck answers GET /v1/networks/{id}/members/{node}/address?check=ADDR:
// whether PUT would take Address now, and if not, why.
type AddressCheck struct {
	Address netip.Addr `json:"address"`
	Problem string     `json:"problem,omitempty"` // "" when it would be taken
}

// CreateTokenRequest is the body of POST /v1/networks/{id}/tokens.
type CreateTokenRequest struct {
	Reusable  bool       `json:"reusable"`
	ExpiresIn Duration   `json:"expires_in"` // 0 means DefaultTokenLifetime
	Allow     bool       `json:"allow"`      // members joining with it are allowed at once
	Address   netip.Addr `json:"address,omitzero"`
	Note      string     `json:"note,omitempty"`
	Tags      []string   `json:"tags,omitempty"` // given to members joining with it
}

// Token is a join token as the admin API shows it. The secret is only ever
// returned once, inside JoinString, when the token is created.
type Token struct {
	ID             string     `json:"id"`
	NetworkID      string     `json:"network_id"`
	Reusable       bool       `json:"reusable"`
	Allow          bool       `json:"allow"`
	Address        netip.Addr `json:"address,omitzero"`
	Expires        time.Time  `json:"expires"`
	Uses           int        `json:"uses"`
	UsedBy         string     `json:"used_by,omitempty"`          // the node that used it last
	UsedByInstance string     `json:"used_by_instance,omitempty"` // its cloud instance, if it said
	Revoked        time.Time  `json:"revoked,omitzero"`           // when an admin revoked it
	Note           string     `json:"note,omitempty"`
	Tags           []string   `json:"tags,omitempty"`
	JoinString     string     `json:"join_string,omitempty"`
}

// SetTagsRequest is the body of PUT /v1/networks/{id}/members/{node}/tags:
// the member's tags, replacing those it had (none: untagged).
type SetTagsRequest struct {
	Tags []string `json:"tags"`
}

// SetRulesRequest is the body of PUT /v1/networks/{id}/rules: the whole
// ordered list, replacing the network's. With Revision set, the change is
// refused (409) if the network moved past it since the admin read the
// rules: two admins editing at once never lose one's edit silently.
type SetRulesRequest struct {
	Rules    policy.Policy `json:"rules"`
	Revision uint64        `json:"revision,omitempty"`
	// Base, when set, is the rules as the admin read them: the change is
	// refused (409) if the network's rules are not those any more. Unlike
	// Revision, which any change to the network moves (a member roaming),
	// it catches only a concurrent edit of the rules.
	Base *policy.Policy `json:"base,omitempty"`
}

// SetRulesAnswer answers PUT /v1/networks/{id}/rules: the network with
// its new rules and revision, and warnings (a tag no member has yet).
type SetRulesAnswer struct {
	Network  Network  `json:"network"`
	Warnings []string `json:"warnings,omitempty"`
}

// PolicyTestRequest is the body of POST /v1/networks/{id}/policy/test: a
// packet from From (a member's node ID or fingerprint, or an address) to
// To, of Proto (tcp, udp or icmp) to Port (tcp and udp).
type PolicyTestRequest struct {
	From  string     `json:"from"`
	To    netip.Addr `json:"to"`
	Proto string     `json:"proto"`
	Port  uint16     `json:"port,omitempty"`
}

// PolicyDecision answers a PolicyTestRequest: allowed or not, the rule
// that decided (its number from 1 and its text; 0 and "" when none
// matched and the default denied) and the reason in a sentence.
type PolicyDecision struct {
	Allow  bool        `json:"allow"`
	Rule   int         `json:"rule"`
	Text   policy.Rule `json:"text,omitzero"`
	Reason string      `json:"reason"`
	From   netip.Addr  `json:"from"` // the source address tested
}

// JoinRequest is the body of POST /v1/networks/{id}/join, sent by a member
// over its authenticated connection.
type JoinRequest struct {
	Token            string           `json:"token,omitempty"`
	PublicKey        string           `json:"public_key"`
	Hostname         string           `json:"hostname"`
	Version          string           `json:"version"`
	ListenPort       int              `json:"listen_port"`
	Endpoints        []netip.AddrPort `json:"endpoints"`
	RequestedAddress netip.Addr       `json:"requested_address,omitzero"`
	// InstanceID is the cloud instance the node runs on, from its
	// metadata, when it joins with user-data: recorded with the token.
	InstanceID string `json:"instance_id,omitempty"`
}

// SyncRequest is the body of POST /v1/networks/{id}/sync: the member reports
// what may have changed on its side and waits (long-poll) until the network
// revision passes Since or Wait runs out. Since is the revision of the
// configuration the member holds (0: none, or "answer at once"); with
// ?delta=1 (Client.SyncDelta) the answer may be a delta against it.
type SyncRequest struct {
	Since      uint64           `json:"since"`
	Wait       Duration         `json:"wait"`
	PublicKey  string           `json:"public_key"`
	Hostname   string           `json:"hostname"`
	Version    string           `json:"version"`
	ListenPort int              `json:"listen_port"`
	Endpoints  []netip.AddrPort `json:"endpoints"`
}

// Peer is another member as one member sees it.
//
// On the wire allowed_ips is left out when it is just the addresses, each
// as a host prefix: the usual case, a member that serves no routes, and
// 14% of a large network's configuration. Decoding puts it back.
type Peer struct {
	NodeID     string           `json:"node_id"`
	Hostname   string           `json:"hostname"`
	PublicKey  string           `json:"public_key"`
	Addresses  []netip.Addr     `json:"addresses"`
	AllowedIPs []netip.Prefix   `json:"allowed_ips"` // its addresses plus the routes it serves
	Endpoints  []netip.AddrPort `json:"endpoints"`   // best first
	Tags       []string         `json:"tags,omitempty"`
}

// peerJSON is Peer without its methods, for encoding/json.
type peerJSON Peer

// MarshalJSON encodes p, without allowed_ips when they are hostPrefixes of
// its addresses.
func (p Peer) MarshalJSON() ([]byte, error) {
	if len(p.Addresses) > 0 && slices.Equal(p.AllowedIPs, hostPrefixes(p.Addresses)) {
		return json.Marshal(struct {
			peerJSON
			AllowedIPs []netip.Prefix `json:"allowed_ips,omitempty"`
		}{peerJSON: peerJSON(p)})
	}
	return json.Marshal(peerJSON(p))
}

// UnmarshalJSON decodes a peer; without allowed_ips, they are its
// addresses as host prefixes.
func (p *Peer) UnmarshalJSON(b []byte) error {
	var q peerJSON
	if err := json.Unmarshal(b, &q); err != nil {
		return err
	}
	if q.AllowedIPs == nil && len(q.Addresses) > 0 {
		q.AllowedIPs = hostPrefixes(q.Addresses)
	}
	*p = Peer(q)
	return nil
}

// hostPrefixes is each address as a prefix of its full length.
func hostPrefixes(as []netip.Addr) []netip.Prefix {
	out := make([]netip.Prefix, len(as))
	for i, a := range as {
		out[i] = netip.PrefixFrom(a, a.BitLen())
	}
	return out
}

// MemberConfig is what a member needs to take part in one network. The
// controller answers join and sync with it.
//
// Full or delta. A full configuration (Delta false) lists every peer. A
// member that syncs with SyncDelta may instead get a delta (Delta true)
// against the configuration it already holds at revision Since: Peers then
// holds only the peers added or changed since Since (each complete, to be
// put in place of the old entry with the same NodeID), RemovedPeers the node
// IDs of peers that are gone, and every other field is complete, as in a
// full configuration. Applying a delta to the configuration at Since gives
// the full configuration at Revision, with the peers in the same order (by
// address, then node ID). The controller sends a full configuration instead
// whenever it cannot give a delta: on join, on a first sync (Since 0), when
// Since is unknown to it (older than what it remembers, or newer than its
// revision, as after a restore from a backup), and when the member has just
// come into service. A member that holds no configuration at Since must
// not apply a delta; it asks again with Since 0.
//
// Peers stays the last field: the controller splices pre-encoded peers in
// after it.
type MemberConfig struct {
	NetworkID string         `json:"network_id"`
	Name      string         `json:"name"`
	Status    string         `json:"status"` // StatusRequesting, StatusDenied, StatusOK
	NodeID    string         `json:"node_id"`
	CIDR      netip.Prefix   `json:"cidr"`
	MTU       int            `json:"mtu"`
	Addresses []netip.Prefix `json:"addresses"` // own overlay addresses with the network's prefix length
	Routes    []Route        `json:"routes"`    // all managed routes, including those via this member
	// Keepalive is the persistent keepalive in seconds this member should
	// use towards its peers: non-zero when the controller saw it behind NAT.
	Keepalive int    `json:"keepalive"`
	Revision  uint64 `json:"revision"`
	// Delta marks a delta against the configuration at revision Since.
	Delta bool   `json:"delta,omitempty"`
	Since uint64 `json:"since,omitempty"`
	// RemovedPeers lists, in a delta, the node IDs of peers that are gone.
	RemovedPeers []string `json:"removed_peers,omitempty"`
	// Policy is the network's rules that concern this member, compiled
	// for it to enforce on what it receives (services/policy). In a full
	// configuration nil means a controller older than policy: nothing is
	// filtered. In a delta nil means unchanged since Since.
	Policy *policy.Ruleset `json:"policy,omitempty"`
	Peers  []Peer          `json:"peers"`
}

// Error is the body of every non-2xx answer. It is jsonapi.ErrorBody,
// which the clients decode: one definition of the wire shape.
type Error = jsonapi.ErrorBody

// Defaults the controller applies.
const (
	DefaultMTU           = 1420
	DefaultTokenLifetime = 24 * time.Hour
	MaxSyncWait          = 60 * time.Second
)
