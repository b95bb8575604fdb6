package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/nodeconfig"
)

// FirstListenPort is the WireGuard port of the first joined network; each
// further network takes the next free one.
const FirstListenPort = 51820

// Join adds a membership (or updates the options of an existing one) and
// waits briefly for the first answer from the controller, so the caller
// sees REQUESTING_CONFIGURATION, OK or an error at once. A first join that
// the controller refuses (bad token, unknown network, wrong pin) is not
// kept; one that cannot reach the controller is kept and retried.
func (a *Agent) Join(ctx context.Context, r nodeconfig.JoinRequest) (Membership, error) {
	m, err := a.parseJoin(r)
	if err != nil {
		return Membership{}, err
	}
	a.mu.Lock()
	if old := a.find(m.ID); old != nil {
		if !sameController(old, m) {
			a.mu.Unlock()
			return Membership{}, fmt.Errorf("network %s is already joined through controller %s; leave it first", m.ID, strings.Join(old.Controllers(), ","))
		}
		// The same controller, maybe with replicas added or gone: its
		// addresses are the ones given now (the loop follows).
		old.Controller, old.Replicas = m.Controller, m.Replicas
		old.Address, old.Gateway = m.Address, m.Gateway
		if m.Token != "" && (old.Config == nil || old.Config.Status != control.StatusOK) {
			old.Token = m.Token
		}
		err := a.saveLocked()
		a.mu.Unlock()
		a.cfg.OnChange()
		return a.get(m.ID), err
	}
	m.Iface = ifaceName(m.ID)
	m.ListenPort = a.freePortLocked()
	m.Joined = time.Now().UTC()
	a.doc.Networks = append(a.doc.Networks, m)
	if err := a.saveLocked(); err != nil {
		a.removeLocked(m.ID)
		a.mu.Unlock()
		return Membership{}, err
	}
	a.startLocked(m.ID)
	attempt := a.attempts[m.ID]
	a.mu.Unlock()
	a.cfg.Logf("joining network %s through %s", m.ID, strings.Join(m.Controllers(), ","))

	select {
	case <-attempt:
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
	}
	got := a.get(m.ID)
	if got.Config == nil && got.Error != "" && got.permanentErr {
		a.leaveLocal(m.ID)
		return Membership{}, errors.New(got.Error)
	}
	// Remember the controller for joins by bare network ID, once it has
	// not refused us.
	a.mu.Lock()
	a.doc.DefaultController = control.JoinString{Controller: m.Controller, Replicas: m.Replicas, Pin: m.Pin}.ControllerAddress()
	err = a.saveLocked()
	a.mu.Unlock()
	return got, err
}

// parseJoin checks r with the domain's one validator and reads its join
// (nodeconfig.ParseJoin); a bare network ID without a controller goes to
// the last controller this node joined through.
func (a *Agent) parseJoin(r nodeconfig.JoinRequest) (*Membership, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	js, err := nodeconfig.ParseJoin(r.Join, r.Controller, "")
	if err != nil {
		return nil, err
	}
	if js.Controller == "" {
		a.mu.Lock()
		ctl := a.doc.DefaultController
		a.mu.Unlock()
		if ctl == "" {
			return nil, fmt.Errorf("network %s: no controller known yet; give a join string, or --controller gate://HOST:PORT?pin=sha256:HEX", js.NetworkID)
		}
		c, err := control.ParseControllerAddress(ctl)
		if err != nil {
			return nil, fmt.Errorf("controller: %w", err)
		}
		js.Controller, js.Replicas, js.Pin = c.Controller, c.Replicas, c.Pin
	}
	return &Membership{ID: js.NetworkID, Controller: js.Controller, Replicas: js.Replicas, Pin: js.Pin, Token: js.Token, Address: r.Address, Gateway: r.Gateway.Clone(), InstanceID: r.InstanceID}, nil
}

// sameController reports whether a join names the controller a membership
// is joined through: the same key (pin), and an address in common. One
// address must be the same address, as before replicas; a list may gain
// or lose replicas.
func sameController(old, m *Membership) bool {
	if old.Pin != m.Pin {
		return false
	}
	for _, c := range m.Controllers() {
		if slices.Contains(old.Controllers(), c) {
			return true
		}
	}
	return false
}

func (a *Agent) freePortLocked() int {
	used := map[int]bool{}
	for _, m := range a.doc.Networks {
		used[m.ListenPort] = true
	}
	p := FirstListenPort
	for used[p] {
		p++
	}
	return p
}

// Membership returns one membership (the zero value if not joined).
func (a *Agent) Membership(id string) Membership { return a.get(id) }

func (a *Agent) get(id string) Membership {
	for _, m := range a.Memberships() {
		if m.ID == id {
			return m
		}
	}
	return Membership{}
}

// Leave leaves a network: it tells the controller (best effort, briefly)
// and forgets the membership, whose kernel state the reconciler then
// removes.
func (a *Agent) Leave(ctx context.Context, id string) error {
	id = control.NormalizeID(id)
	a.mu.Lock()
	m := a.find(id)
	if m == nil {
		a.mu.Unlock()
		return fmt.Errorf("network %s: %w (not joined)", id, localapi.ErrNotFound)
	}
	addrs, pin := rotate(m.Controllers(), m.Now()), m.Pin
	a.mu.Unlock()
	// The address the node is on first; the next one if it cannot be
	// reached, while time is left.
	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	for _, addr := range addrs {
		c, err := a.client(addr, pin)
		if err != nil {
			break
		}
		err = c.Leave(lctx, id)
		if err == nil || control.IsStatus(err, http.StatusNotFound) {
			break
		}
		a.cfg.Logf("network %s: telling the controller at %s we left: %v (left locally anyway)", id, addr, err)
		if !moveOn(err) || lctx.Err() != nil {
			break
		}
	}
	cancel()
	return a.leaveLocal(id)
}

func (a *Agent) leaveLocal(id string) error {
	a.mu.Lock()
	cancel, done := a.loops[id], a.done[id]
	a.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	a.mu.Lock()
	a.removeLocked(id)
	err := a.saveLocked()
	a.mu.Unlock()
	a.cfg.Logf("left network %s", id)
	a.cfg.OnChange()
	return err
}

func (a *Agent) removeLocked(id string) {
	a.doc.Networks = slices.DeleteFunc(a.doc.Networks, func(m *Membership) bool { return m.ID == id })
	delete(a.loops, id)
	delete(a.done, id)
	delete(a.attempts, id)
}

func (a *Agent) endpoints(port int) []netip.AddrPort {
	var eps []netip.AddrPort
	for _, ip := range a.cfg.Endpoints() {
		eps = append(eps, netip.AddrPortFrom(ip, uint16(port)))
		if len(eps) == 16 {
			break
		}
	}
	return eps
}
