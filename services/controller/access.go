package controller

// Who may call the admin API, and what each caller may do there.
//
// An admin call carries a bearer token: the controller's admin-token file,
// the built-in admin of the whole controller as it always was, or a named
// admin token (control.AdminToken) made through the API by an admin. A
// named token's row (admin_tokens) holds who holds it, its role, its scope,
// its expiry and its revocation; the token, gate_admin_<ID>_<secret>, names
// its row, and the secret is checked against the SHA-256 kept there in
// constant time. The row is read on every call, so that a token revoked
// through one replica is refused by all of them at once: nothing about
// tokens is held in a process's memory.
//
// Every admin route says (routes, api.go) the role it needs, whether it
// needs the whole controller in scope, and whether it is a change, which
// the audit log records (audit.go). A network named in the path must be in
// the token's scope; one that is not is refused alike whether it exists or
// not (403), so that a scoped token cannot learn which networks exist.
//
// What a caller is told: a token that is not one (unknown ID, wrong
// secret, garbage) is "wrong", never why. The holder of a real token that
// expired or was revoked is told so, since it proved it holds the secret.
//
// Who makes admin tokens: an admin of the whole controller, only. An admin
// scoped to some networks may not make tokens, even within its own scope
// and role: tokens a token made would outlive its revocation (a
// contractor's token revoked, the ones it made for itself live on), while
// revoking a person's token must end their access. So credentials come
// from the controller's admins, who see them all in one list, and a scoped
// admin asks one.

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatenet/gate/services/control"
)

// principal is who makes an admin call: the token it brought.
type principal struct {
	id, name string
	role     control.Role
	scope    control.Scope
	// via is the way in: control.ViaWeb for a web console session.
	via string
	// expires is when its token expires; zero for never.
	expires time.Time
}

func (p principal) String() string { return fmt.Sprintf("admin token %q (%s)", p.name, p.role) }

// builtinAdmin is the holder of the admin-token file.
var builtinAdmin = principal{id: control.BuiltinAdminID, name: control.BuiltinAdminID, role: control.RoleAdmin, scope: control.Scope{Controller: true}}

// access is what an admin route needs.
type access struct {
	role control.Role
	// controller: the whole controller in scope (making networks, admin
	// tokens); otherwise a network in the path must be in scope.
	controller bool
	// action names what the route does, in refusals and the audit log.
	action string
	// change: the route changes something; it is audited.
	change bool
}

// authorize says whether p may call a route that needs a, on network (""
// when the path names none, or names it wrongly: the handler refuses it).
func (p principal) authorize(a access, network string) error {
	if !p.role.Includes(a.role) {
		return forbidden(fmt.Sprintf("%s may not %s: that needs the %s role", p, a.action, a.role))
	}
	if a.controller && !p.scope.Controller {
		return forbidden(fmt.Sprintf("%s reaches networks %s only: %s needs a token for the whole controller", p, p.scope, a.action))
	}
	if network != "" && !p.scope.Has(network) {
		return forbidden(fmt.Sprintf("%s does not reach network %s", p, network))
	}
	return nil
}

type principalKey struct{}

// principalOf is who makes the request being served; the zero principal,
// which reaches nothing, outside an admin call.
func principalOf(ctx context.Context) principal {
	p, _ := ctx.Value(principalKey{}).(principal)
	return p
}

// admin wraps the handler of an admin route that needs need: it
// authenticates the caller (401), authorizes it (403) and, for a change,
// carries the audit entry the write records (audit.go).
func (s *Server) admin(need access, h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err != nil {
			if statusOf(err) != http.StatusUnauthorized {
				s.finish(w, r, err)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="gate controller"`)
			writeError(w, http.StatusUnauthorized, err.Error())
			return
		}
		network := pathNetwork(r)
		ctx := context.WithValue(r.Context(), principalKey{}, p)
		var a *auditEntry
		if need.change {
			a = &auditEntry{who: p, remote: remoteAddr(r), action: need.action, network: network, target: pathTarget(r)}
			ctx = context.WithValue(ctx, auditKey{}, a)
		}
		r = r.WithContext(ctx)
		err = p.authorize(need, network)
		if err == nil {
			err = h(w, r)
		}
		if a != nil {
			s.recordAfter(r, a, err)
		}
		s.finish(w, r, err)
	}
}

// pathNetwork is the network the path names ({id}), or "" if it names
// none or not a well-formed ID.
func pathNetwork(r *http.Request) string {
	id := control.NormalizeID(r.PathValue("id"))
	if control.CheckNetworkID(id) != nil {
		return ""
	}
	return id
}

// Answers to a caller without a valid token: they say nothing of why.
var (
	errNoToken    = errorf(http.StatusUnauthorized, "admin token required (Authorization: Bearer <token>: the controller's admin-token file, or a token made with gate admin token create)")
	errWrongToken = errorf(http.StatusUnauthorized, "wrong admin token")
)

type authKey struct{}

// authResult is a request's authentication, done once (guardBodies does
// it first, to size the body it reads).
type authResult struct {
	p   principal
	err error
}

// authenticated returns r carrying its authentication.
func (s *Server) authenticated(r *http.Request) (*http.Request, authResult) {
	if a, ok := r.Context().Value(authKey{}).(authResult); ok {
		return r, a
	}
	p, err := s.checkBearer(r.Context(), r.Header.Get("Authorization"))
	a := authResult{p, err}
	return r.WithContext(context.WithValue(r.Context(), authKey{}, a)), a
}

// authenticate says who makes admin call r: a 401 for no token or one
// that is not valid, another error if the database could not tell.
func (s *Server) authenticate(r *http.Request) (principal, error) {
	_, a := s.authenticated(r)
	return a.p, a.err
}

// lastUsedEvery is how stale a token's last_used may get: a token in use
// costs a write a minute, not one per call.
const lastUsedEvery = time.Minute

func (s *Server) checkBearer(ctx context.Context, header string) (principal, error) {
	if header == "" {
		return principal{}, errNoToken
	}
	tok, ok := strings.CutPrefix(header, "Bearer ")
	tok = strings.TrimSpace(tok)
	if !ok {
		return principal{}, errWrongToken
	}
	if sameSecret(tok, s.adminToken) {
		return builtinAdmin, nil
	}
	id, secret, named := control.SplitAdminToken(tok)
	if !named {
		if strings.HasPrefix(tok, "gate://") {
			return principal{}, errorf(http.StatusUnauthorized, "wrong admin token: that is a join string, which lets a node join a network; an admin token is in the controller's admin-token file or made with gate admin token create")
		}
		return principal{}, errWrongToken
	}
	var t adminTokenRec
	var found bool
	err := s.store.Read(ctx, func(tx *Tx) (err error) {
		t, found, err = tx.adminToken(id)
		return err
	})
	if err != nil {
		return principal{}, fmt.Errorf("reading admin token %s: %w", id, err)
	}
	if !found || !matchesHash(t.SecretHash, secret) {
		return principal{}, errWrongToken
	}
	if err := t.live(s.now()); err != nil {
		return principal{}, err
	}
	if now := s.now(); now.Sub(t.LastUsed) >= lastUsedEvery {
		err := s.store.Write(context.WithoutCancel(ctx), func(tx *Tx) error {
			_, err := tx.tx.ExecContext(tx.ctx, `UPDATE admin_tokens SET last_used = $2 WHERE id = $1 AND last_used < $2`, t.ID, nanos(now))
			return err
		})
		if err != nil {
			s.logf("admin token %s: recording its use: %v", t.ID, err)
		}
	}
	return t.principal(), nil
}

// sameSecret compares two secrets by their digests, so that neither the
// length nor the content of either leaks through timing.
func sameSecret(a, b string) bool {
	x, y := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(x[:], y[:]) == 1
}

// matchesHash says whether secret's SHA-256 is stored (hex), in constant
// time.
func matchesHash(stored, secret string) bool {
	want, err := hex.DecodeString(stored)
	got := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(got[:], want) == 1 && err == nil
}

// Admin tokens as stored.

type adminTokenRec struct {
	ID, Name      string
	Role          control.Role
	Scope         control.Scope
	SecretHash    string
	Expires       time.Time // zero: never
	Created       time.Time
	CreatedBy     string // the ID of the token that made it
	CreatedByName string
	Revoked       time.Time // zero: not revoked
	RevokedBy     string
	LastUsed      time.Time
}

// live says why t may no longer be used at now, if it may not: its
// holder proved it holds the secret, so it is told.
func (t adminTokenRec) live(now time.Time) error {
	switch {
	case !t.Revoked.IsZero():
		return errorf(http.StatusUnauthorized, "admin token %s (%q) was revoked at %s", t.ID, t.Name, t.Revoked.Format(time.RFC3339))
	case !t.Expires.IsZero() && !now.Before(t.Expires):
		return errorf(http.StatusUnauthorized, "admin token %s (%q) expired at %s", t.ID, t.Name, t.Expires.Format(time.RFC3339))
	}
	return nil
}

func (t adminTokenRec) principal() principal {
	return principal{id: t.ID, name: t.Name, role: t.Role, scope: t.Scope, expires: t.Expires}
}

func (t adminTokenRec) view() control.AdminToken {
	return control.AdminToken{ID: t.ID, Name: t.Name, Role: t.Role, Scope: t.Scope, Expires: t.Expires, Created: t.Created,
		CreatedBy: t.CreatedBy, CreatedByName: t.CreatedByName, Revoked: t.Revoked, RevokedBy: t.RevokedBy, LastUsed: t.LastUsed}
}

// optNanos stores an optional time: 0 for none.
func optNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromOptNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return fromNanos(n)
}

const adminTokenCols = `id, name, role, controller, networks, secret_hash, expires, created, created_by, created_by_name, revoked, revoked_by, last_used`

func scanAdminToken(sc interface{ Scan(...any) error }) (adminTokenRec, error) {
	var t adminTokenRec
	var role, networks string
	var expires, created, revoked, lastUsed int64
	if err := sc.Scan(&t.ID, &t.Name, &role, &t.Scope.Controller, &networks, &t.SecretHash, &expires, &created,
		&t.CreatedBy, &t.CreatedByName, &revoked, &t.RevokedBy, &lastUsed); err != nil {
		return t, err
	}
	var err error
	if t.Role, err = control.ParseRole(role); err != nil {
		return t, fmt.Errorf("admin token %s: stored %w", t.ID, err)
	}
	if t.Scope.Networks = splitList(networks); t.Scope.Controller == (len(t.Scope.Networks) > 0) {
		return t, fmt.Errorf("admin token %s: stored scope is neither the controller nor networks", t.ID)
	}
	t.Expires, t.Created, t.Revoked, t.LastUsed = fromOptNanos(expires), fromNanos(created), fromOptNanos(revoked), fromOptNanos(lastUsed)
	return t, nil
}

func (tx *Tx) insertAdminToken(t adminTokenRec) error {
	_, err := tx.tx.ExecContext(tx.ctx, `INSERT INTO admin_tokens (`+adminTokenCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		t.ID, t.Name, string(t.Role), t.Scope.Controller, strings.Join(t.Scope.Networks, ","), t.SecretHash, optNanos(t.Expires),
		nanos(t.Created), t.CreatedBy, t.CreatedByName, optNanos(t.Revoked), t.RevokedBy, optNanos(t.LastUsed))
	return err
}

// adminToken returns admin token id; found is false if there is none.
func (tx *Tx) adminToken(id string) (t adminTokenRec, found bool, err error) {
	t, err = scanAdminToken(tx.tx.QueryRowContext(tx.ctx, `SELECT `+adminTokenCols+` FROM admin_tokens WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, false, nil
	}
	return t, err == nil, err
}

func (tx *Tx) adminTokens() ([]adminTokenRec, error) {
	rows, err := tx.tx.QueryContext(tx.ctx, `SELECT `+adminTokenCols+` FROM admin_tokens ORDER BY created, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []adminTokenRec
	for rows.Next() {
		t, err := scanAdminToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Admin tokens through the API.

// maxAdminTokenLifetime bounds an expiry (0 is none at all): well inside
// what Unix nanoseconds hold.
const maxAdminTokenLifetime = 10 * 365 * 24 * time.Hour

// checkCreateAdminToken checks a request to make an admin token on its
// own (that the scope's networks exist is checked against the store) and
// returns it normalized: the networks lower-cased, sorted, once each.
func checkCreateAdminToken(req control.CreateAdminTokenRequest) (control.CreateAdminTokenRequest, error) {
	if err := checkText("name", req.Name, 1, maxNameLen); err != nil {
		return req, err
	}
	role, err := control.ParseRole(string(req.Role))
	if err != nil {
		return req, badRequest("%v", err)
	}
	req.Role = role
	sc := req.Scope
	switch {
	case sc.Controller && len(sc.Networks) > 0:
		return req, badRequest("scope: give the whole controller or networks, not both")
	case !sc.Controller && len(sc.Networks) == 0:
		return req, badRequest(`scope: missing; give networks (their IDs), or the whole controller ("controller": true)`)
	case len(sc.Networks) > control.MaxScopeNetworks:
		return req, badRequest("scope: %d networks, at most %d", len(sc.Networks), control.MaxScopeNetworks)
	}
	ids := make([]string, 0, len(sc.Networks))
	for _, n := range sc.Networks {
		id := control.NormalizeID(n)
		if control.CheckNetworkID(id) != nil {
			return req, badRequest("scope: network ID %s: want 16 hex digits", quoteShort(n))
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	req.Scope.Networks = slices.Compact(ids)
	if len(req.Scope.Networks) == 0 {
		req.Scope.Networks = nil
	}
	if d := time.Duration(req.ExpiresIn); d < 0 || d > maxAdminTokenLifetime {
		return req, badRequest("expires_in %s: want 0 (never) to %s (ten years)", d, maxAdminTokenLifetime)
	}
	return req, nil
}

// createAdminToken makes an admin token for by; the answer carries its
// secret, this once.
func (s *Server) createAdminToken(ctx context.Context, by principal, req control.CreateAdminTokenRequest) (control.AdminToken, error) {
	req, err := checkCreateAdminToken(req)
	if err != nil {
		return control.AdminToken{}, err
	}
	now := s.now()
	secret := newSecret()
	t := adminTokenRec{ID: newTokenID(), Name: req.Name, Role: req.Role, Scope: req.Scope, SecretHash: hashSecret(secret),
		Created: now, CreatedBy: by.id, CreatedByName: by.name}
	if req.ExpiresIn != 0 {
		t.Expires = now.Add(time.Duration(req.ExpiresIn))
	}
	auditOf(ctx).setTarget(t.ID)
	err = s.write(ctx, func(tx *Tx) error {
		for _, id := range t.Scope.Networks {
			if _, err := tx.network(id); err != nil {
				if statusOf(err) == http.StatusNotFound {
					return badRequest("scope: network %s not found", id)
				}
				return err
			}
		}
		return tx.insertAdminToken(t)
	})
	if err != nil {
		return control.AdminToken{}, err
	}
	s.logf("admin token %s made by %s (%s): name %q, role %s, scope %s", t.ID, by.id, by.name, t.Name, t.Role, t.Scope)
	v := t.view()
	v.Secret = control.AdminTokenPrefix + t.ID + "_" + secret
	return v, nil
}

// listAdminTokens lists the admin tokens, the built-in one first, then by
// age; revoked and expired ones are kept, for the record.
func (s *Server) listAdminTokens(ctx context.Context) ([]control.AdminToken, error) {
	var ts []adminTokenRec
	err := s.store.Read(ctx, func(tx *Tx) (err error) {
		ts, err = tx.adminTokens()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := []control.AdminToken{{ID: builtinAdmin.id, Name: builtinAdmin.name, Role: builtinAdmin.role, Scope: builtinAdmin.scope, Builtin: true}}
	for _, t := range ts {
		out = append(out, t.view())
	}
	return out, nil
}

// revokeAdminToken revokes admin token id for by, at once on every
// replica (each reads the token on every call). Revoking a revoked token
// changes nothing.
func (s *Server) revokeAdminToken(ctx context.Context, by principal, id string) (control.AdminToken, error) {
	if id == control.BuiltinAdminID {
		return control.AdminToken{}, badRequest("the built-in admin token is the controller's admin-token file: to change it, replace the file on every replica (mode 0600) and restart them")
	}
	if len(id) != 16 || !isHex(id) {
		return control.AdminToken{}, badRequest("admin token ID %q: want 16 hex digits", control.Truncate(id, 40))
	}
	var t adminTokenRec
	err := s.write(ctx, func(tx *Tx) error {
		var found bool
		var err error
		if t, found, err = tx.adminToken(id); err != nil {
			return err
		}
		if !found {
			return errorf(http.StatusNotFound, "admin token %s not found", id)
		}
		if !t.Revoked.IsZero() {
			return nil
		}
		t.Revoked, t.RevokedBy = s.now(), by.id
		_, err = tx.tx.ExecContext(tx.ctx, `UPDATE admin_tokens SET revoked = $2, revoked_by = $3 WHERE id = $1`, id, nanos(t.Revoked), t.RevokedBy)
		return err
	})
	if err != nil {
		return control.AdminToken{}, err
	}
	s.logf("admin token %s (%q) revoked by %s (%s)", t.ID, t.Name, by.id, by.name)
	return t.view(), nil
}

func isHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func (s *Server) hCreateAdminToken(w http.ResponseWriter, r *http.Request) error {
	var req control.CreateAdminTokenRequest
	if err := readBody(w, r, &req); err != nil {
		return err
	}
	auditOf(r.Context()).note("%s", fields("name", quoteShort(req.Name), "role", quoteShort(string(req.Role)),
		"scope", quoteShort(req.Scope.String()), "expires_in", optDuration(req.ExpiresIn)))
	t, err := s.createAdminToken(r.Context(), principalOf(r.Context()), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, t)
	return nil
}

func (s *Server) hListAdminTokens(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.listAdminTokens(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ts)
	return nil
}

func (s *Server) hRevokeAdminToken(w http.ResponseWriter, r *http.Request) error {
	t, err := s.revokeAdminToken(r.Context(), principalOf(r.Context()), strings.ToLower(r.PathValue("token")))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}
