// Package agent owns a node's memberships: it joins networks, keeps a
// long-poll open to each network's controller, persists the last good
// configuration of each, and tells its owner whenever any of them changes.
//
// It never touches the kernel. The daemon turns the memberships into the
// desired state of the reconciler, which is the only writer of kernel
// state. Offline first: memberships and their last good configurations are
// loaded from the state directory at start, so a node forwards with what it
// knew even while its controller is down, and catches up when it returns.
// A controller run as replicas is known by all its addresses: the loop
// stays on the one that answers and moves to the next when it fails,
// keeping the revision it holds (run, in loop.go).
//
// What it is asked and what it keeps are the domain's values
// (services/nodeconfig: JoinRequest, Gateway, in networks.json), checked
// with the domain's validators (JoinRequest.Check, ParseJoin); it adds only
// what it alone knows: the controller of a bare network ID (the last one
// joined through). It must not grow a validator of its own.
package agent

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/nodeconfig"
	"github.com/gatenet/gate/services/state"
)

// Membership is one joined network as the node keeps it.
type Membership struct {
	ID         string `json:"id"`
	Controller string `json:"controller"` // host:port, the first (or only) address
	// Replicas are the controller's further addresses, in order
	// (control.JoinString.Replicas): replicas of one controller, behind
	// one pin, that the node moves to when the one it is on fails.
	Replicas []string `json:"replicas,omitempty"`
	Pin      string   `json:"pin"`
	// ControllerNow is the address the node is on: the one that answered
	// last, set only when there are Replicas. Kept so that a restart goes
	// back to it; one that is not among the addresses (an old state file:
	// none) means Controller (Now).
	ControllerNow string `json:"controller_now,omitempty"`
	// Token is kept only until the controller has accepted the node; it is
	// a credential and has no use after that.
	Token   string              `json:"token,omitempty"`
	Address netip.Addr          `json:"address,omitzero"` // requested
	Gateway *nodeconfig.Gateway `json:"gateway,omitempty"`
	Iface   string              `json:"iface"`
	// InstanceID is the cloud instance that joined, if user-data did;
	// sent with the token.
	InstanceID string                `json:"instance_id,omitempty"`
	ListenPort int                   `json:"listen_port"`
	Config     *control.MemberConfig `json:"config,omitempty"` // last good configuration
	Joined     time.Time             `json:"joined"`

	// Run-time state, not persisted.
	Online   bool      `json:"-"`
	LastSync time.Time `json:"-"`
	Error    string    `json:"-"`
	// permanentErr: the last error was a refusal retrying cannot fix.
	permanentErr bool
}

// Controllers returns every address of the membership's controller in
// order: Controller, then Replicas.
func (m *Membership) Controllers() []string {
	return append([]string{m.Controller}, m.Replicas...)
}

// Now returns the address the node is on (ControllerNow, when it is one
// of the controller's addresses; Controller otherwise).
func (m *Membership) Now() string {
	if m.ControllerNow != "" && slices.Contains(m.Controllers(), m.ControllerNow) {
		return m.ControllerNow
	}
	return m.Controller
}

// Status is the membership's status as operators know it.
func (m *Membership) Status() string {
	if m.Config == nil {
		return control.StatusRequesting
	}
	return m.Config.Status
}

// Config configures an Agent.
type Config struct {
	State     *state.Dir
	Identity  control.Identity
	PublicKey string // WireGuard public key, base64
	Hostname  string
	Version   string
	// Endpoints returns the node's own addresses that peers may reach it
	// on (the daemon reads them from the kernel).
	Endpoints func() []netip.Addr
	// OnChange is called (from any goroutine) after memberships change.
	OnChange func()
	Logf     func(format string, args ...any)
	// Poll is how long one long-poll waits at most; 0 means 25 s.
	Poll time.Duration
}

const stateFile = "networks.json"

type stateDoc struct {
	Version           int           `json:"version"`
	DefaultController string        `json:"default_controller,omitempty"` // gate://...?pin=
	Networks          []*Membership `json:"networks"`
}

// Agent runs the memberships.
type Agent struct {
	cfg Config

	mu       sync.Mutex
	doc      stateDoc
	loops    map[string]context.CancelFunc
	done     map[string]chan struct{}
	attempts map[string]chan struct{} // closed after each attempt, then replaced
	clients  map[string]*control.Client
	inflight map[string]context.CancelFunc // the attempt under way, by network
	ctx      context.Context

	// observe, if set (by tests, before Start), sees each sync: the
	// address, the request and what came back.
	observe func(addr string, req control.SyncRequest, mc control.MemberConfig, err error)
}

// New loads the memberships from the state directory.
func New(cfg Config) (*Agent, error) {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.OnChange == nil {
		cfg.OnChange = func() {}
	}
	if cfg.Endpoints == nil {
		cfg.Endpoints = func() []netip.Addr { return nil }
	}
	if cfg.Poll == 0 {
		cfg.Poll = 25 * time.Second
	}
	a := &Agent{
		cfg:      cfg,
		loops:    map[string]context.CancelFunc{},
		done:     map[string]chan struct{}{},
		attempts: map[string]chan struct{}{},
		clients:  map[string]*control.Client{},
		inflight: map[string]context.CancelFunc{},
	}
	if _, err := cfg.State.LoadJSON(stateFile, &a.doc); err != nil {
		return nil, err
	}
	a.doc.Version = 1
	return a, nil
}

// Start runs the loops of all loaded memberships until ctx is done.
func (a *Agent) Start(ctx context.Context) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ctx = ctx
	for _, m := range a.doc.Networks {
		a.startLocked(m.ID)
	}
}

// Wait blocks until every membership loop has stopped.
func (a *Agent) Wait() {
	a.mu.Lock()
	var chans []chan struct{}
	for _, c := range a.done {
		chans = append(chans, c)
	}
	a.mu.Unlock()
	for _, c := range chans {
		<-c
	}
}

// Memberships returns a deep-enough copy of all memberships, sorted by ID.
func (a *Agent) Memberships() []Membership {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Membership, 0, len(a.doc.Networks))
	for _, m := range a.doc.Networks {
		c := *m
		c.Replicas = slices.Clone(m.Replicas)
		if m.Config != nil {
			cfg := *m.Config
			c.Config = &cfg
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(x, y Membership) int { return cmpString(x.ID, y.ID) })
	return out
}

// Online reports whether every membership reached its controller on its
// last attempt (true with no memberships).
func (a *Agent) Online() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range a.doc.Networks {
		if !m.Online {
			return false
		}
	}
	return true
}

func (a *Agent) find(id string) *Membership {
	for _, m := range a.doc.Networks {
		if m.ID == id {
			return m
		}
	}
	return nil
}

func (a *Agent) saveLocked() error {
	return a.cfg.State.SaveJSON(stateFile, &a.doc)
}

func (a *Agent) startLocked(id string) {
	if a.ctx == nil {
		return
	}
	ctx, cancel := context.WithCancel(a.ctx)
	done := make(chan struct{})
	a.loops[id] = cancel
	a.done[id] = done
	a.attempts[id] = make(chan struct{})
	go func() {
		defer close(done)
		a.run(ctx, id)
	}()
}

// client returns the client for one controller address; every address of
// a controller is held to the same pin, on every connection.
func (a *Agent) client(addr, pin string) (*control.Client, error) {
	key := addr + " " + pin
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.clients[key]; ok {
		return c, nil
	}
	id := a.cfg.Identity
	c, err := control.NewClient(addr, pin, &id, "")
	if err != nil {
		return nil, err
	}
	a.clients[key] = c
	return c, nil
}

// Reconnect drops every connection to controllers and restarts the
// attempts under way on fresh ones. The daemon calls it when its firewall
// turns strict: conntrack may have picked the old connections up mid-stream
// and then drops their packets as invalid; new ones are tracked from the
// first packet.
func (a *Agent) Reconnect() {
	a.mu.Lock()
	old := a.clients
	a.clients = map[string]*control.Client{}
	var cancels []context.CancelFunc
	for _, c := range a.inflight {
		cancels = append(cancels, c)
	}
	a.mu.Unlock()
	for _, c := range cancels {
		c()
	}
	for _, c := range old {
		c.Close()
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// errPermanent marks a first-join failure that retrying cannot fix.
var errPermanent = errors.New("permanent")

func permanent(err error) bool {
	var ae *control.APIError
	if errors.As(err, &ae) {
		return ae.Status/100 == 4
	}
	return errors.Is(err, errPermanent) || isPinError(err)
}

func isPinError(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "does not match pin") || strings.Contains(err.Error(), "tls:"))
}

func ifaceName(id string) string { return nodeconfig.OverlayInterface(id) }
