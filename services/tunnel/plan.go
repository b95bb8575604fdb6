package tunnel

import (
	"bufio"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Peer is one WireGuard peer as Gate wants it.
type Peer struct {
	PublicKey  Key
	Endpoint   netip.AddrPort // zero: none (the peer must contact us first)
	AllowedIPs []netip.Prefix
	Keepalive  int // persistent keepalive in seconds, 0 = off
}

// Config is the whole desired state of one device.
type Config struct {
	PrivateKey Key
	ListenPort int // 0: the kernel picks a port, Device.Port tells which
	Peers      []Peer
}

// PeerStatus is one peer as the device reports it.
type PeerStatus struct {
	PublicKey     Key
	Endpoint      netip.AddrPort
	AllowedIPs    []netip.Prefix
	Keepalive     int
	LastHandshake time.Time // zero: never
	RxBytes       uint64
	TxBytes       uint64
}

// Status is the state of a device as observed through the UAPI.
type Status struct {
	PublicKey  Key // derived from the device's private key; zero if it has none
	ListenPort int
	Peers      []PeerStatus
	// Observed is when the state was read. Plan compares handshake times
	// with it, which keeps Plan free of the clock; zero means "unknown"
	// and makes every handshake count as stale.
	Observed time.Time
}

// RoamingGrace is how recent a handshake must be for Plan to leave a peer's
// roamed endpoint alone. wireguard-go updates a peer's endpoint to the
// source of its latest authenticated packet (roaming); the controller's
// idea of the endpoint may be stale (NAT rebinding, a moved host), so while
// a session is alive Plan does not fight the device. 180 s is WireGuard's
// Reject-After-Time: with no handshake for that long there is no session
// left to protect, and the wanted endpoint is set again.
const RoamingGrace = 3 * time.Minute

// Plan returns the UAPI "set" text that takes a device from cur to want,
// or "" when nothing needs to change. It is pure: cur must come from
// IpcGet (Device.Status) with Observed set, want must be checked
// (Device.Configure does).
//
// The text is a delta, never replace_peers (which would drop every
// session): private_key when the key changes; listen_port when a fixed
// port is wanted and differs; a remove block for each peer not wanted
// (sorted by key); the whole block for each new peer; for each existing
// peer, update_only=true and only the fields that changed:
//   - endpoint, when the wanted one is set and differs and either the peer
//     has none yet or its last handshake is older than RoamingGrace;
//   - replace_allowed_ips=true and the allowed_ip lines, when the set of
//     (masked) prefixes differs;
//   - persistent_keepalive_interval, when it differs.
//
// The text never starts with a blank line: wireguard-go stops reading at
// the first blank line and would silently ignore the rest.
func Plan(cur Status, want Config) string {
	var b strings.Builder
	line := func(k, v string) {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
		b.WriteByte('\n')
	}

	if wantPub := want.PrivateKey.Public(); wantPub != cur.PublicKey {
		line("private_key", want.PrivateKey.hex())
	}
	if want.ListenPort != 0 && want.ListenPort != cur.ListenPort {
		line("listen_port", strconv.Itoa(want.ListenPort))
	}

	wanted := make(map[Key]bool, len(want.Peers))
	for _, p := range want.Peers {
		wanted[p.PublicKey] = true
	}
	have := make(map[Key]PeerStatus, len(cur.Peers))
	var gone []Key
	for _, p := range cur.Peers {
		have[p.PublicKey] = p
		if !wanted[p.PublicKey] {
			gone = append(gone, p.PublicKey)
		}
	}
	slices.SortFunc(gone, func(a, b Key) int { return strings.Compare(string(a[:]), string(b[:])) })
	for _, k := range gone {
		line("public_key", k.hex())
		line("remove", "true")
	}

	for _, p := range want.Peers {
		allowed := maskedSet(p.AllowedIPs)
		// wireguard-go reports IPv4 endpoints unmapped.
		p.Endpoint = netip.AddrPortFrom(p.Endpoint.Addr().Unmap(), p.Endpoint.Port())
		c, ok := have[p.PublicKey]
		if !ok {
			line("public_key", p.PublicKey.hex())
			if p.Endpoint.IsValid() {
				line("endpoint", endpointText(p.Endpoint))
			}
			if p.Keepalive != 0 {
				line("persistent_keepalive_interval", strconv.Itoa(p.Keepalive))
			}
			line("replace_allowed_ips", "true")
			for _, a := range allowed {
				line("allowed_ip", a.String())
			}
			continue
		}
		var upd []string
		if p.Endpoint.IsValid() && p.Endpoint != c.Endpoint && !recentHandshake(c, cur.Observed) {
			upd = append(upd, "endpoint="+endpointText(p.Endpoint))
		}
		if !slices.Equal(allowed, maskedSet(c.AllowedIPs)) {
			upd = append(upd, "replace_allowed_ips=true")
			for _, a := range allowed {
				upd = append(upd, "allowed_ip="+a.String())
			}
		}
		if p.Keepalive != c.Keepalive {
			upd = append(upd, "persistent_keepalive_interval="+strconv.Itoa(p.Keepalive))
		}
		if len(upd) == 0 {
			continue
		}
		line("public_key", p.PublicKey.hex())
		line("update_only", "true")
		for _, u := range upd {
			b.WriteString(u)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// recentHandshake reports whether p had a handshake within RoamingGrace of
// the observation time, i.e. whether it has a live session whose endpoint
// Plan should not override.
func recentHandshake(p PeerStatus, observed time.Time) bool {
	if !p.Endpoint.IsValid() || p.LastHandshake.IsZero() || observed.IsZero() {
		return false
	}
	return observed.Sub(p.LastHandshake) < RoamingGrace
}

// maskedSet returns the prefixes masked (as wireguard-go stores them),
// sorted and without duplicates.
func maskedSet(ps []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Masked())
	}
	slices.SortFunc(out, comparePrefix)
	return slices.Compact(out)
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// PeerError lists the peers Configure left out of a configuration, each
// with why. The rest of the configuration was applied: one bad peer (a key
// two members claim, an endpoint that is not a plain IP:port) must cost
// that peer, never the whole network.
type PeerError struct {
	Device  string
	Dropped []DroppedPeer
}

// DroppedPeer is one peer left out, and why.
type DroppedPeer struct {
	PublicKey Key // zero when the peer had none
	Reason    string
}

func (e *PeerError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "configuring %s: %d peer(s) left out:", e.Device, len(e.Dropped))
	for _, d := range e.Dropped {
		fmt.Fprintf(&b, " %s (%s);", d.PublicKey, d.Reason)
	}
	return strings.TrimSuffix(b.String(), ";")
}

// check splits a Config into what can be applied and what cannot, before
// it is planned. A device-level fault (no private key, a listen port out
// of range) is an error and nothing is applied. A peer wireguard-go would
// reject half way through a set, or that would make the configuration
// ambiguous, is left out of the returned Config and listed in dropped:
//   - no public key, or the device's own key;
//   - a key listed more than once: every peer with it goes, since which of
//     them holds the key cannot be told here, and keeping any one would let
//     a member that copied another's key take its traffic;
//   - a keepalive out of range, an endpoint that is not a plain unicast
//     IP:port (an IPv6 zone, port 0, unspecified or multicast);
//   - an invalid allowed IP, or one that another peer also claims (both
//     go, for the same reason as keys).
func check(cfg Config) (Config, []DroppedPeer, error) {
	if cfg.PrivateKey.IsZero() {
		return Config{}, nil, fmt.Errorf("no private key")
	}
	if cfg.ListenPort < 0 || cfg.ListenPort > 65535 {
		return Config{}, nil, fmt.Errorf("listen port %d out of range 0-65535", cfg.ListenPort)
	}
	self := cfg.PrivateKey.Public()
	keys := make(map[Key]int, len(cfg.Peers))
	owners := make(map[netip.Prefix]map[Key]bool)
	for _, p := range cfg.Peers {
		keys[p.PublicKey]++
		for _, a := range p.AllowedIPs {
			if a.IsValid() {
				if owners[a.Masked()] == nil {
					owners[a.Masked()] = map[Key]bool{}
				}
				owners[a.Masked()][p.PublicKey] = true
			}
		}
	}
	var dropped []DroppedPeer
	out := cfg
	out.Peers = make([]Peer, 0, len(cfg.Peers))
	for _, p := range cfg.Peers {
		if why := peerFault(p, self, keys, owners); why != "" {
			dropped = append(dropped, DroppedPeer{PublicKey: p.PublicKey, Reason: why})
			continue
		}
		out.Peers = append(out.Peers, p)
	}
	return out, dropped, nil
}

// peerFault says what is wrong with p, or "" when nothing is.
func peerFault(p Peer, self Key, keys map[Key]int, owners map[netip.Prefix]map[Key]bool) string {
	switch {
	case p.PublicKey.IsZero():
		return "no public key"
	case p.PublicKey == self:
		return "is this device's own key"
	case keys[p.PublicKey] > 1:
		return fmt.Sprintf("key listed %d times", keys[p.PublicKey])
	case p.Keepalive < 0 || p.Keepalive > 65535:
		return fmt.Sprintf("keepalive %d out of range 0-65535", p.Keepalive)
	}
	if p.Endpoint.IsValid() {
		if why := endpointFault(p.Endpoint); why != "" {
			return why
		}
	}
	for _, a := range p.AllowedIPs {
		if !a.IsValid() {
			return "invalid allowed IP"
		}
		if o := owners[a.Masked()]; len(o) > 1 {
			return fmt.Sprintf("allowed IP %s is claimed by %d peers", a.Masked(), len(o))
		}
	}
	return ""
}

// endpointFault says why ep cannot be a peer's endpoint, or "" when it
// can: it must be a plain unicast IP and a port.
func endpointFault(ep netip.AddrPort) string {
	a := ep.Addr()
	switch {
	case a.Zone() != "":
		return "endpoint has an IPv6 zone; want a plain IP:port"
	case ep.Port() == 0:
		return "endpoint has no port"
	case a.IsUnspecified() || a.IsMulticast():
		return "endpoint is not a unicast address"
	}
	return ""
}

// endpointText renders an endpoint for the UAPI from its typed value: the
// address and port only, never a zone (check refuses those; this makes
// sure no text but an address and a number can ever reach the UAPI).
func endpointText(ep netip.AddrPort) string {
	return netip.AddrPortFrom(ep.Addr().WithZone(""), ep.Port()).String()
}

// parseStatus parses the text of a UAPI "get" operation (IpcGet).
func parseStatus(text string, observed time.Time) (Status, error) {
	st := Status{Observed: observed}
	var peer *PeerStatus
	var hsSec, hsNsec int64
	flush := func() {
		if peer == nil {
			return
		}
		if hsSec != 0 || hsNsec != 0 {
			peer.LastHandshake = time.Unix(hsSec, hsNsec)
		}
		st.Peers = append(st.Peers, *peer)
		peer, hsSec, hsNsec = nil, 0, 0
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		ln := sc.Text()
		if ln == "" {
			break
		}
		k, v, ok := strings.Cut(ln, "=")
		if !ok {
			return Status{}, fmt.Errorf("UAPI line %q: no '='", ln)
		}
		var err error
		switch k {
		case "private_key":
			var priv Key
			if priv, err = parseHexKey(v); err == nil {
				st.PublicKey = priv.Public()
			}
		case "listen_port":
			st.ListenPort, err = strconv.Atoi(v)
		case "public_key":
			flush()
			peer = new(PeerStatus)
			peer.PublicKey, err = parseHexKey(v)
		case "fwmark", "preshared_key", "protocol_version", "errno":
			// Not Gate's business (errno=0 ends a socket reply).
		default:
			if peer == nil {
				return Status{}, fmt.Errorf("UAPI line %q: unknown device key", ln)
			}
			err = parsePeerLine(peer, k, v, &hsSec, &hsNsec)
		}
		if err != nil {
			return Status{}, fmt.Errorf("UAPI key %s: %w", k, err)
		}
	}
	flush()
	return st, sc.Err()
}

func parsePeerLine(p *PeerStatus, k, v string, hsSec, hsNsec *int64) error {
	var err error
	switch k {
	case "endpoint":
		var ap netip.AddrPort
		ap, err = netip.ParseAddrPort(v)
		p.Endpoint = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case "allowed_ip":
		var pfx netip.Prefix
		if pfx, err = netip.ParsePrefix(v); err == nil {
			p.AllowedIPs = append(p.AllowedIPs, pfx)
		}
	case "persistent_keepalive_interval":
		p.Keepalive, err = strconv.Atoi(v)
	case "last_handshake_time_sec":
		*hsSec, err = strconv.ParseInt(v, 10, 64)
	case "last_handshake_time_nsec":
		*hsNsec, err = strconv.ParseInt(v, 10, 64)
	case "rx_bytes":
		p.RxBytes, err = strconv.ParseUint(v, 10, 64)
	case "tx_bytes":
		p.TxBytes, err = strconv.ParseUint(v, 10, 64)
	default:
		err = fmt.Errorf("unknown peer key")
	}
	return err
}
