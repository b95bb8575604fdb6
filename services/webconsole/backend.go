package webconsole

import (
	"context"
	"net/netip"
	"time"

	"github.com/gatenet/gate/services/control"
)

// Backend is the controller, as the console needs it: sign-ins and
// sessions, the admin API as a signed-in person, and word of changes.
type Backend interface {
	// SignIn checks an admin token and opens a session for it, from
	// remote; the session's Secret is the cookie's value, given this
	// once. A token that is not one is control.APIError 401.
	SignIn(ctx context.Context, token string, remote netip.Addr) (Session, error)
	// Session returns the session whose cookie secret is secret, with
	// its token's role and scope as they are now, and a client that calls
	// the admin API as that session from remote. A session that ended
	// (signed out, expired, idle too long, its token revoked or expired)
	// is control.APIError 401, saying why when the secret was right.
	// touch counts the request as the session's use (against
	// IdleTimeout): a person's, not a live page's own refresh.
	Session(ctx context.Context, secret string, remote netip.Addr, touch bool) (Session, *control.Client, error)
	// SignOut ends the session whose cookie secret is secret, on the
	// server: the cookie is worth nothing afterwards.
	SignOut(ctx context.Context, secret string, remote netip.Addr) error
	// Changed returns a channel that is closed at the next change the
	// controller (any replica) commits.
	Changed() <-chan struct{}
	// ID names the controller (the same on every replica): the cookies'
	// names carry it, so that two controllers' consoles on one host
	// (two SSH tunnels to localhost) keep their sessions apart.
	ID() string
}

// Session is a signed-in browser: the admin token it signed in with.
type Session struct {
	Secret    string // the cookie's value; only SignIn fills it in
	TokenID   string
	TokenName string
	Role      control.Role
	Scope     control.Scope
	Expires   time.Time // when the session ends, unless used again before IdleTimeout
}

// Lifetimes of a session: it ends IdleTimeout after its last use, and
// MaxAge after it began, whichever is first (and with its token).
const (
	IdleTimeout = 12 * time.Hour
	MaxAge      = 7 * 24 * time.Hour
)
