package control

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gatenet/gate/services/names"
)

// JoinString is what a member is given to join a network:
//
//	gate://HOST:PORT[,HOST:PORT...]/NETWORKID?pin=sha256:HEX[&token=SECRET]
//
// HOST:PORT is the controller, pin is the SHA-256 of the controller's public
// key (see Pin), token an optional join token. Without a token the member
// waits for an admin to allow it, unless the network allows members
// automatically.
//
// A controller run as several replicas (one key, so one pin) is listed by
// all its addresses, comma-separated, at most MaxControllers: a member
// uses any of them, and every one must present the pinned key. Controller
// is the first, Replicas the others in order; a join string with one
// address has no Replicas and reads and renders as it always has.
type JoinString struct {
	Controller string   // host:port, the first (or only) address
	Replicas   []string // host:port, the addresses after Controller; nil for one
	NetworkID  string
	Pin        string // "sha256:" + 64 hex digits
	Token      string
}

// MaxControllers is the most controller addresses a join string or a
// controller address lists.
const MaxControllers = 8

// Scheme is the URL scheme of join strings and controller addresses.
const Scheme = "gate"

// Controllers returns every controller address in order: Controller, then
// Replicas (nil when Controller is "").
func (j JoinString) Controllers() []string {
	if j.Controller == "" {
		return nil
	}
	return append([]string{j.Controller}, j.Replicas...)
}

// Equal reports whether j and k are the same join string.
func (j JoinString) Equal(k JoinString) bool {
	return j.Controller == k.Controller && slices.Equal(j.Replicas, k.Replicas) &&
		j.NetworkID == k.NetworkID && j.Pin == k.Pin && j.Token == k.Token
}

// String renders the join string, its controller addresses comma-separated.
func (j JoinString) String() string {
	u := url.URL{Scheme: Scheme, Host: strings.Join(j.Controllers(), ","), Path: "/" + j.NetworkID}
	q := url.Values{}
	q.Set("pin", j.Pin)
	if j.Token != "" {
		q.Set("token", j.Token)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// ControllerAddress is a controller reference without a network:
// gate://HOST:PORT[,HOST:PORT...]?pin=sha256:HEX.
func (j JoinString) ControllerAddress() string {
	return JoinString{Controller: j.Controller, Replicas: j.Replicas, Pin: j.Pin}.String()
}

// ParseJoinString parses a join string or, when network is optional, a bare
// controller address. Every error names the part that is wrong.
func ParseJoinString(s string) (JoinString, error) {
	return parse(s, true)
}

// ParseControllerAddress parses gate://HOST:PORT[,HOST:PORT...]?pin=... (a
// network path is allowed and ignored).
func ParseControllerAddress(s string) (JoinString, error) {
	j, err := parse(s, false)
	j.NetworkID, j.Token = "", ""
	return j, err
}

func parse(s string, needNetwork bool) (JoinString, error) {
	var j JoinString
	s = strings.TrimSpace(s)
	// url.Parse refuses a list of hosts: it reads s with the first address
	// alone, and each further one is read on its own (controllerAt).
	one, list := splitControllers(s)
	var hosts []string
	if list != nil {
		if !strings.EqualFold(s[:strings.Index(s, "://")], Scheme) {
			return j, fmt.Errorf("join string: must start with %s://", Scheme)
		}
		var err error
		if hosts, err = controllerList(list); err != nil {
			return j, err
		}
	}
	u, err := url.Parse(one)
	if err != nil {
		return j, fmt.Errorf("join string: %v", urlError(err))
	}
	if u.Scheme != Scheme {
		return j, fmt.Errorf("join string: must start with %s://", Scheme)
	}
	if u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return j, fmt.Errorf("join string: unexpected user info, fragment or opaque part")
	}
	if list == nil {
		hosts = []string{u.Host}
	}
	seen := make(map[string]int, len(hosts))
	for k, h := range hosts {
		if err := checkController(h); err != nil {
			if len(hosts) == 1 {
				return j, fmt.Errorf("join string: controller %v", err)
			}
			return j, fmt.Errorf("join string: controller %s (address %d of %d): %v", strconv.QuoteToASCII(h), k+1, len(hosts), err)
		}
		key := controllerKey(h)
		if at, dup := seen[key]; dup {
			return j, fmt.Errorf("join string: controller %s is listed twice (addresses %d and %d)", strconv.QuoteToASCII(h), at+1, k+1)
		}
		seen[key] = k
	}
	j.Controller = hosts[0]
	if len(hosts) > 1 {
		j.Replicas = hosts[1:]
	}
	path := strings.TrimPrefix(u.Path, "/")
	switch {
	case path == "" && needNetwork:
		return j, fmt.Errorf("join string: missing network ID after the controller (gate://HOST:PORT/NETWORKID?pin=...)")
	case path != "":
		id := NormalizeID(path)
		if err := CheckNetworkID(id); err != nil {
			return j, fmt.Errorf("join string: %w", err)
		}
		j.NetworkID = id
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return j, fmt.Errorf("join string: query: %v", err)
	}
	for k, v := range q {
		if len(v) != 1 {
			return j, fmt.Errorf("join string: %q given %d times", k, len(v))
		}
		switch k {
		case "pin":
			pin, err := ParsePin(v[0])
			if err != nil {
				return j, fmt.Errorf("join string: %w", err)
			}
			j.Pin = pin
		case "token":
			if err := CheckTokenSecret(v[0]); err != nil {
				return j, fmt.Errorf("join string: %w", err)
			}
			j.Token = v[0]
		default:
			return j, fmt.Errorf("join string: unknown parameter %q (want pin, token)", k)
		}
	}
	if j.Pin == "" {
		return j, fmt.Errorf("join string: missing pin=sha256:... (the controller's key fingerprint)")
	}
	return j, nil
}

// splitControllers finds the authority of s as url.Parse does (after
// SCHEME://, up to the first /, ? or #) and, when it lists several
// addresses, returns s with the first alone in their place, and the list
// as written. Otherwise it returns s and nil.
func splitControllers(s string) (string, []string) {
	i := strings.Index(s, "://")
	if i <= 0 || !isScheme(s[:i]) {
		return s, nil
	}
	start := i + len("://")
	end := len(s)
	if k := strings.IndexAny(s[start:], "/?#"); k >= 0 {
		end = start + k
	}
	auth := s[start:end]
	if !strings.Contains(auth, ",") {
		return s, nil
	}
	// Bounded before it is split: a hostile list of many commas costs
	// no more than a list one longer than allowed.
	list := strings.SplitN(auth, ",", MaxControllers+1)
	return s[:start] + list[0] + s[end:], list
}

// isScheme reports whether s is a URL scheme as url.Parse reads one.
func isScheme(s string) bool {
	for i, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// controllerList checks the shape of a list of controller addresses, as
// written, and returns each as url.Parse reads a host, for
// checkController.
func controllerList(list []string) ([]string, error) {
	if len(list) > MaxControllers {
		return nil, fmt.Errorf("join string: more than %d controller addresses", MaxControllers)
	}
	for k, a := range list {
		if a == "" {
			return nil, fmt.Errorf("join string: controller address %d of %d is empty (separate addresses with one comma, no spaces)", k+1, len(list))
		}
	}
	hosts := make([]string, 0, len(list))
	for k, a := range list {
		h, err := controllerAt(a)
		if err != nil {
			return nil, fmt.Errorf("join string: controller %s (address %d of %d): %v", strconv.QuoteToASCII(a), k+1, len(list), err)
		}
		hosts = append(hosts, h)
	}
	return hosts, nil
}

// controllerAt reads one address of a list as url.Parse reads the host of
// gate://ADDRESS, with the same checks.
func controllerAt(a string) (string, error) {
	u, err := url.Parse(Scheme + "://" + a)
	if err != nil {
		return "", urlError(err)
	}
	if u.User != nil {
		return "", fmt.Errorf("unexpected user info")
	}
	return u.Host, nil
}

// urlError is what url.Parse found wrong, without the URL it quotes (a join
// string may carry a token).
func urlError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// checkController checks one controller address as url.Parse read it: a
// host and a port, the host an IP address or a DNS name. Its errors follow
// the word "controller".
func checkController(hostport string) error {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || host == "" {
		return fmt.Errorf("%q must be HOST:PORT", hostport)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || port[0] == '+' {
		return fmt.Errorf("port %q must be 1-65535", port)
	}
	// url.Parse lets %-escapes put any byte in the host (a C1 control,
	// invalid UTF-8, a space in an IPv6 zone): the host is dialled,
	// logged and shown, so it must be an IP address or a DNS name.
	if !names.DialHost(host) {
		return fmt.Errorf("host %s must be an IP address (without a zone) or a DNS name", strconv.QuoteToASCII(host))
	}
	return nil
}

// controllerKey is a checked address as one destination: two that differ
// only in the case of a name, the spelling of an IP address or leading
// zeros of the port are the same.
func controllerKey(hostport string) string {
	host, port, _ := net.SplitHostPort(hostport)
	p, _ := strconv.Atoi(port)
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.String()
	} else {
		host = strings.ToLower(host)
	}
	return net.JoinHostPort(host, strconv.Itoa(p))
}

// CheckTokenSecret checks the shape of a join token secret. An admin
// token is refused for what it is (AdminTokenPrefix), wherever a join
// token is taken: it gives no member access, and it must not travel in
// user-data or join strings.
func CheckTokenSecret(s string) error {
	if strings.HasPrefix(s, AdminTokenPrefix) {
		return errors.New("token: this is an admin token (" + AdminTokenPrefix + "...), not a join token; never give it to a node, and revoke it if it was (gate admin token revoke ID)")
	}
	if len(s) < 16 || len(s) > 128 {
		return fmt.Errorf("token: want 16-128 characters, got %d", len(s))
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("token: invalid character %q", c)
		}
	}
	return nil
}
