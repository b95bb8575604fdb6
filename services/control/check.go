package control

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/gatenet/gate/services/names"
)

// What a member takes from its controller. The controller checks every
// value a member reports before it passes it on to others, and the
// controller's identity is pinned; still, a member's configuration carries
// text and addresses other members made up, so the node checks it again
// where it arrives (CheckConfig) before any of it reaches WireGuard, the
// kernel, its state file, its log or a terminal.

// Bounds of a configuration's text.
const (
	maxConfigName = 64
	maxHostname   = 64
	maxEndpoints  = 16
	maxTags       = 16 // a peer's tags, as the controller allows a member
)

// CheckConfig checks a configuration as a member receives it (full, after
// any delta is applied). A fault in the configuration's own fields is an
// error: the member keeps its last good configuration. A peer that is not
// well formed (its node ID, key, hostname, addresses or endpoints) is left
// out, so that one member's bad entry costs only that entry; dropped says
// which and why, safe to log.
func CheckConfig(c MemberConfig) (out MemberConfig, dropped []string, err error) {
	switch c.Status {
	case StatusOK, StatusRequesting, StatusDenied, StatusNotFound:
	default:
		return c, nil, fmt.Errorf("configuration: unknown status %s", strconv.QuoteToASCII(c.Status))
	}
	if err := CheckNetworkID(c.NetworkID); err != nil {
		return c, nil, fmt.Errorf("configuration: %w", err)
	}
	if c.NodeID != "" {
		if err := CheckNodeID(c.NodeID); err != nil {
			return c, nil, fmt.Errorf("configuration: %w", err)
		}
	}
	if !printable(c.Name, maxConfigName) {
		return c, nil, fmt.Errorf("configuration: network name %s is not printable text of at most %d characters", strconv.QuoteToASCII(c.Name), maxConfigName)
	}
	if c.Status != StatusOK {
		return c, nil, nil
	}
	if !c.CIDR.IsValid() || !c.CIDR.Addr().Is4() || c.CIDR.Masked() != c.CIDR || c.CIDR.Bits() < 8 {
		return c, nil, fmt.Errorf("configuration: network CIDR %s is not an IPv4 network of /8 or longer", c.CIDR)
	}
	if c.MTU < 1280 || c.MTU > 9000 {
		return c, nil, fmt.Errorf("configuration: MTU %d out of range 1280-9000", c.MTU)
	}
	if c.Keepalive < 0 || c.Keepalive > 3600 {
		return c, nil, fmt.Errorf("configuration: keepalive %d out of range 0-3600", c.Keepalive)
	}
	for _, a := range c.Addresses {
		if !a.IsValid() || a.Bits() != c.CIDR.Bits() || !c.CIDR.Contains(a.Addr()) {
			return c, nil, fmt.Errorf("configuration: own address %s is not in the network %s", a, c.CIDR)
		}
	}
	for _, r := range c.Routes {
		if !r.Dest.IsValid() || !r.Dest.Addr().Is4() || r.Dest.Masked() != r.Dest || !c.CIDR.Contains(r.Via) {
			return c, nil, fmt.Errorf("configuration: route %s via %s is not an IPv4 network via an address of %s", r.Dest, r.Via, c.CIDR)
		}
		if err := r.CheckFailover(c.CIDR); err != nil {
			return c, nil, fmt.Errorf("configuration: route %s: %w", r.Dest, err)
		}
	}
	if c.Policy != nil {
		if err := c.Policy.Check(); err != nil {
			return c, nil, fmt.Errorf("configuration: rules: %w", err)
		}
	}
	out = c
	out.Peers = make([]Peer, 0, len(c.Peers))
	for _, p := range c.Peers {
		if why := peerFault(p, c.CIDR); why != "" {
			dropped = append(dropped, fmt.Sprintf("peer %s: %s", strconv.QuoteToASCII(p.NodeID), why))
			continue
		}
		out.Peers = append(out.Peers, p)
	}
	return out, dropped, nil
}

// peerFault says what is wrong with a peer as a member receives it, or "".
// Which peers may share keys and allowed IPs is the device's business
// (services/tunnel): here each peer is checked on its own.
func peerFault(p Peer, cidr netip.Prefix) string {
	if CheckNodeID(p.NodeID) != nil {
		return "node ID is not 10 hex digits"
	}
	if !printable(p.Hostname, maxHostname) {
		return fmt.Sprintf("hostname is not printable text of at most %d characters", maxHostname)
	}
	if k, err := base64.StdEncoding.DecodeString(p.PublicKey); err != nil || len(k) != 32 {
		return "public key is not base64 of 32 bytes"
	}
	if len(p.Addresses) == 0 {
		return "no address"
	}
	for _, a := range p.Addresses {
		if !cidr.Contains(a) {
			return fmt.Sprintf("address %s is not in the network %s", a, cidr)
		}
	}
	for _, a := range p.AllowedIPs {
		if !a.IsValid() || !a.Addr().Is4() {
			return fmt.Sprintf("allowed IP %s is not an IPv4 prefix", a)
		}
	}
	if len(p.Tags) > maxTags {
		return fmt.Sprintf("%d tags, more than %d", len(p.Tags), maxTags)
	}
	for _, t := range p.Tags {
		if nt, ok := names.Tag(t); !ok || nt != t {
			return "a tag is not one (lower-case letters, digits and hyphens)"
		}
	}
	if len(p.Endpoints) > maxEndpoints {
		return fmt.Sprintf("%d endpoints, more than %d", len(p.Endpoints), maxEndpoints)
	}
	if slices.ContainsFunc(p.Endpoints, func(ep netip.AddrPort) bool {
		return !ep.IsValid() || ep.Addr().Zone() != "" || ep.Port() == 0
	}) {
		return "an endpoint is not a plain IP:port"
	}
	return ""
}

// special are destinations no managed route may take over on a member:
// "this network", loopback, link-local (where clouds serve instance
// metadata), multicast and reserved space.
var special = [...]netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("224.0.0.0/4"), netip.MustParsePrefix("240.0.0.0/4"),
}

// SpecialRange reports whether dst lies inside a range no managed route
// may take over, and which.
func SpecialRange(dst netip.Prefix) (netip.Prefix, bool) {
	for _, sp := range special {
		if dst.Overlaps(sp) && dst.Bits() >= sp.Bits() {
			return sp, true
		}
	}
	return netip.Prefix{}, false
}

// printable reports whether s is valid UTF-8 of at most max characters,
// none of them a control character or otherwise unprintable.
func printable(s string, max int) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
