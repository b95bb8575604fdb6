package localapi

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/names"
)

// DefaultConfirm is how long a change to the NICs waits for the operator's
// confirmation before it reverts by itself.
const DefaultConfirm = 60 * time.Second

// SetInterfaceRequest is the body of POST /v1/interfaces/{name}: DHCP, or
// a static address with gateway and DNS.
type SetInterfaceRequest struct {
	DHCP    bool         `json:"dhcp"`
	Address netip.Prefix `json:"address,omitzero"` // host address with its prefix length
	Gateway netip.Addr   `json:"gateway,omitzero"`
	DNS     []netip.Addr `json:"dns,omitempty"`
	// Confirm is how long the change waits for POST /v1/confirm before it
	// reverts (0: DefaultConfirm).
	Confirm Duration `json:"confirm,omitzero"`
}

// Duration is a time.Duration written as a Go duration string in JSON.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	*d = Duration(v)
	return nil
}

// Pending is a change applied on probation: unless it is confirmed by
// Deadline, or the controllers are reachable again after it, the previous
// configuration comes back by itself, so a wrong static IP set on a remote
// console never locks anyone out.
type Pending struct {
	What     string    `json:"what"`
	Applied  time.Time `json:"applied"`
	Deadline time.Time `json:"deadline"`
}

// PowerRequest is the body of POST /v1/power.
type PowerRequest struct {
	Action string `json:"action"` // "reboot" or "poweroff"
}

// ConfigBackend is a Backend that changes the machine: NIC settings with
// commit-confirm, and power. Only the appliance implements it for real;
// the others answer with an error saying so.
type ConfigBackend interface {
	SetInterface(ctx context.Context, name string, r SetInterfaceRequest) (Pending, error)
	Confirm(ctx context.Context) error
	Power(ctx context.Context, action string) error
}

func handleConfig(mux *http.ServeMux, b Backend) {
	cb, _ := b.(ConfigBackend)
	unsupported := func(w http.ResponseWriter) bool {
		if cb == nil {
			reply(w, http.StatusNotImplemented, control.Error{Error: "this daemon does not manage the machine (only the appliance does)"})
			return true
		}
		return false
	}
	mux.HandleFunc("POST /v1/interfaces/{name}", func(w http.ResponseWriter, r *http.Request) {
		var req SetInterfaceRequest
		if unsupported(w) || !decode(w, r, &req) {
			return
		}
		name := r.PathValue("name")
		if !names.Interface(name) {
			reply(w, http.StatusBadRequest, control.Error{Error: "interface name " + strconv.QuoteToASCII(name) + " is not one (1-15 printable ASCII characters, no spaces, '/' or ':')"})
			return
		}
		p, err := cb.SetInterface(r.Context(), name, req)
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, http.StatusOK, p)
	})
	mux.HandleFunc("POST /v1/confirm", func(w http.ResponseWriter, r *http.Request) {
		if unsupported(w) {
			return
		}
		if err := cb.Confirm(r.Context()); err != nil {
			fail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /v1/power", func(w http.ResponseWriter, r *http.Request) {
		var req PowerRequest
		if unsupported(w) || !decode(w, r, &req) {
			return
		}
		if err := cb.Power(r.Context(), req.Action); err != nil {
			fail(w, err)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
}

// SetInterface changes a NIC's settings on probation; Confirm keeps them.
func (c *Client) SetInterface(ctx context.Context, name string, r SetInterfaceRequest) (Pending, error) {
	var p Pending
	return p, c.do(ctx, http.MethodPost, "/v1/interfaces/"+url.PathEscape(name), r, &p)
}

// Confirm keeps the change on probation.
func (c *Client) Confirm(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/confirm", nil, nil)
}

// Power reboots ("reboot") or powers off ("poweroff") the appliance.
func (c *Client) Power(ctx context.Context, action string) error {
	return c.do(ctx, http.MethodPost, "/v1/power", PowerRequest{Action: action}, nil)
}
