package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"reflect"
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

// run keeps one membership in sync with its controller until ctx is done:
// a join while the controller does not know the node, then long-polls.
func (a *Agent) run(ctx context.Context, id string) {
	backoff := minBackoff
	needJoin := true
	// fresh: the next sync must answer at once (Since 0), so that after a
	// start or an outage the node knows promptly that it is back online
	// and catches up, rather than waiting out a long-poll.
	fresh := true
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

		actx, cancel := context.WithCancel(ctx)
		a.mu.Lock()
		a.inflight[id] = cancel
		a.mu.Unlock()
		cfg, err := a.attempt(actx, &m, needJoin, fresh)
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
		switch {
		case err == nil:
			backoff = minBackoff
			needJoin, fresh = false, false
			a.record(id, &cfg, nil)
			continue
		case !needJoin && control.IsStatus(err, http.StatusNotFound):
			// The controller forgot us (member removed) or the network is
			// gone: ask again; a join tells which.
			needJoin = true
			a.record(id, nil, err)
			continue
		case needJoin && control.IsStatus(err, http.StatusNotFound) && m.Config != nil:
			// A network we were in is gone: say so, and drop its
			// configuration so the reconciler removes the interface.
			a.record(id, &control.MemberConfig{NetworkID: id, Name: m.Config.Name, Status: control.StatusNotFound}, err)
		default:
			a.record(id, nil, err)
		}
		fresh = true
		select {
		case <-ctx.Done():
			return
		case <-time.After(jitter(backoff)):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

func (a *Agent) attempt(ctx context.Context, m *Membership, join, fresh bool) (control.MemberConfig, error) {
	mc, err := a.exchange(ctx, m, join, fresh)
	if err != nil {
		return mc, err
	}
	return a.check(m, mc)
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
func (a *Agent) exchange(ctx context.Context, m *Membership, join, fresh bool) (control.MemberConfig, error) {
	c, err := a.client(m)
	if err != nil {
		return control.MemberConfig{}, err
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
	rctx, cancel := context.WithTimeout(ctx, a.cfg.Poll+15*time.Second)
	defer cancel()
	mc, err := c.SyncDelta(rctx, m.ID, control.SyncRequest{
		Since:      since,
		Wait:       control.Duration(a.cfg.Poll),
		PublicKey:  a.cfg.PublicKey,
		Hostname:   a.cfg.Hostname,
		Version:    a.cfg.Version,
		ListenPort: m.ListenPort,
		Endpoints:  a.endpoints(m.ListenPort),
	})
	if err != nil || !mc.Delta {
		return mc, err
	}
	return applyDelta(m.Config, mc)
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
// configuration stays in force).
func (a *Agent) record(id string, cfg *control.MemberConfig, err error) {
	a.mu.Lock()
	m := a.find(id)
	if m == nil {
		a.mu.Unlock()
		return
	}
	changed := false
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
