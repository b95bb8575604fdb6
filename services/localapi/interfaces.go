package localapi

import (
	"context"
	"net/http"
	"net/netip"
	"time"
)

// Interface is one of the machine's NICs as the appliance manages it (GET
// /v1/interfaces). Only `gate up --manage-nics` (the appliance) manages
// NICs; elsewhere the list is empty.
type Interface struct {
	Name         string         `json:"name"`
	MAC          string         `json:"mac"`
	Link         string         `json:"link"` // "up", "down" (no carrier) or "admin-down"
	Mode         string         `json:"mode"` // "dhcp" or "static"
	Addresses    []netip.Prefix `json:"addresses"`
	Gateway      netip.Addr     `json:"gateway,omitzero"`
	DefaultRoute bool           `json:"default_route"` // Gate's default route through this NIC is in place
	WAN          bool           `json:"wan"`           // the NIC of the default route the kernel uses
	DNS          []netip.Addr   `json:"dns,omitempty"`
	DHCP         *DHCP          `json:"dhcp,omitempty"`
	Error        string         `json:"error,omitempty"`
}

// DHCP is a NIC's DHCP client and lease.
type DHCP struct {
	State     string     `json:"state"` // init, bound, renewing, rebinding, link-down
	Server    netip.Addr `json:"server,omitzero"`
	Domain    string     `json:"domain,omitempty"`
	Lifetime  string     `json:"lifetime,omitempty"`
	Obtained  time.Time  `json:"obtained,omitzero"`
	Renew     time.Time  `json:"renew,omitzero"`  // T1
	Rebind    time.Time  `json:"rebind,omitzero"` // T2
	Expiry    time.Time  `json:"expiry,omitzero"`
	LastError string     `json:"last_error,omitempty"`
}

// InterfacesBackend is a Backend that reports NICs. It is a separate
// interface so that backends without NICs (tests, the console's fakes)
// need not implement it: they serve an empty list.
type InterfacesBackend interface {
	Interfaces() []Interface
}

func handleInterfaces(mux *http.ServeMux, b Backend) {
	mux.HandleFunc("GET /v1/interfaces", func(w http.ResponseWriter, r *http.Request) {
		var out []Interface
		if ib, ok := b.(InterfacesBackend); ok {
			out = ib.Interfaces()
		}
		if out == nil {
			out = []Interface{}
		}
		reply(w, http.StatusOK, out)
	})
}

// Interfaces lists the NICs the daemon manages.
func (c *Client) Interfaces(ctx context.Context) ([]Interface, error) {
	var out []Interface
	return out, c.do(ctx, http.MethodGet, "/v1/interfaces", nil, &out)
}
