package localapi

// Ports held open for other programs on this host.
//
// A controller run beside `gate up` on a gateway (`gate controller` in a
// process of its own, as a small site runs it) must be reachable by
// members through the gateway's strict firewall, or the second gateway
// never joins and nothing says why. The controller asks the daemon to
// hold its port open for as long as it runs: the request stays open, and
// the port closes when it ends, however the controller ends (killed too:
// the kernel closes its end of the socket). A port is never left open by
// a process that is gone, as a file or a lease would leave it.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/gatenet/gate/services/control"
)

// HoldFor names what holds a port open: the only one is a controller.
const HoldForController = "controller"

// HoldRequest asks the daemon to open TCP port Port on input while the
// request lasts (POST /v1/hold-port).
type HoldRequest struct {
	Port uint16 `json:"port"`
	For  string `json:"for"` // HoldForController
}

// Check says what is wrong with r.
func (r HoldRequest) Check() error {
	if r.Port == 0 {
		return errors.New("port: missing (1-65535)")
	}
	if r.For != HoldForController {
		return fmt.Errorf("for %s: want %q", strconv.QuoteToASCII(r.For), HoldForController)
	}
	return nil
}

// OpenPort is an input port the strict firewall leaves open, and why
// (Status.InputOpen).
type OpenPort struct {
	Proto string `json:"proto"` // "tcp"
	Port  uint16 `json:"port"`
	Why   string `json:"why"`
}

func (p OpenPort) String() string {
	return p.Proto + "/" + strconv.Itoa(int(p.Port)) + " (" + p.Why + ")"
}

// PortsBackend is a Backend that opens ports for others on this host.
type PortsBackend interface {
	// HoldPort opens r.Port on input until release is called.
	HoldPort(r HoldRequest) (release func(), err error)
}

// holdAnswer is the line the daemon writes once the port is open.
type holdAnswer struct {
	Open string `json:"open"` // "tcp/8443"
}

func handlePorts(mux *http.ServeMux, b Backend) {
	mux.HandleFunc("POST /v1/hold-port", func(w http.ResponseWriter, r *http.Request) {
		var req HoldRequest
		if !decode(w, r, &req) {
			return
		}
		if err := req.Check(); err != nil {
			fail(w, err)
			return
		}
		pb, ok := b.(PortsBackend)
		if !ok {
			reply(w, http.StatusNotImplemented, control.Error{Error: "this daemon opens no ports for others"})
			return
		}
		release, err := pb.HoldPort(req)
		if err != nil {
			fail(w, err)
			return
		}
		defer release()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(holdAnswer{Open: "tcp/" + strconv.Itoa(int(req.Port))})
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		<-r.Context().Done()
	})
}

// HoldPort asks the daemon to open TCP port on input, for what r.For
// says, for as long as ctx lives; opened is called once it is open. It
// returns when ctx ends (nil) or when the daemon goes or refuses (the
// error); the port is then closed.
func (c *Client) HoldPort(ctx context.Context, r HoldRequest, opened func()) error {
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://gate/v1/hold-port", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	// No timeout: the answer lasts as long as the hold.
	resp, err := (&http.Client{Transport: c.transport}).Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("talking to gate daemon at %s (is `gate up` running?): %w", c.socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e control.Error
		_ = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&e)
		return fmt.Errorf("gate daemon at %s: %s", c.socket, clean(cmp.Or(e.Error, resp.Status)))
	}
	var a holdAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&a); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("gate daemon at %s: %w", c.socket, err)
	}
	opened()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096)) // until the daemon or ctx ends it
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("gate daemon at %s went away", c.socket)
}
