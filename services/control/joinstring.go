package control

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/gatenet/gate/services/names"
)

// JoinString is what a member is given to join a network:
//
//	gate://HOST:PORT/NETWORKID?pin=sha256:HEX[&token=SECRET]
//
// HOST:PORT is the controller, pin is the SHA-256 of the controller's public
// key (see Pin), token an optional join token. Without a token the member
// waits for an admin to allow it, unless the network allows members
// automatically.
type JoinString struct {
	Controller string // host:port
	NetworkID  string
	Pin        string // "sha256:" + 64 hex digits
	Token      string
}

// Scheme is the URL scheme of join strings and controller addresses.
const Scheme = "gate"

// String renders the join string.
func (j JoinString) String() string {
	u := url.URL{Scheme: Scheme, Host: j.Controller, Path: "/" + j.NetworkID}
	q := url.Values{}
	q.Set("pin", j.Pin)
	if j.Token != "" {
		q.Set("token", j.Token)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// ControllerAddress is a controller reference without a network:
// gate://HOST:PORT?pin=sha256:HEX.
func (j JoinString) ControllerAddress() string {
	return JoinString{Controller: j.Controller, Pin: j.Pin}.String()
}

// ParseJoinString parses a join string or, when network is optional, a bare
// controller address. Every error names the part that is wrong.
func ParseJoinString(s string) (JoinString, error) {
	return parse(s, true)
}

// ParseControllerAddress parses gate://HOST:PORT?pin=... (a network path is
// allowed and ignored).
func ParseControllerAddress(s string) (JoinString, error) {
	j, err := parse(s, false)
	j.NetworkID, j.Token = "", ""
	return j, err
}

func parse(s string, needNetwork bool) (JoinString, error) {
	var j JoinString
	s = strings.TrimSpace(s)
	u, err := url.Parse(s)
	if err != nil {
		return j, fmt.Errorf("join string: %v", err)
	}
	if u.Scheme != Scheme {
		return j, fmt.Errorf("join string: must start with %s://", Scheme)
	}
	if u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return j, fmt.Errorf("join string: unexpected user info, fragment or opaque part")
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" {
		return j, fmt.Errorf("join string: controller %q must be HOST:PORT", u.Host)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || port[0] == '+' {
		return j, fmt.Errorf("join string: controller port %q must be 1-65535", port)
	}
	// url.Parse lets %-escapes put any byte in the host (a C1 control,
	// invalid UTF-8, a space in an IPv6 zone): the host is dialled,
	// logged and shown, so it must be an IP address or a DNS name.
	if !names.DialHost(host) {
		return j, fmt.Errorf("join string: controller host %s must be an IP address (without a zone) or a DNS name", strconv.QuoteToASCII(host))
	}
	j.Controller = u.Host
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

// CheckTokenSecret checks the shape of a join token secret.
func CheckTokenSecret(s string) error {
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
