package controller

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"slices"
	"time"

	"github.com/gatenet/gate/services/control"
)

// Join tokens. The secret is 32 random bytes, shown once (inside the join
// string) when the token is made; the database keeps only its SHA-256, so a
// copy of the database cannot be used to join.

// newSecret returns a fresh token secret: 32 random bytes, base64url
// without padding (43 characters).
func newSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func newTokenID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func forbidden(msg string) error { return errorf(http.StatusForbidden, "%s", msg) }

// checkTokenUse decides whether node may join network networkID with token
// t at time now. A single-use token may be presented again by the node that
// used it, so that a join whose answer was lost can be retried.
//
// The node that used it is known by its identity (the full fingerprint),
// or, for uses recorded before that was kept, by its node ID.
func checkTokenUse(t tokenRec, networkID string, who memberRef, now time.Time) error {
	sameNode := t.UsedBy == who.node
	if t.UsedIdentity != "" {
		sameNode = t.UsedIdentity == who.key
	}
	switch {
	case t.NetworkID != networkID:
		return forbidden("join token is not valid for network " + networkID)
	case !t.Revoked.IsZero():
		return forbidden("join token revoked")
	case !now.Before(t.Expires):
		return forbidden("join token expired")
	case !t.Reusable && t.Uses > 0 && !sameNode:
		if t.UsedInstance != "" {
			// The user-data was copied: say where the token went.
			return forbidden("join token already used (by instance " + t.UsedInstance + ")")
		}
		return forbidden("join token already used")
	}
	return nil
}

// lookupToken finds the token with the given secret and checks that node
// may use it to join networkID.
func lookupToken(tx *Tx, secret, networkID string, who memberRef, now time.Time) (tokenRec, error) {
	// (The instance a node reports is recorded by recordUse; it is a
	// label for operators, not a credential: anyone can claim any.)
	t, found, err := tx.tokenByHash(hashSecret(secret))
	if err != nil {
		return t, err
	}
	if !found {
		return t, forbidden("invalid join token")
	}
	return t, checkTokenUse(t, networkID, who, now)
}

// recordUse counts a use of t by node, unless it is the same node coming
// back with a single-use token it already used.
func recordUse(tx *Tx, t tokenRec, who memberRef, instance string) error {
	if !t.Reusable && t.Uses > 0 {
		return nil
	}
	return tx.recordTokenUse(t.ID, t.Uses, who.node, who.key, instance)
}

// revokeToken revokes join token tokenID of network id: refused from now
// on, and its address no longer held for whoever joins with it (it
// expires now too). Revoking a revoked token changes nothing.
func (s *Server) revokeToken(ctx context.Context, id, tokenID string) (control.Token, error) {
	if len(tokenID) != 16 || !isHex(tokenID) {
		return control.Token{}, badRequest("join token ID %q: want 16 hex digits", control.Truncate(tokenID, 40))
	}
	var t tokenRec
	err := s.writeNet(ctx, id, func(tx *Tx) error {
		if _, err := tx.network(id); err != nil {
			return err
		}
		ts, err := tx.tokens(id)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(ts, func(t tokenRec) bool { return t.ID == tokenID })
		if i < 0 {
			return errorf(http.StatusNotFound, "join token %s not found in network %s", tokenID, id)
		}
		if t = ts[i]; !t.Revoked.IsZero() {
			return nil
		}
		now := s.now()
		t.Revoked = now
		if now.Before(t.Expires) {
			t.Expires = now
		}
		_, err = tx.tx.ExecContext(tx.ctx, `UPDATE tokens SET revoked = $2, expires = $3 WHERE id = $1`, t.ID, nanos(t.Revoked), nanos(t.Expires))
		return err
	})
	if err != nil {
		return control.Token{}, err
	}
	s.logf("network %s: join token %s revoked", id, tokenID)
	return tokenView(t), nil
}

// CreateToken makes a join token for network id.
func (s *Server) createToken(ctx context.Context, id string, req control.CreateTokenRequest) (control.Token, error) {
	req, err := checkCreateToken(req)
	if err != nil {
		return control.Token{}, err
	}
	now := s.now()
	secret := newSecret()
	t := tokenRec{
		ID:         newTokenID(),
		NetworkID:  id,
		SecretHash: hashSecret(secret),
		Reusable:   req.Reusable,
		Allow:      req.Allow,
		Address:    req.Address.Unmap(),
		Expires:    now.Add(time.Duration(req.ExpiresIn)),
		Note:       req.Note,
		Created:    now,
		Tags:       req.Tags,
	}
	auditOf(ctx).setTarget(t.ID)
	err = s.write(ctx, func(tx *Tx) error {
		n, err := tx.network(id)
		if err != nil {
			return err
		}
		if t.Address.IsValid() {
			ms, err := tx.members(id)
			if err != nil {
				return err
			}
			toks, err := tx.promisedAddresses(id, now)
			if err != nil {
				return err
			}
			if err := checkFree("token address", n.CIDR, taken{members: usedAddresses(ms, ""), promised: promises(nil, toks)}, t.Address); err != nil {
				return err
			}
		}
		return tx.insertToken(t)
	})
	if err != nil {
		return control.Token{}, err
	}
	s.logf("network %s: join token %s created (reusable=%t allow=%t address=%s tags=%s expires %s)",
		id, t.ID, t.Reusable, t.Allow, textAddr(t.Address), tagsText(t.Tags), t.Expires.Format(time.RFC3339))
	v := tokenView(t)
	v.JoinString = s.joinString(id, secret).String()
	return v, nil
}

// listTokens returns a network's tokens, oldest first, without secrets.
func (s *Server) listTokens(ctx context.Context, id string) ([]control.Token, error) {
	var ts []tokenRec
	err := s.store.Read(ctx, func(tx *Tx) error {
		if _, err := tx.network(id); err != nil {
			return err
		}
		var err error
		ts, err = tx.tokens(id)
		return err
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ts, func(a, b tokenRec) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
	})
	out := make([]control.Token, 0, len(ts))
	for _, t := range ts {
		out = append(out, tokenView(t))
	}
	return out, nil
}
