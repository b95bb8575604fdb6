package control

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Route is a managed route: Dest is reached through the member whose overlay
// address is Via. Backups are members that serve Dest too, in order of
// preference after Via: members send to the most preferred gateway that is
// healthy (each gateway checks the route's Probes, what lies behind it),
// and move back to a more preferred one only once it has been healthy
// again for Failback.
//
// A member that knows nothing of backups (an older agent) reads Via alone,
// and the controller's peer entries carry Dest on Via's entry only, so it
// keeps working as before: through Via.
type Route struct {
	Dest     netip.Prefix `json:"dest"`
	Via      netip.Addr   `json:"via"`
	Backups  []netip.Addr `json:"backups,omitempty"`
	Failback Failback     `json:"failback,omitempty"`
	Probes   []Probe      `json:"probes,omitempty"`
}

// Bounds on a route's failover settings.
const (
	MaxBackups = 7 // so a route has at most 8 gateways
	// MaxFailoverRoutes bounds the routes with backups in one network: a
	// gateway's health answer lists them all.
	MaxFailoverRoutes = 64
	MaxProbes         = 4
	MinFailback       = time.Second
	MaxFailback       = time.Hour
	// DefaultFailback is how long a more preferred gateway must have been
	// healthy before members move back to it, when the route says nothing.
	DefaultFailback = 10 * time.Second
)

// Gateways is Via, then the backups: every gateway of the route, most
// preferred first.
func (r Route) Gateways() []netip.Addr {
	return append([]netip.Addr{r.Via}, r.Backups...)
}

// ServedBy reports whether a member with the addresses own is one of r's
// gateways: then it serves Dest itself and routes it nowhere.
func (r Route) ServedBy(own []netip.Prefix) bool {
	for _, a := range own {
		if slices.Contains(r.Gateways(), a.Addr()) {
			return true
		}
	}
	return false
}

// Equal reports whether r and o are the same route with the same settings.
func (r Route) Equal(o Route) bool {
	return r.Dest == o.Dest && r.Via == o.Via && slices.Equal(r.Backups, o.Backups) &&
		r.Failback == o.Failback && slices.Equal(r.Probes, o.Probes)
}

// String renders r as `gate network show` does: "172.16.0.0/16 via
// 10.99.0.11, then 10.99.0.12 (failback 10s, probe 172.16.10.5:22/tcp)".
func (r Route) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s via %s", r.Dest, r.Via)
	for _, a := range r.Backups {
		fmt.Fprintf(&b, ", then %s", a)
	}
	var extra []string
	if len(r.Backups) > 0 || r.Failback != 0 {
		extra = append(extra, "failback "+r.Failback.String())
	}
	for _, p := range r.Probes {
		extra = append(extra, "probe "+p.String())
	}
	if len(extra) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(extra, ", "))
	}
	return b.String()
}

// CheckFailover says what is wrong with r's backups, failback and probes
// in a network of cidr: each backup an address of the network, none twice
// and none Via; at most MaxBackups and MaxProbes; a failback of never or
// from MinFailback to MaxFailback (0: the default); each probe an address inside Dest. The controller
// checks a route with it before storing it, a member before using one.
func (r Route) CheckFailover(cidr netip.Prefix) error {
	if len(r.Backups) > MaxBackups {
		return fmt.Errorf("%d backups: a route has at most %d (%d gateways)", len(r.Backups), MaxBackups, MaxBackups+1)
	}
	for i, a := range r.Backups {
		switch {
		case !a.IsValid() || !a.Is4() || !cidr.Contains(a):
			return fmt.Errorf("backup %s is not an address of the network %s", a, cidr)
		case a == r.Via:
			return fmt.Errorf("backup %s is the route's via: a gateway is named once", a)
		case slices.Contains(r.Backups[:i], a):
			return fmt.Errorf("backup %s is named twice", a)
		}
	}
	if d := time.Duration(r.Failback); r.Failback != FailbackNever && d != 0 && (d < MinFailback || d > MaxFailback) {
		return fmt.Errorf("failback %s: want never or %s to %s", d, MinFailback, MaxFailback)
	}
	if len(r.Probes) > MaxProbes {
		return fmt.Errorf("%d probes: a route has at most %d", len(r.Probes), MaxProbes)
	}
	for i, p := range r.Probes {
		if err := p.check(); err != nil {
			return err
		}
		if !r.Dest.Contains(p.Addr) {
			return fmt.Errorf("probe %s: %s is not inside the route's dest %s: a probe checks what lies behind the gateways", p, p.Addr, r.Dest)
		}
		if slices.Contains(r.Probes[:i], p) {
			return fmt.Errorf("probe %s is named twice", p)
		}
	}
	return nil
}

// Failback is how long a more preferred gateway of a route must have been
// healthy again before members move back to it: 0 is DefaultFailback,
// FailbackNever is never (members stay on the gateway they moved to until
// it fails). The controller stores what the admin gave (0 when nothing).
type Failback time.Duration

// FailbackNever: members do not move back.
const FailbackNever Failback = -1

// Hold is the time members wait before moving back (false: never).
func (f Failback) Hold() (time.Duration, bool) {
	switch {
	case f == FailbackNever:
		return 0, false
	case f == 0:
		return DefaultFailback, true
	}
	return time.Duration(f), true
}

// String is "never" or the hold as Go writes a duration ("10s").
func (f Failback) String() string {
	d, ok := f.Hold()
	if !ok {
		return "never"
	}
	return d.String()
}

// ParseFailback reads "never", or a Go duration from MinFailback to
// MaxFailback. Moving back at once is not offered: a gateway that has just
// come back is the one most likely to fail again.
func ParseFailback(s string) (Failback, error) {
	if s == "never" {
		return FailbackNever, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < MinFailback || d > MaxFailback {
		return 0, fmt.Errorf("failback %s: want never or a duration from %s to %s, such as 10s", strconv.QuoteToASCII(s), MinFailback, MaxFailback)
	}
	return Failback(d), nil
}

// MarshalJSON writes f as ParseFailback reads it.
func (f Failback) MarshalJSON() ([]byte, error) { return json.Marshal(f.String()) }

// UnmarshalJSON reads what ParseFailback reads.
func (f *Failback) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("failback: want a string such as \"10s\" or \"never\"")
	}
	v, err := ParseFailback(s)
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// Probe is a target behind a route's gateways that each gateway checks, so
// that a gateway whose tunnel and controller connection are fine but which
// cannot reach the subnet is taken out of use: a TCP connect to Addr:Port,
// or an ICMP echo to Addr. Written "172.16.10.5:22/tcp" or
// "172.16.10.5/icmp".
type Probe struct {
	Proto string // "tcp" or "icmp"
	Addr  netip.Addr
	Port  uint16 // tcp only
}

// ParseProbe reads a probe as Probe describes it.
func ParseProbe(s string) (Probe, error) {
	bad := func(why string) (Probe, error) {
		return Probe{}, fmt.Errorf("probe %s: %s; want ADDR:PORT/tcp or ADDR/icmp", strconv.QuoteToASCII(s), why)
	}
	target, proto, ok := strings.Cut(s, "/")
	if !ok {
		return bad("no protocol")
	}
	var p Probe
	switch proto {
	case "tcp":
		ap, err := netip.ParseAddrPort(target)
		if err != nil {
			return bad("not an address and port")
		}
		p = Probe{Proto: proto, Addr: ap.Addr(), Port: ap.Port()}
	case "icmp":
		a, err := netip.ParseAddr(target)
		if err != nil {
			return bad("not an address")
		}
		p = Probe{Proto: proto, Addr: a}
	default:
		return bad("unknown protocol")
	}
	if err := p.check(); err != nil {
		return Probe{}, err
	}
	return p, nil
}

func (p Probe) check() error {
	switch {
	case p.Proto != "tcp" && p.Proto != "icmp":
		return fmt.Errorf("probe of protocol %s: want tcp or icmp", strconv.QuoteToASCII(p.Proto))
	case !p.Addr.IsValid() || !p.Addr.Is4():
		return fmt.Errorf("probe %s: want an IPv4 address", p)
	case p.Proto == "tcp" && p.Port == 0:
		return fmt.Errorf("probe %s: a tcp probe needs a port from 1 to 65535", p)
	case p.Proto == "icmp" && p.Port != 0:
		return fmt.Errorf("probe %s: an icmp probe takes no port", p)
	}
	return nil
}

// String writes p as ParseProbe reads it.
func (p Probe) String() string {
	if p.Proto == "tcp" {
		return netip.AddrPortFrom(p.Addr, p.Port).String() + "/tcp"
	}
	return p.Addr.String() + "/" + p.Proto
}

// MarshalText writes p as ParseProbe reads it.
func (p Probe) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads what ParseProbe reads.
func (p *Probe) UnmarshalText(b []byte) error {
	v, err := ParseProbe(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}
