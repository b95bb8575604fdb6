package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/logring"
	"github.com/gatenet/gate/services/nodeconfig"
)

// Backend is what the daemon provides to the local API.
type Backend interface {
	Status() Status
	Networks() []Network
	Join(ctx context.Context, r JoinRequest) (Network, error)
	Leave(ctx context.Context, network string) error
	// Watch returns a snapshot once the daemon's state revision passes
	// since, or when ctx is done (then the current one).
	Watch(ctx context.Context, since uint64) Snapshot
	// Logs returns log lines after since, waiting for some until ctx is
	// done.
	Logs(ctx context.Context, since uint64) []logring.Line
}

// MaxWait bounds the wait parameter of watch and logs.
const MaxWait = 60 * time.Second

// waitParam reads ?wait= (a Go duration, default def, at most MaxWait).
func waitParam(r *http.Request, def time.Duration) (time.Duration, error) {
	w := r.URL.Query().Get("wait")
	if w == "" {
		return def, nil
	}
	d, err := time.ParseDuration(w)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("wait %q: want a duration like 2s", w)
	}
	return min(d, MaxWait), nil
}

func uintParam(r *http.Request, name string) (uint64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %q: want a non-negative integer", name, v)
	}
	return n, nil
}

// ErrNotFound marks errors about things that do not exist (HTTP 404).
var ErrNotFound = errors.New("not found")

// Handler serves the local API for b.
func Handler(b Backend) http.Handler {
	mux := http.NewServeMux()
	handleInterfaces(mux, b)
	handlePorts(mux, b)
	handleConfig(mux, b)
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, b.Status())
	})
	mux.HandleFunc("GET /v1/networks", func(w http.ResponseWriter, r *http.Request) {
		ns := b.Networks()
		if ns == nil {
			ns = []Network{}
		}
		reply(w, http.StatusOK, ns)
	})
	mux.HandleFunc("POST /v1/join", func(w http.ResponseWriter, r *http.Request) {
		var req JoinRequest
		if !decode(w, r, &req) {
			return
		}
		if err := checkJoin(req); err != nil {
			fail(w, err)
			return
		}
		n, err := b.Join(r.Context(), req)
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, http.StatusOK, n)
	})
	mux.HandleFunc("POST /v1/leave", func(w http.ResponseWriter, r *http.Request) {
		var req LeaveRequest
		if !decode(w, r, &req) {
			return
		}
		if err := control.CheckNetworkID(control.NormalizeID(req.Network)); err != nil {
			fail(w, err)
			return
		}
		if err := b.Leave(r.Context(), req.Network); err != nil {
			fail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /v1/watch", func(w http.ResponseWriter, r *http.Request) {
		since, err := uintParam(r, "since")
		if err != nil {
			fail(w, err)
			return
		}
		wait, err := waitParam(r, 2*time.Second)
		if err != nil {
			fail(w, err)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		defer cancel()
		snap := b.Watch(ctx, since)
		if snap.Networks == nil {
			snap.Networks = []Network{}
		}
		reply(w, http.StatusOK, snap)
	})
	mux.HandleFunc("GET /v1/logs", func(w http.ResponseWriter, r *http.Request) {
		since, err := uintParam(r, "since")
		if err != nil {
			fail(w, err)
			return
		}
		wait, err := waitParam(r, 0)
		if err != nil {
			fail(w, err)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		defer cancel()
		lines := b.Logs(ctx, since)
		if lines == nil {
			lines = []logring.Line{}
		}
		reply(w, http.StatusOK, lines)
	})
	return mux
}

// MaxRequestBody bounds a request body: a join request with a join
// string is a few hundred bytes.
const MaxRequestBody = 64 << 10

// decode reads a request body into v: exactly one JSON value, at most
// MaxRequestBody bytes, no unknown fields (v's types do the rest: netip
// values, durations).
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxRequestBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, more := dec.Token(); !errors.Is(more, io.EOF) {
			err = errors.New("data after the JSON value")
		}
	}
	if err != nil {
		reply(w, http.StatusBadRequest, control.Error{Error: "request body: " + clean(err.Error())})
		return false
	}
	return true
}

// maxJoin bounds a join string or a controller address: room for
// control.MaxControllers addresses of the longest DNS names, a pin and a
// token.
const maxJoin = 4096

// checkJoin checks a join request before the daemon sees it: its strings
// are printable ASCII of bounded length, and then the domain's one
// validator (nodeconfig.JoinRequest.Check, which the agent calls again)
// says what else is wrong, in the words the console and the CLI use.
func checkJoin(r JoinRequest) error {
	fields := []struct {
		name, v string
		max     int
	}{{"join", r.Join, maxJoin}, {"controller", r.Controller, maxJoin}, {"instance_id", r.InstanceID, nodeconfig.MaxInstanceID}}
	if r.Gateway != nil {
		fields = append(fields, struct {
			name, v string
			max     int
		}{"gateway.lan", r.Gateway.LAN, 15})
	}
	for _, f := range fields {
		if len(f.v) > f.max {
			return fmt.Errorf("%s: at most %d characters", f.name, f.max)
		}
		if !nodeconfig.PrintableASCII(f.v) {
			return fmt.Errorf("%s %s: printable ASCII only", f.name, strconv.QuoteToASCII(f.v))
		}
	}
	return r.Check()
}

// clean makes an error message printable ASCII for the caller's terminal:
// a request's bytes can be quoted in it (by encoding/json, or by the
// daemon's %q, which leaves non-ASCII as it is).
func clean(s string) string {
	if nodeconfig.PrintableASCII(s) {
		return s
	}
	q := strconv.QuoteToASCII(s)
	return q[1 : len(q)-1]
}

func fail(w http.ResponseWriter, err error) {
	code := http.StatusBadRequest
	if errors.Is(err, ErrNotFound) {
		code = http.StatusNotFound
	}
	reply(w, code, control.Error{Error: clean(err.Error())})
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// Listen opens the unix socket at path, root-only: the directory is made
// 0700 if Gate creates it, the socket 0600. A stale socket from a previous
// run is replaced; a live one (another daemon) is an error.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("local API: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("local API: another daemon is listening on %s", path)
	}
	os.Remove(path)
	old := syscallUmask(0o177)
	ln, err := net.Listen("unix", path)
	syscallUmask(old)
	if err != nil {
		return nil, fmt.Errorf("local API: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("local API: %w", err)
	}
	return ln, nil
}

// Serve serves h on ln until ctx is done.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
