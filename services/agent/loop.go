package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatenet/gate/services/control"
)

// Backoff bounds for retries after a failed attempt. The cap is short: a
// controller restart should be caught up within seconds, and jitter keeps
// a large network from reconnecting in lockstep.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// jitter spreads d over [0.8d, 1.2d).
func jitter(d time.Duration) time.Duration {
	return d*8/10 + time.Duration(rand.Int64N(int64(d)*4/10+1))
}

// promptWait is the wait of a sync that must answer at once but keeps the
// revision the node holds (see run): the controller waits for nothing and
// answers with what changed since, a delta where it can give one.
const promptWait = time.Millisecond

// run keeps one membership in sync with its controller until ctx is done:
// a join while the controller does not know the node, then long-polls.
//
// A controller with several addresses (replicas behind one pin) is used
// at one address at a time, the one that answered last. When a call there
// fails on the way (no connection, a broken one, no answer in time, a key
// that is not the pinned one, a 5xx from a replica in trouble: moveOn),
// the next call goes at once to the next address, in order and wrapping
// around, and keeps the revision the node holds, so that the replica
// moved to answers with a delta. A refusal (4xx) is an answer: it stays.
// Only when every address has failed in a row does the error count, and
// the loop backs off as it does with one address.
func (a *Agent) run(ctx context.Context, id string) {
	backoff := minBackoff
	needJoin := true
	// fresh: the next sync must answer at once with a full configuration
	// (Since 0): after a start, or an answer that failed the checks.
	fresh := true
	// prompt: the next sync must answer at once, from the revision held:
	// after the controller could not be reached, so that the node knows
	// promptly that it is back online (or on another replica) and catches
	// up by a delta rather than waiting out a long-poll.
	prompt := false
	addr := ""  // the address in use
	failed := 0 // addresses that failed in a row
	var kept error
	for ctx.Err() == nil {
		a.mu.Lock()
		mp := a.find(id)
		if mp == nil {
			a.mu.Unlock()
			return
		}
		m := *mp
		a.mu.Unlock()
		if m.Config != nil && m.Token == "" && m.Config.Status != control.StatusNotFound {
			needJoin = false
		}
		addrs := m.Controllers()
		if !slices.Contains(addrs, addr) {
			addr, failed = m.Now(), 0 // at start, or the addresses changed
		}

		actx, cancel := context.WithCancel(ctx)
		a.mu.Lock()
		a.inflight[id] = cancel
		a.mu.Unlock()
		cfg, err := a.attempt(actx, &m, addr, needJoin, fresh, prompt)
		a.mu.Lock()
		delete(a.inflight, id)
		a.mu.Unlock()
		interrupted := actx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil && interrupted {
			continue // Reconnect: try again at once on a fresh connection
		}
		answered := "" // the address that answered, if one did
		if err == nil || !moveOn(err) {
			answered = addr
		}
		if err != nil && moveOn(err) {
			next := rotate(addrs, addr)[1%len(addrs)]
			failed++
			// The error of the round is one retrying may fix, if any
			// is: a first join is kept unless every address refused.
			if kept == nil || !permanent(err) || permanent(kept) {
				kept = err
			}
			if failed < len(addrs) {
				a.cfg.Logf("network %s: controller %s: %v; trying %s", id, addr, err, next)
				addr, prompt = next, true
				continue
			}
			if len(addrs) > 1 {
				err = fmt.Errorf("every address of the controller failed (%d tried): %w", len(addrs), kept)
			}
			addr, failed, kept, prompt = next, 0, nil, true
		} else {
			failed, kept = 0, nil
		}
		switch {
		case err == nil:
			backoff = minBackoff
			needJoin, fresh, prompt = false, false, false
			a.record(id, answered, &cfg, nil)
			continue
		case !needJoin && control.IsStatus(err, http.StatusNotFound):
			// The controller forgot us (member removed) or the network is
			// gone: ask again; a join tells which.
			needJoin = true
			a.record(id, answered, nil, err)
			continue
		case needJoin && control.IsStatus(err, http.StatusNotFound) && m.Config != nil:
			// A network we were in is gone: say so, and drop its
			// configuration so the reconciler removes the interface.
			a.record(id, answered, &control.MemberConfig{NetworkID: id, Name: m.Config.Name, Status: control.StatusNotFound}, err)
		default:
			a.record(id, answered, nil, err)
		}
		if !moveOn(err) {
			fresh = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(jitter(backoff)):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// rotate returns addrs starting at addr (addrs itself if addr is not one).
func rotate(addrs []string, addr string) []string {
	i := slices.Index(addrs, addr)
	if i < 0 {
		return addrs
	}
	return append(slices.Clone(addrs[i:]), addrs[:i]...)
}

// moveOn reports whether a failed call is one the next address of the
// controller may not fail: the controller was not reached, or not as
// pinned, or the connection broke, or it answered 5xx (a replica that
// lost its database). A refusal (4xx) is the controller's answer, and an
// answer that fails the checks (badAnswer) is the controller's data, the
// same at any replica: neither moves.
func moveOn(err error) bool {
	var ae *control.APIError
	if errors.As(err, &ae) {
		return ae.Status/100 == 5
	}
	var ba *badAnswer
	return !errors.As(err, &ba) && !errors.Is(err, errNoClient)
}

// badAnswer is an answer from the controller that the node does not take:
// a configuration that fails the checks, or a delta that does not fit.
type badAnswer struct{ err error }

func (e *badAnswer) Error() string { return e.err.Error() }
func (e *badAnswer) Unwrap() error { return e.err }

// errNoClient marks a client that could not be made (a pin that does not
// parse): the same for every address.
var errNoClient = errors.New("no client")

func (a *Agent) attempt(ctx context.Context, m *Membership, addr string, join, fresh, prompt bool) (control.MemberConfig, error) {
	mc, err := a.exchange(ctx, m, addr, join, fresh, prompt)
	if err != nil {
		return mc, err
	}
	mc, err = a.check(m, mc)
	if err != nil {
		return mc, &badAnswer{err}
	}
	return mc, nil
}

// check checks a configuration as it arrives (control.CheckConfig): a bad
// one fails the attempt and the last good one stays; bad peers are left
// out, and said in the log when the revision is new.
func (a *Agent) check(m *Membership, mc control.MemberConfig) (control.MemberConfig, error) {
	if mc.NetworkID != m.ID {
		return control.MemberConfig{}, fmt.Errorf("the controller answered for network %s, not %s", strconv.QuoteToASCII(mc.NetworkID), m.ID)
	}
	out, dropped, err := control.CheckConfig(mc)
	if err != nil {
		return control.MemberConfig{}, err
	}
	if len(dropped) > 0 && (m.Config == nil || m.Config.Revision != out.Revision) {
		a.cfg.Logf("network %s: revision %d: %d peer(s) left out: %s", m.ID, out.Revision, len(dropped), strings.Join(dropped, "; "))
	}
	return out, nil
}

// exchange is one call to the controller: a join, or a sync whose delta
// it applies to the last good configuration.
func (a *Agent) exchange(ctx context.Context, m *Membership, addr string, join, fresh, prompt bool) (control.MemberConfig, error) {
	c, err := a.client(addr, m.Pin)
	if err != nil {
		return control.MemberConfig{}, fmt.Errorf("%w: %w", errNoClient, err)
	}
	if join {
		return c.Join(ctx, m.ID, control.JoinRequest{
			Token:            m.Token,
			PublicKey:        a.cfg.PublicKey,
			Hostname:         a.cfg.Hostname,
			Version:          a.cfg.Version,
			ListenPort:       m.ListenPort,
			Endpoints:        a.endpoints(m.ListenPort),
			RequestedAddress: m.Address,
			InstanceID:       m.InstanceID,
		})
	}
	var since uint64
	if m.Config != nil && !fresh {
		since = m.Config.Revision
	}
	wait := a.cfg.Poll
	if prompt && since != 0 {
		wait = promptWait
	}
	rctx, cancel := context.WithTimeout(ctx, wait+15*time.Second)
	defer cancel()
	req := control.SyncRequest{
		Since:      since,
		Wait:       control.Duration(wait),
		PublicKey:  a.cfg.PublicKey,
		Hostname:   a.cfg.Hostname,
		Version:    a.cfg.Version,
		ListenPort: m.ListenPort,
		Endpoints:  a.endpoints(m.ListenPort),
	}
	mc, err := c.SyncDelta(rctx, m.ID, req)
	if a.observe != nil {
		a.observe(addr, req, mc, err)
	}
	if err != nil || !mc.Delta {
		return mc, err
	}
	full, err := applyDelta(m.Config, mc)
	if err != nil {
		return full, &badAnswer{err}
	}
	return full, nil
}

// applyDelta turns a delta into the full configuration it gives on top of
// the last good one; that is what is kept and persisted. A delta that does
// not fit (it should not happen: the controller answers against the
// revision this node sent) fails the attempt, and the retry asks for a full
// configuration.
func applyDelta(last *control.MemberConfig, d control.MemberConfig) (control.MemberConfig, error) {
	if last == nil {
		return control.MemberConfig{}, fmt.Errorf("network %s: got a delta against revision %d but hold no configuration", d.NetworkID, d.Since)
	}
	return control.ApplyDelta(*last, d)
}

// record stores the outcome of one attempt: a new configuration (saved and
// announced if it differs from the last good one) or an error (the last good
// configuration stays in force). answered is the controller's address that
// answered ("" when none did).
func (a *Agent) record(id, answered string, cfg *control.MemberConfig, err error) {
	a.mu.Lock()
	m := a.find(id)
	if m == nil {
		a.mu.Unlock()
		return
	}
	changed := false
	if answered != "" && len(m.Replicas) > 0 && answered != m.Now() {
		a.cfg.Logf("network %s: now on controller %s", id, answered)
		m.ControllerNow = answered
		changed = true // kept for a restart, and shown
	}
	if cfg != nil && !reflect.DeepEqual(m.Config, cfg) {
		if m.Config == nil || m.Config.Status != cfg.Status {
			a.cfg.Logf("network %s: %s", id, cfg.Status)
		}
		m.Config = cfg
		changed = true
	}
	if err != nil {
		m.Online = isAPIError(err)
		m.Error = err.Error()
		m.permanentErr = permanent(err)
	} else {
		m.Online = true
		m.Error = ""
		m.permanentErr = false
		m.LastSync = time.Now()
		if m.Token != "" {
			m.Token = "" // accepted: the token has done its job
			changed = true
		}
	}
	var saveErr error
	if changed {
		saveErr = a.saveLocked()
	}
	if ch := a.attempts[id]; ch != nil {
		close(ch)
		a.attempts[id] = make(chan struct{})
	}
	a.mu.Unlock()
	if saveErr != nil {
		a.cfg.Logf("network %s: saving state: %v", id, saveErr)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		a.cfg.Logf("network %s: %v", id, err)
	}
	if changed {
		a.cfg.OnChange()
	}
}

func isAPIError(err error) bool {
	var ae *control.APIError
	return errors.As(err, &ae)
}
