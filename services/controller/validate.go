package controller

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatenet/gate/services/control"
)

// apiError is an error with the HTTP status it should be answered with.
// Everything else a handler sees is an internal error.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return errorf(http.StatusBadRequest, format, args...)
}

func conflict(format string, args ...any) error {
	return errorf(http.StatusConflict, format, args...)
}

// statusOf returns the HTTP status of err (500 if it is not an apiError).
func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status
	}
	return http.StatusInternalServerError
}

// Limits on what the controller accepts.
const (
	minPrefixLen     = 8
	maxPrefixLen     = 30
	minMTU           = 1280
	maxMTU           = 9000
	maxNameLen       = 64
	maxHostnameLen   = 64
	maxVersionLen    = 64
	maxNoteLen       = 256
	maxEndpoints     = 16
	maxTokenLifetime = 365 * 24 * time.Hour
	defaultSyncWait  = 25 * time.Second
	natKeepalive     = 25
	burstPaceEach    = 600 * time.Microsecond
	burstPaceMax     = 3 * time.Second
	// reportEvery bounds how often a member may change what its peers see
	// of it: each change wakes the whole network. A roaming member
	// changes its endpoints a few times a minute at most.
	reportEvery = 2 * time.Second
)

// checkText checks a human-readable string: valid UTF-8, printable, at most
// max characters, no surrounding spaces. Its errors quote the string cut
// short.
func checkText(what, s string, min, max int) error {
	if !utf8.ValidString(s) {
		return badRequest("%s is not valid UTF-8", what)
	}
	n := utf8.RuneCountInString(s)
	if n < min || n > max {
		if min > 0 {
			return badRequest("%s %s: want %d to %d characters, got %d", what, quoteShort(s), min, max, n)
		}
		return badRequest("%s: want at most %d characters, got %d", what, max, n)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return badRequest("%s %s: contains the unprintable character %U", what, quoteShort(s), r)
		}
	}
	if strings.TrimSpace(s) != s {
		return badRequest("%s %s: must not start or end with a space", what, quoteShort(s))
	}
	return nil
}

func checkNetworkName(s string) error { return checkText("name", s, 1, maxNameLen) }

// checkPrefix checks that p is a canonical IPv4 prefix; what names it in
// errors ("cidr", "route dest").
func checkPrefix(what string, p netip.Prefix) error {
	if !p.IsValid() {
		return badRequest("%s is missing or not a CIDR (want e.g. 192.168.254.0/24)", what)
	}
	if p.Addr().Zone() != "" {
		return badRequest("%s %s: zones are not allowed", what, p)
	}
	if !p.Addr().Is4() {
		if p.Addr().Is4In6() {
			return badRequest("%s %s: write IPv4 networks as plain IPv4", what, p)
		}
		return badRequest("%s %s: IPv6 networks are not supported yet", what, p)
	}
	if m := p.Masked(); m != p {
		return badRequest("%s %s is not a network address; did you mean %s?", what, p, m)
	}
	return nil
}

// checkCIDR checks a network's CIDR on its own (overlaps are checked
// against the store).
func checkCIDR(p netip.Prefix) error {
	if err := checkPrefix("cidr", p); err != nil {
		return err
	}
	if b := p.Bits(); b < minPrefixLen || b > maxPrefixLen {
		return badRequest("cidr %s: prefix length must be %d to %d, got /%d", p, minPrefixLen, maxPrefixLen, b)
	}
	return nil
}

// checkMTU checks an MTU; 0 is left for the caller to default.
func checkMTU(mtu int) error {
	if mtu < minMTU || mtu > maxMTU {
		return badRequest("mtu %d: must be %d to %d", mtu, minMTU, maxMTU)
	}
	return nil
}

// broadcast returns the last address of an IPv4 prefix.
func broadcast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= uint32(1)<<(32-p.Bits()) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// checkHostAddress checks that a is a usable host address of cidr: IPv4,
// inside, and neither its network nor its broadcast address.
func checkHostAddress(what string, cidr netip.Prefix, a netip.Addr) error {
	switch {
	case !a.IsValid():
		return badRequest("%s is missing or not an IP address", what)
	case a.Zone() != "":
		return badRequest("%s %s: zones are not allowed", what, a)
	case !a.Is4():
		return badRequest("%s %s: only IPv4 addresses are supported", what, a)
	case !cidr.Contains(a):
		return badRequest("%s %s is outside the network %s", what, a, cidr)
	case a == cidr.Masked().Addr():
		return badRequest("%s %s is the network address of %s", what, a, cidr)
	case a == broadcast(cidr):
		return badRequest("%s %s is the broadcast address of %s", what, a, cidr)
	}
	return nil
}

// checkRoute checks a new route against its network's CIDR and existing
// routes.
func checkRoute(cidr netip.Prefix, existing []control.Route, r control.Route) error {
	if err := checkPrefix("route dest", r.Dest); err != nil {
		return err
	}
	if r.Dest.Overlaps(cidr) {
		return badRequest("route dest %s overlaps the network's own CIDR %s", r.Dest, cidr)
	}
	if sp, ok := control.SpecialRange(r.Dest); ok {
		return badRequest("route dest %s is inside %s (this network, loopback, link-local, multicast or reserved), which no route may take over on members", r.Dest, sp)
	}
	if err := checkHostAddress("route via", cidr, r.Via); err != nil {
		return err
	}
	for _, b := range r.Backups {
		if err := checkHostAddress("route backup", cidr, b); err != nil {
			return err
		}
	}
	if err := r.CheckFailover(cidr); err != nil {
		return badRequest("route %s: %v", r.Dest, err)
	}
	withBackups := 0
	for _, e := range existing {
		if e.Dest == r.Dest {
			return conflict("a route to %s already exists (via %s); replace it in one change (gate network route set, PUT), or delete it first", r.Dest, e.Via)
		}
		if len(e.Backups) > 0 {
			withBackups++
		}
	}
	if len(r.Backups) > 0 && withBackups >= control.MaxFailoverRoutes {
		return badRequest("route %s: the network has %d routes with backups already, the most it may", r.Dest, withBackups)
	}
	return nil
}

// createNetwork is a checked CreateNetworkRequest with defaults applied.
func checkCreateNetwork(req control.CreateNetworkRequest) (control.CreateNetworkRequest, error) {
	if err := checkNetworkName(req.Name); err != nil {
		return req, err
	}
	if err := checkCIDR(req.CIDR); err != nil {
		return req, err
	}
	if req.MTU == 0 {
		req.MTU = control.DefaultMTU
	}
	if err := checkMTU(req.MTU); err != nil {
		return req, err
	}
	return req, nil
}

func checkUpdateNetwork(req control.UpdateNetworkRequest) error {
	if req.Name != nil {
		if err := checkNetworkName(*req.Name); err != nil {
			return err
		}
	}
	if req.MTU != nil {
		if err := checkMTU(*req.MTU); err != nil {
			return err
		}
	}
	return nil
}

// checkPublicKey checks a WireGuard public key: base64 of 32 bytes.
func checkPublicKey(k string) error {
	if k == "" {
		return badRequest("public_key is missing (want the WireGuard public key, base64)")
	}
	b, err := base64.StdEncoding.DecodeString(k)
	if err != nil || len(b) != 32 {
		return badRequest("public_key %q: want base64 of 32 bytes (a WireGuard public key)", k)
	}
	return nil
}

func checkListenPort(p int) error {
	if p < 1 || p > 65535 {
		return badRequest("listen_port %d: must be 1 to 65535", p)
	}
	return nil
}

// checkEndpoints checks and normalises the endpoints a member reports.
// Each reaches every other member's WireGuard configuration, so only a
// plain unicast IP and a port pass: no IPv6 zone (free text, which would
// otherwise travel into other members' UAPI, logs and terminals), nothing
// a peer could not or should not send to (unspecified, multicast,
// broadcast, link-local: the cloud metadata service lives there). Errors name the endpoint by its position, never echo a zone.
func checkEndpoints(eps []netip.AddrPort) ([]netip.AddrPort, error) {
	if len(eps) > maxEndpoints {
		return nil, badRequest("endpoints: at most %d allowed, got %d", maxEndpoints, len(eps))
	}
	out := make([]netip.AddrPort, 0, len(eps))
	for i, ep := range eps {
		if why := endpointFault(ep); why != "" {
			return nil, badRequest("endpoints[%d]: %s", i, why)
		}
		a := ep.Addr().Unmap()
		out = append(out, netip.AddrPortFrom(a, ep.Port()))
	}
	return out, nil
}

// endpointFault says why ep is not an endpoint other members may be told
// to use, or "" when it is one.
func endpointFault(ep netip.AddrPort) string {
	a := ep.Addr().Unmap()
	switch {
	case !ep.IsValid():
		return "not an IP:port"
	case a.Zone() != "":
		return "an IPv6 zone (%...) is not allowed; want a plain IP:port"
	case ep.Port() == 0:
		return ep.String() + " has port 0"
	case a.IsUnspecified() || a.IsMulticast() || a == netip.IPv4Unspecified() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return ep.String() + " is not a unicast address"
	case a.IsLinkLocalUnicast():
		return ep.String() + " is a link-local address, which other members cannot reach"
	}
	return ""
}

// validEndpoints keeps the endpoints that endpointFault passes: what a
// database written before those checks holds is checked again as it is
// read, so it never reaches a member either.
func validEndpoints(eps []netip.AddrPort) []netip.AddrPort {
	return slices.DeleteFunc(eps, func(ep netip.AddrPort) bool { return endpointFault(ep) != "" })
}

func checkHostname(h string) error { return checkText("hostname", h, 0, maxHostnameLen) }
func checkVersion(v string) error  { return checkText("version", v, 0, maxVersionLen) }

// checkJoin checks a join request on its own (the token and the requested
// address are checked against the store).
func checkJoin(req control.JoinRequest) (control.JoinRequest, error) {
	if req.Token != "" {
		if err := control.CheckTokenSecret(req.Token); err != nil {
			return req, badRequest("%v", err)
		}
	}
	if err := checkPublicKey(req.PublicKey); err != nil {
		return req, err
	}
	if err := checkHostname(req.Hostname); err != nil {
		return req, err
	}
	if err := checkText("instance_id", req.InstanceID, 0, 128); err != nil {
		return req, err
	}
	if err := checkVersion(req.Version); err != nil {
		return req, err
	}
	if err := checkListenPort(req.ListenPort); err != nil {
		return req, err
	}
	eps, err := checkEndpoints(req.Endpoints)
	if err != nil {
		return req, err
	}
	req.Endpoints = eps
	if req.RequestedAddress.IsValid() && !req.RequestedAddress.Unmap().Is4() {
		return req, badRequest("requested_address %s: only IPv4 addresses are supported", req.RequestedAddress)
	}
	req.RequestedAddress = req.RequestedAddress.Unmap()
	return req, nil
}

// checkSync checks a sync request. Empty fields mean "unchanged": an empty
// public key, hostname or version, a zero listen port, and a null endpoint
// list (an empty list clears the endpoints).
func checkSync(req control.SyncRequest) (control.SyncRequest, error) {
	if req.PublicKey != "" {
		if err := checkPublicKey(req.PublicKey); err != nil {
			return req, err
		}
	}
	if err := checkHostname(req.Hostname); err != nil {
		return req, err
	}
	if err := checkVersion(req.Version); err != nil {
		return req, err
	}
	if req.ListenPort != 0 {
		if err := checkListenPort(req.ListenPort); err != nil {
			return req, err
		}
	}
	if req.Endpoints != nil {
		eps, err := checkEndpoints(req.Endpoints)
		if err != nil {
			return req, err
		}
		req.Endpoints = eps
	}
	switch w := time.Duration(req.Wait); {
	case w < 0:
		return req, badRequest("wait %s: must not be negative", w)
	case w == 0:
		req.Wait = control.Duration(defaultSyncWait)
	case w > control.MaxSyncWait:
		req.Wait = control.Duration(control.MaxSyncWait)
	}
	return req, nil
}

// checkCreateToken checks a token request on its own, with defaults applied
// (the address is checked against the network by the caller).
func checkCreateToken(req control.CreateTokenRequest) (control.CreateTokenRequest, error) {
	switch d := time.Duration(req.ExpiresIn); {
	case d == 0:
		req.ExpiresIn = control.Duration(control.DefaultTokenLifetime)
	case d < 0:
		return req, badRequest("expires_in %s: must be positive", d)
	case d > maxTokenLifetime:
		return req, badRequest("expires_in %s: at most %s (365 days)", d, maxTokenLifetime)
	}
	if err := checkText("note", req.Note, 0, maxNoteLen); err != nil {
		return req, err
	}
	tags, err := checkTags(req.Tags)
	if err != nil {
		return req, err
	}
	req.Tags = tags
	return req, nil
}
