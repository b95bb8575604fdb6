package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/gatenet/gate/services/jsonapi"
)

// Routes of the /v1 API. Member calls (join, sync, leave) authenticate with
// the client certificate; all others need "Authorization: Bearer <admin
// token>", of a role and scope that allow them (Role, Scope: the
// controller's routes say which each needs).
//
//	POST   /v1/networks                              CreateNetworkRequest -> Network
//	GET    /v1/networks                              -> []Network
//	GET    /v1/networks/{id}                         -> Network
//	PATCH  /v1/networks/{id}                         UpdateNetworkRequest -> Network
//	DELETE /v1/networks/{id}
//	POST   /v1/networks/{id}/routes                  Route -> Network
//	DELETE /v1/networks/{id}/routes?dest=CIDR        -> Network
//	GET    /v1/networks/{id}/members                 -> []Member
//	POST   /v1/networks/{id}/members/{node}/allow    -> Member
//	POST   /v1/networks/{id}/members/{node}/deny     -> Member
//	PUT    /v1/networks/{id}/members/{node}/address  SetAddressRequest -> Member
//	PUT    /v1/networks/{id}/members/{node}/tags     SetTagsRequest -> Member
//	PUT    /v1/networks/{id}/rules                   SetRulesRequest -> SetRulesAnswer
//	POST   /v1/networks/{id}/policy/test             PolicyTestRequest -> PolicyDecision
//	DELETE /v1/networks/{id}/members/{node}
//	POST   /v1/networks/{id}/tokens                  CreateTokenRequest -> Token (with JoinString)
//	GET    /v1/networks/{id}/tokens                  -> []Token (no secrets)
//	POST   /v1/networks/{id}/join                    JoinRequest -> MemberConfig   (member)
//	POST   /v1/networks/{id}/sync                    SyncRequest -> MemberConfig   (member, long-poll)
//	POST   /v1/networks/{id}/sync?delta=1            SyncRequest -> MemberConfig, full or delta
//	POST   /v1/networks/{id}/leave                                                 (member)
//	POST   /v1/admin/tokens                          CreateAdminTokenRequest -> AdminToken (with Secret)
//	GET    /v1/admin/tokens                          -> []AdminToken (no secrets)
//	DELETE /v1/admin/tokens/{id}                     -> AdminToken (revoked)
//	GET    /v1/audit?since=&before=&network=&limit=  -> []AuditEntry, newest first
//	GET    /v1/health                                -> {"ok":true,"pin":...}      (anyone)

// APIError is a non-2xx answer from the controller. Message is the
// controller's message, truncated and made printable (see jsonapi.Error).
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("controller: %s (HTTP %d)", e.Message, e.Status)
}

// IsStatus reports whether err is an APIError with the given HTTP status.
func IsStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}

// Client talks to one controller over pinned TLS.
type Client struct {
	api jsonapi.Client
}

// DialTimeout bounds how long a connection to a controller takes to open.
// Without it a host that is gone (no refusal comes back) holds a member
// for the system's SYN retries, minutes, before it tries the controller's
// next address.
const DialTimeout = 10 * time.Second

// maxAnswer bounds an answer from the controller: a member configuration
// of a large network is the largest.
const maxAnswer = 64 << 20

// NewClient returns a client for the controller at addr (host:port) whose
// key must match pin. id is the node identity for member calls (nil for an
// admin), token the admin token (empty for a member).
func NewClient(addr, pin string, id *Identity, token string) (*Client, error) {
	cfg, err := ClientTLS(pin, id)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: DialTimeout}).DialContext,
		TLSClientConfig:     cfg,
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
		MaxIdleConnsPerHost: 4,
	}
	return &Client{api: jsonapi.Client{
		HTTP:      &http.Client{Transport: tr},
		Base:      "https://" + addr,
		Token:     token,
		MaxAnswer: maxAnswer,
	}}, nil
}

// NewClientVia returns an admin client that sends its requests through
// hc to base (scheme://host), which adds whatever authenticates them: for
// a caller inside the controller's own process (its web console).
func NewClientVia(hc *http.Client, base string) *Client {
	return &Client{api: jsonapi.Client{HTTP: hc, Base: base, MaxAnswer: maxAnswer}}
}

// Close drops idle connections.
func (c *Client) Close() { c.api.HTTP.CloseIdleConnections() }

// Do sends one request; in and out may be nil. A non-2xx answer is an
// *APIError.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	err := c.api.Do(ctx, method, path, in, out)
	var e *jsonapi.Error
	if errors.As(err, &e) {
		return &APIError{Status: e.Status, Message: e.Message}
	}
	return err
}

func netPath(id string, rest ...string) string {
	p := "/v1/networks/" + url.PathEscape(id)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p
}

// CreateNetwork creates a network.
func (c *Client) CreateNetwork(ctx context.Context, r CreateNetworkRequest) (Network, error) {
	var n Network
	return n, c.Do(ctx, http.MethodPost, "/v1/networks", r, &n)
}

// Networks lists all networks.
func (c *Client) Networks(ctx context.Context) ([]Network, error) {
	var ns []Network
	return ns, c.Do(ctx, http.MethodGet, "/v1/networks", nil, &ns)
}

// Network returns one network.
func (c *Client) Network(ctx context.Context, id string) (Network, error) {
	var n Network
	return n, c.Do(ctx, http.MethodGet, netPath(id), nil, &n)
}

// UpdateNetwork changes a network's settings.
func (c *Client) UpdateNetwork(ctx context.Context, id string, r UpdateNetworkRequest) (Network, error) {
	var n Network
	return n, c.Do(ctx, http.MethodPatch, netPath(id), r, &n)
}

// DeleteNetwork deletes a network and all its members and tokens.
func (c *Client) DeleteNetwork(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, netPath(id), nil, nil)
}

// AddRoute adds a managed route.
func (c *Client) AddRoute(ctx context.Context, id string, r Route) (Network, error) {
	var n Network
	return n, c.Do(ctx, http.MethodPost, netPath(id, "routes"), r, &n)
}

// SetRoute sets the route to r.Dest: added, or replacing the one there is
// in one change.
func (c *Client) SetRoute(ctx context.Context, id string, r Route) (Network, error) {
	var n Network
	return n, c.Do(ctx, http.MethodPut, netPath(id, "routes"), r, &n)
}

// DeleteRoute removes the managed route to dest.
func (c *Client) DeleteRoute(ctx context.Context, id string, dest netip.Prefix) (Network, error) {
	var n Network
	return n, c.Do(ctx, http.MethodDelete, netPath(id, "routes")+"?dest="+url.QueryEscape(dest.String()), nil, &n)
}

// Members lists a network's members.
func (c *Client) Members(ctx context.Context, id string) ([]Member, error) {
	var ms []Member
	return ms, c.Do(ctx, http.MethodGet, netPath(id, "members"), nil, &ms)
}

// AllowMember lets a member in.
func (c *Client) AllowMember(ctx context.Context, id, node string) (Member, error) {
	var m Member
	return m, c.Do(ctx, http.MethodPost, netPath(id, "members", node, "allow"), nil, &m)
}

// DenyMember shuts a member out; it keeps its address until removed.
func (c *Client) DenyMember(ctx context.Context, id, node string) (Member, error) {
	var m Member
	return m, c.Do(ctx, http.MethodPost, netPath(id, "members", node, "deny"), nil, &m)
}

// SetMemberAddress gives a member a static address.
func (c *Client) SetMemberAddress(ctx context.Context, id, node string, a netip.Addr) (Member, error) {
	var m Member
	return m, c.Do(ctx, http.MethodPut, netPath(id, "members", node, "address"), SetAddressRequest{Address: a}, &m)
}

// CheckMemberAddress asks whether SetMemberAddress would take a now.
func (c *Client) CheckMemberAddress(ctx context.Context, id, node string, a netip.Addr) (AddressCheck, error) {
	var out AddressCheck
	return out, c.Do(ctx, http.MethodGet, netPath(id, "members", node, "address")+"?check="+url.QueryEscape(a.String()), nil, &out)
}

// SetMemberTags replaces a member's tags.
func (c *Client) SetMemberTags(ctx context.Context, id, node string, tags []string) (Member, error) {
	var m Member
	return m, c.Do(ctx, http.MethodPut, netPath(id, "members", node, "tags"), SetTagsRequest{Tags: tags}, &m)
}

// SetRules replaces a network's rules; revision, if not 0, is the
// revision the caller read them at (a newer one is a conflict).
func (c *Client) SetRules(ctx context.Context, id string, r SetRulesRequest) (SetRulesAnswer, error) {
	var a SetRulesAnswer
	return a, c.Do(ctx, http.MethodPut, netPath(id, "rules"), r, &a)
}

// TestPolicy asks whether a network's rules let a packet through.
func (c *Client) TestPolicy(ctx context.Context, id string, r PolicyTestRequest) (PolicyDecision, error) {
	var d PolicyDecision
	return d, c.Do(ctx, http.MethodPost, netPath(id, "policy", "test"), r, &d)
}

// RemoveMember deletes a member and frees its address.
func (c *Client) RemoveMember(ctx context.Context, id, node string) error {
	return c.Do(ctx, http.MethodDelete, netPath(id, "members", node), nil, nil)
}

// CreateToken makes a join token; the answer's JoinString holds the secret.
func (c *Client) CreateToken(ctx context.Context, id string, r CreateTokenRequest) (Token, error) {
	var t Token
	return t, c.Do(ctx, http.MethodPost, netPath(id, "tokens"), r, &t)
}

// RevokeToken revokes join token tokenID of network id: nodes are refused
// it from now on.
func (c *Client) RevokeToken(ctx context.Context, id, tokenID string) (Token, error) {
	var t Token
	return t, c.Do(ctx, http.MethodDelete, netPath(id, "tokens", tokenID), nil, &t)
}

// Tokens lists a network's tokens, without secrets.
func (c *Client) Tokens(ctx context.Context, id string) ([]Token, error) {
	var ts []Token
	return ts, c.Do(ctx, http.MethodGet, netPath(id, "tokens"), nil, &ts)
}

// Join asks to join a network.
func (c *Client) Join(ctx context.Context, id string, r JoinRequest) (MemberConfig, error) {
	var mc MemberConfig
	return mc, c.Do(ctx, http.MethodPost, netPath(id, "join"), r, &mc)
}

// Sync reports the member's state and waits for a configuration newer than
// r.Since (or r.Wait to pass).
func (c *Client) Sync(ctx context.Context, id string, r SyncRequest) (MemberConfig, error) {
	var mc MemberConfig
	return mc, c.Do(ctx, http.MethodPost, netPath(id, "sync"), r, &mc)
}

// SyncDelta is Sync for a member that can apply deltas: the answer is a
// full configuration or, when the controller can give one, a delta against
// the configuration at r.Since (see MemberConfig). The opt-in is a query
// parameter, not a body field, so that an older controller (which refuses
// unknown body fields) simply answers a full configuration.
func (c *Client) SyncDelta(ctx context.Context, id string, r SyncRequest) (MemberConfig, error) {
	var mc MemberConfig
	return mc, c.Do(ctx, http.MethodPost, netPath(id, "sync")+"?delta=1", r, &mc)
}

// Leave removes this member from a network.
func (c *Client) Leave(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodPost, netPath(id, "leave"), nil, nil)
}

// CreateAdminToken makes a named admin token; the answer's Secret is the
// token, shown this once.
func (c *Client) CreateAdminToken(ctx context.Context, r CreateAdminTokenRequest) (AdminToken, error) {
	var t AdminToken
	return t, c.Do(ctx, http.MethodPost, "/v1/admin/tokens", r, &t)
}

// AdminTokens lists the admin tokens, revoked and expired ones included,
// without secrets.
func (c *Client) AdminTokens(ctx context.Context) ([]AdminToken, error) {
	var ts []AdminToken
	return ts, c.Do(ctx, http.MethodGet, "/v1/admin/tokens", nil, &ts)
}

// RevokeAdminToken revokes the admin token id at once.
func (c *Client) RevokeAdminToken(ctx context.Context, id string) (AdminToken, error) {
	var t AdminToken
	return t, c.Do(ctx, http.MethodDelete, "/v1/admin/tokens/"+url.PathEscape(id), nil, &t)
}

// Audit reads the audit log, newest first.
func (c *Client) Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	v := url.Values{}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Before.IsZero() {
		v.Set("before", q.Before.UTC().Format(time.RFC3339Nano))
	}
	if q.NetworkID != "" {
		v.Set("network", q.NetworkID)
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "/v1/audit"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var es []AuditEntry
	return es, c.Do(ctx, http.MethodGet, path, nil, &es)
}
