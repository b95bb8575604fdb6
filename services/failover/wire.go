package failover

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/gatenet/gate/services/control"
)

// Port is the UDP port gateways answer on, on their overlay addresses
// only: below the WireGuard ports, which the agent hands out from 51820
// up (one a network).
const Port = 51819

// The messages are small and fixed: a question is its magic, a version
// and a nonce; an answer repeats the nonce and gives, for each route the
// gateway serves in that network, the route's destination, its state
// there and the gateway it takes for the active one (0.0.0.0: none yet).
// A node that starts takes the route where the gateways say it is, and
// fails back from there after the hold, as everyone else does.
const (
	askMagic    = "GTHQ"
	answerMagic = "GTHA"
	version     = 2
	askLen      = 4 + 1 + 8
	// MaxRoutes is the most routes one answer lists: every route with
	// backups of a network.
	MaxRoutes = control.MaxFailoverRoutes
	entryLen  = 4 + 1 + 1 + 4
)

// State is how a route works from a gateway.
type State uint8

// States a gateway reports.
const (
	OK         State = iota // it forwards into the route's subnet
	LANDown                 // its LAN link is down
	ProbeFails              // a probe target behind it does not answer
	NotServing              // it is not set up to serve this subnet
)

func (s State) String() string {
	switch s {
	case OK:
		return "works"
	case LANDown:
		return "its LAN link is down"
	case ProbeFails:
		return "a probe behind it fails"
	case NotServing:
		return "it does not serve the subnet"
	}
	return fmt.Sprintf("state %d", uint8(s))
}

// RouteState is one route in an answer.
type RouteState struct {
	Dest   netip.Prefix
	State  State
	Active netip.Addr // the gateway the answering one takes for active (invalid: none)
}

// appendAsk encodes a question.
func appendAsk(b []byte, nonce uint64) []byte {
	b = append(b, askMagic...)
	b = append(b, version)
	return binary.BigEndian.AppendUint64(b, nonce)
}

// parseAsk reads a question, and refuses anything else.
func parseAsk(b []byte) (uint64, error) {
	if len(b) != askLen || string(b[:4]) != askMagic || b[4] != version {
		return 0, errors.New("not a health question")
	}
	return binary.BigEndian.Uint64(b[5:]), nil
}

// appendAnswer encodes an answer (at most MaxRoutes routes, IPv4).
func appendAnswer(b []byte, nonce uint64, routes []RouteState) []byte {
	b = append(b, answerMagic...)
	b = append(b, version)
	b = binary.BigEndian.AppendUint64(b, nonce)
	routes = routes[:min(len(routes), MaxRoutes)]
	b = append(b, byte(len(routes)))
	for _, r := range routes {
		a := r.Dest.Addr().As4()
		b = append(b, a[:]...)
		b = append(b, byte(r.Dest.Bits()), byte(r.State))
		act := [4]byte{}
		if r.Active.Is4() {
			act = r.Active.As4()
		}
		b = append(b, act[:]...)
	}
	return b
}

// parseAnswer reads an answer: a known version, the length its count
// says, canonical IPv4 prefixes and known states; anything else is
// refused whole.
func parseAnswer(b []byte) (uint64, []RouteState, error) {
	const head = 4 + 1 + 8 + 1
	if len(b) < head || string(b[:4]) != answerMagic || b[4] != version {
		return 0, nil, errors.New("not a health answer")
	}
	nonce := binary.BigEndian.Uint64(b[5:])
	n := int(b[13])
	if n > MaxRoutes || len(b) != head+n*entryLen {
		return 0, nil, fmt.Errorf("health answer of %d bytes does not hold the %d routes it counts", len(b), n)
	}
	out := make([]RouteState, 0, n)
	for i := range n {
		e := b[head+i*entryLen:]
		bits := int(e[4])
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte(e[:4])), bits)
		if bits > 32 || p.Masked() != p {
			return 0, nil, fmt.Errorf("health answer: route %d is not a canonical IPv4 prefix", i)
		}
		if s := State(e[5]); s > NotServing {
			return 0, nil, fmt.Errorf("health answer: route %s in unknown state %d", p, s)
		}
		rs := RouteState{Dest: p, State: State(e[5])}
		if act := netip.AddrFrom4([4]byte(e[6:10])); !act.IsUnspecified() {
			rs.Active = act
		}
		out = append(out, rs)
	}
	return nonce, out, nil
}
