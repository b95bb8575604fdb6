package control

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Access for people: named admin tokens, each with a role and a scope, and
// the audit log of what they changed.
//
// Why roles and scopes rather than one admin token: a controller is shared
// by people who need different things of it (one watches, one lets
// gateways in and routes them, one owns the networks and who may do
// what), and a token that leaks should give away no more than its holder
// needed. The controller's admin-token file stays what it was, the
// built-in admin of the whole controller.

// Role is what an admin token may do, each role all that the one before
// it may and more:
//
//   - viewer: read everything in its scope (networks, members, routes,
//     join tokens without their secrets, rules, the audit log), and test
//     packets against the rules;
//   - operator: also allow, deny and remove members, set their addresses
//     and tags, add and delete routes, and create join tokens;
//   - admin: everything: also create, rename, reconfigure and delete
//     networks, edit their rules, and, with the whole controller in
//     scope, create and revoke admin tokens.
type Role string

// The roles, least first.
const (
	RoleViewer   Role = "viewer"
	RoleOperator Role = "operator"
	RoleAdmin    Role = "admin"
)

// Roles lists the roles, least first.
var Roles = []Role{RoleViewer, RoleOperator, RoleAdmin}

// ParseRole reads a role's name.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("role %q: want viewer, operator or admin", Truncate(s, 32))
}

// rank orders the roles; 0 is no role.
func (r Role) rank() int {
	for i, x := range Roles {
		if x == r {
			return i + 1
		}
	}
	return 0
}

// Includes reports whether a token with role r may do what role o may.
func (r Role) Includes(o Role) bool { return r.rank() > 0 && r.rank() >= o.rank() }

// Scope is what an admin token reaches: the whole controller, or some
// networks. Exactly one is given: a token is never scoped to everything
// because a list was left empty.
type Scope struct {
	// Controller is the whole controller: every network, present and
	// future, making networks, and admin tokens.
	Controller bool `json:"controller,omitempty"`
	// Networks are the IDs of the networks the token reaches.
	Networks []string `json:"networks,omitempty"`
}

// Has reports whether network id is in scope.
func (s Scope) Has(id string) bool {
	if s.Controller {
		return true
	}
	for _, n := range s.Networks {
		if n == id {
			return true
		}
	}
	return false
}

// String is the scope as the CLI shows it: "controller" or the networks'
// IDs, comma-separated.
func (s Scope) String() string {
	if s.Controller {
		return "controller"
	}
	return strings.Join(s.Networks, ",")
}

// MaxScopeNetworks is the most networks one token's scope names.
const MaxScopeNetworks = 64

// AdminTokenPrefix starts every named admin token, so that one can be told
// from a join token, refused where a join token is expected, and found by
// secret scanners: gate_admin_<ID, 16 hex digits>_<secret, 43 characters
// of base64url>. The ID is no secret (listings and the audit log show
// it); only the secret's SHA-256 is stored.
const AdminTokenPrefix = "gate_admin_"

// SplitAdminToken splits a named admin token into its ID and secret; ok is
// false if s does not have the shape of one.
func SplitAdminToken(s string) (id, secret string, ok bool) {
	rest, found := strings.CutPrefix(s, AdminTokenPrefix)
	if !found || len(rest) != 16+1+43 || rest[16] != '_' || !isLowerHex(rest[:16]) {
		return "", "", false
	}
	secret = rest[17:]
	for _, c := range secret {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return "", "", false
		}
	}
	return rest[:16], secret, true
}

// BuiltinAdminID is the ID under which the controller's admin-token file
// appears in listings and the audit log.
const BuiltinAdminID = "admin-token"

// CreateAdminTokenRequest is the body of POST /v1/admin/tokens.
type CreateAdminTokenRequest struct {
	// Name says who holds the token: printable, 1 to 64 characters.
	Name  string `json:"name"`
	Role  Role   `json:"role"`
	Scope Scope  `json:"scope"`
	// ExpiresIn is the token's lifetime; 0 means it does not expire.
	ExpiresIn Duration `json:"expires_in,omitempty"`
}

// AdminToken is an admin token as the API shows it. Secret is set only in
// the answer to its creation: the controller keeps its SHA-256 alone.
type AdminToken struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Role    Role      `json:"role"`
	Scope   Scope     `json:"scope"`
	Expires time.Time `json:"expires,omitzero"` // zero: never
	Created time.Time `json:"created,omitzero"`
	// CreatedBy is the ID and CreatedByName the name of the token that
	// made this one.
	CreatedBy     string    `json:"created_by,omitempty"`
	CreatedByName string    `json:"created_by_name,omitempty"`
	Revoked       time.Time `json:"revoked,omitzero"`
	RevokedBy     string    `json:"revoked_by,omitempty"`
	// LastUsed is when it was last accepted, to the minute.
	LastUsed time.Time `json:"last_used,omitzero"`
	// Builtin marks the controller's admin-token file, which is replaced
	// on disk rather than revoked.
	Builtin bool   `json:"builtin,omitempty"`
	Secret  string `json:"secret,omitempty"`
}

// State says whether the token is live at now: "active", "expired" or
// "revoked".
func (t AdminToken) State(now time.Time) string {
	switch {
	case !t.Revoked.IsZero():
		return "revoked"
	case !t.Expires.IsZero() && !now.Before(t.Expires):
		return "expired"
	}
	return "active"
}

// Outcomes of an audited request.
const (
	OutcomeOK      = "ok"      // the change was made (its record committed with it)
	OutcomeDenied  = "denied"  // the token may not do this (403)
	OutcomeRefused = "refused" // the request was wrong: invalid, not found, a conflict (other 4xx)
	OutcomeFailed  = "failed"  // the controller failed (5xx)
)

// AuditEntry is one change, or attempted change, through the admin API.
// Every text in it was rendered by the controller from checked values
// (IDs, addresses, quoted names), never copied from a request, and is
// bounded; a client shows it escaped all the same.
type AuditEntry struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
	// TokenID and TokenName are who: the admin token that asked.
	TokenID   string `json:"token_id"`
	TokenName string `json:"token_name"`
	// Remote is the address the request came from, as the controller's
	// socket saw it (no X-Forwarded-For is believed).
	Remote netip.Addr `json:"remote,omitzero"`
	// Action names what was asked, e.g. network.create, member.allow.
	Action string `json:"action"`
	// NetworkID is the network it concerns; "" for none (admin tokens).
	NetworkID string `json:"network_id,omitempty"`
	// Target is what in the network, or what else: a member's node ID, a
	// route's destination, a token's ID.
	Target string `json:"target,omitempty"`
	// Detail is the values asked for, e.g. address 10.1.0.5.
	Detail  string `json:"detail,omitempty"`
	Outcome string `json:"outcome"`
	// Status is the HTTP status of a request that was not carried out,
	// Error what the controller answered.
	Status int    `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
	// Via is the way in: ViaWeb for the web console, "" for the API
	// (the CLI, scripts).
	Via string `json:"via,omitempty"`
}

// ViaWeb marks what came in through the web console.
const ViaWeb = "web"

// AuditQuery selects audit entries: those at or after Since and before
// Before (zero: no bound), of network NetworkID (""; all in the token's
// scope), newest first, at most Limit (0: the controller's default).
type AuditQuery struct {
	Since, Before time.Time
	NetworkID     string
	Limit         int
}

// Limits of GET /v1/audit.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)
