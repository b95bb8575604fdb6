package policy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/gatenet/gate/services/names"
)

// Limits on what a rule, a policy and a compiled Ruleset may hold.
const (
	MaxRuleBytes = 1024 // one rule's text
	MaxItems     = 64   // selectors in a rule's from, in its to, services in its on
	MaxNoteBytes = 200  // a rule's note
	MaxRules     = 1000 // rules in a network's policy
)

// Action is what a rule does with the packets it matches.
type Action uint8

// The two actions. The zero Action is neither, and no valid rule has it.
const (
	Allow Action = iota + 1
	Deny
)

func (a Action) String() string {
	switch a {
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// Kind is the kind of a Selector.
type Kind uint8

// The kinds of selector, as the package doc describes them.
const (
	KindAny     Kind = iota + 1 // any
	KindMembers                 // members
	KindTag                     // tag:NAME
	KindMember                  // member:NODEID
	KindCIDR                    // a prefix
)

// Selector is one of the things a rule's from or to names: a set of
// addresses that depends on the network (any, members, tag:NAME,
// member:NODEID) or a fixed prefix. It is comparable: two selectors are
// equal when they select the same way.
type Selector struct {
	Kind   Kind
	Name   string       // KindTag: the tag; KindMember: the node ID
	Prefix netip.Prefix // KindCIDR
}

// String is the selector as a rule writes it. A prefix of a single
// address is written as the bare address.
func (s Selector) String() string { return string(s.appendText(nil)) }

func (s Selector) appendText(b []byte) []byte {
	switch s.Kind {
	case KindAny:
		return append(b, "any"...)
	case KindMembers:
		return append(b, "members"...)
	case KindTag:
		return append(append(b, "tag:"...), s.Name...)
	case KindMember:
		return append(append(b, "member:"...), s.Name...)
	case KindCIDR:
		if s.Prefix.IsSingleIP() {
			return s.Prefix.Addr().AppendTo(b)
		}
		return s.Prefix.AppendTo(b)
	}
	return fmt.Appendf(b, "Selector(%d)", uint8(s.Kind))
}

// ParseSelector reads one selector: any, members, tag:NAME,
// member:NODEID, or a canonical prefix or bare address.
func ParseSelector(s string) (Selector, error) {
	switch {
	case s == "any":
		return Selector{Kind: KindAny}, nil
	case s == "members":
		return Selector{Kind: KindMembers}, nil
	case strings.HasPrefix(s, "tag:"):
		t, ok := names.Tag(s[len("tag:"):])
		if !ok {
			return Selector{}, fmt.Errorf("%s: a tag is 1 to %d lower-case letters, digits and hyphens, starting with a letter and not ending with a hyphen", quote(s), names.MaxTag)
		}
		return Selector{Kind: KindTag, Name: t}, nil
	case strings.HasPrefix(s, "member:"):
		id := strings.ToLower(s[len("member:"):])
		if !isNodeID(id) {
			return Selector{}, fmt.Errorf("%s: want member: and a node ID, 10 hex digits", quote(s))
		}
		return Selector{Kind: KindMember, Name: id}, nil
	}
	if p, ok, err := parsePrefix(s); ok {
		if err != nil {
			return Selector{}, err
		}
		return Selector{Kind: KindCIDR, Prefix: p}, nil
	}
	if lower := strings.ToLower(s); lower != s {
		if sel, err := ParseSelector(lower); err == nil && sel.Kind != KindCIDR {
			return Selector{}, fmt.Errorf("want a selector, got %s (keywords are lower case: %s)", quote(s), sel)
		}
	}
	return Selector{}, fmt.Errorf("want a selector (any, members, tag:NAME, member:NODEID, or an address or CIDR), got %s", quote(s))
}

// parsePrefix reads a prefix or a bare address. ok says whether s looks
// like one at all (holds a '.' or ':' and starts with a hex digit or
// ':'), so that a caller can say something else about a word that does
// not; err says what is wrong with one that does.
func parsePrefix(s string) (p netip.Prefix, ok bool, err error) {
	if s == "" || !strings.ContainsAny(s, ".:") || !isHexDigit(s[0]) && s[0] != ':' {
		return netip.Prefix{}, false, nil
	}
	if strings.Contains(s, "/") {
		p, err = netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, true, fmt.Errorf("%s is not a CIDR (want an address and a prefix length, such as 10.1.0.0/16)", quote(s))
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, true, fmt.Errorf("%s is not an address or a CIDR", quote(s))
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if err := checkPrefix(p); err != nil {
		return netip.Prefix{}, true, err
	}
	return p, true, nil
}

// checkPrefix is what every prefix in a rule or a Ruleset must be:
// valid, canonical (no bits set past its length), and not an IPv4 address
// written as IPv6 (which would never match an IPv4 packet).
func checkPrefix(p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return fmt.Errorf("%s is not a valid prefix", p)
	case p.Addr().Is4In6():
		return fmt.Errorf("%s is IPv4 written as IPv6: write it as IPv4", p)
	case p != p.Masked():
		return fmt.Errorf("%s is not a canonical prefix: write %s", p, p.Masked())
	}
	return nil
}

// Proto is an IP protocol number, as a packet carries it.
type Proto uint8

// The protocols rules name. A Service whose Proto is AnyProto matches
// every protocol; one whose Proto is ICMP matches ICMPv6 too.
const (
	AnyProto Proto = 0
	ICMP     Proto = 1
	TCP      Proto = 6
	UDP      Proto = 17
	ICMPv6   Proto = 58
)

func (p Proto) String() string {
	switch p {
	case AnyProto:
		return "any"
	case ICMP:
		return "icmp"
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case ICMPv6:
		return "icmpv6"
	}
	return strconv.Itoa(int(p))
}

// ParseProto reads a packet's protocol as a person names it: tcp, udp,
// icmp, icmpv6, or a protocol number from 0 to 255.
func ParseProto(s string) (Proto, error) {
	switch s {
	case "tcp":
		return TCP, nil
	case "udp":
		return UDP, nil
	case "icmp":
		return ICMP, nil
	case "icmpv6":
		return ICMPv6, nil
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("protocol %s: want tcp, udp, icmp, icmpv6 or a number from 0 to 255", quote(s))
	}
	return Proto(n), nil
}

// Service is one protocol and range of destination ports that a rule
// names. Proto is AnyProto, TCP, UDP or ICMP. Lo and Hi, for TCP and UDP
// only, are the first and last port of the range, both 0 for every port.
type Service struct {
	Proto  Proto
	Lo, Hi uint16
}

// String is the service as a rule writes it: tcp/5432, tcp/8000-8100,
// tcp, icmp, any.
func (s Service) String() string { return string(s.appendText(nil)) }

func (s Service) appendText(b []byte) []byte {
	b = append(b, s.Proto.String()...)
	if s.Lo == 0 && s.Hi == 0 {
		return b
	}
	b = strconv.AppendUint(append(b, '/'), uint64(s.Lo), 10)
	if s.Hi != s.Lo {
		b = strconv.AppendUint(append(b, '-'), uint64(s.Hi), 10)
	}
	return b
}

// MarshalText implements encoding.TextMarshaler: the service's String.
func (s Service) MarshalText() ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return []byte(s.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler, as ParseService.
func (s *Service) UnmarshalText(b []byte) error {
	v, err := ParseService(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseService reads one service: tcp/PORT, tcp/LO-HI, udp/PORT,
// udp/LO-HI, tcp, udp, icmp or any.
func ParseService(s string) (Service, error) {
	name, ports, hasPorts := strings.Cut(s, "/")
	var v Service
	switch name {
	case "any":
		v.Proto = AnyProto
	case "icmp":
		v.Proto = ICMP
	case "tcp":
		v.Proto = TCP
	case "udp":
		v.Proto = UDP
	default:
		if lower := strings.ToLower(name); lower != name {
			if _, err := ParseService(strings.ToLower(s)); err == nil {
				return Service{}, fmt.Errorf("want a service, got %s (keywords are lower case: %s)", quote(s), strings.ToLower(s))
			}
		}
		return Service{}, fmt.Errorf("want a service (tcp/PORT, tcp/LO-HI, the same for udp, tcp, udp, icmp or any), got %s", quote(s))
	}
	if !hasPorts {
		return v, nil
	}
	if v.Proto != TCP && v.Proto != UDP {
		return Service{}, fmt.Errorf("%s: only tcp and udp take ports", quote(s))
	}
	lo, hi, isRange := strings.Cut(ports, "-")
	var err error
	if v.Lo, err = parsePort(s, lo); err != nil {
		return Service{}, err
	}
	v.Hi = v.Lo
	if isRange {
		if v.Hi, err = parsePort(s, hi); err != nil {
			return Service{}, err
		}
		if v.Lo > v.Hi {
			return Service{}, fmt.Errorf("%s: the range runs backwards: write %s/%d-%d", quote(s), name, v.Hi, v.Lo)
		}
	}
	return v, nil
}

// parsePort reads one port of service s.
func parsePort(s, port string) (uint16, error) {
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%s: want a port from 1 to 65535, got %s", quote(s), quote(port))
	}
	return uint16(n), nil
}

// check says what is wrong with a service built by hand (or decoded from
// a Ruleset) that ParseService would not give.
func (s Service) check() error {
	switch s.Proto {
	case TCP, UDP:
		if (s.Lo == 0) != (s.Hi == 0) || s.Lo > s.Hi {
			return fmt.Errorf("service %s: bad port range %d-%d", s.Proto, s.Lo, s.Hi)
		}
	case AnyProto, ICMP:
		if s.Lo != 0 || s.Hi != 0 {
			return fmt.Errorf("service %s takes no ports", s.Proto)
		}
	default:
		return fmt.Errorf("service of protocol %d: rules name only tcp, udp, icmp and any", s.Proto)
	}
	return nil
}

// matches says whether a packet of protocol proto to port matches s.
func (s Service) matches(proto Proto, port uint16) bool {
	switch {
	case s.Proto == AnyProto:
		return true
	case s.Proto == ICMP:
		return proto == ICMP || proto == ICMPv6
	case s.Proto != proto:
		return false
	}
	return s.Lo == 0 && s.Hi == 0 || s.Lo <= port && port <= s.Hi
}

// isNodeID says whether s is a node ID as the controller writes one: 10
// lower-case hex digits.
func isNodeID(s string) bool {
	if len(s) != 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHexDigit(s[i]) || 'A' <= s[i] && s[i] <= 'F' {
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// quote renders a word or a rule from outside for an error message:
// quoted, in printable ASCII, and cut short when long.
func quote(s string) string {
	const max = 100
	if len(s) > max {
		return strconv.QuoteToASCII(s[:max]) + "..."
	}
	return strconv.QuoteToASCII(s)
}
