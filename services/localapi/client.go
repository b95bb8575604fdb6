package localapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/gatenet/gate/services/jsonapi"
	"github.com/gatenet/gate/services/logring"
)

// Client talks to a daemon's local API.
type Client struct {
	socket    string
	transport http.RoundTripper
	api       jsonapi.Client
}

// NewClient returns a client for the daemon listening on socket.
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}
	return &Client{socket: socket, transport: tr, api: jsonapi.Client{
		HTTP: &http.Client{Transport: tr, Timeout: MaxWait + 10*time.Second},
		// The host is a placeholder: the transport dials the socket.
		Base:      "http://gate",
		MaxAnswer: 16 << 20,
	}}
}

// do is one call. A non-2xx answer is a *jsonapi.Error whose text is the
// daemon's message alone, which the CLI and the console show as it is.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	err := c.api.Do(ctx, method, path, in, out)
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("talking to gate daemon at %s (is `gate up` running?): %w", c.socket, err)
	}
	return err
}

// Status returns the node's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
}

// Networks lists the joined networks.
func (c *Client) Networks(ctx context.Context) ([]Network, error) {
	var ns []Network
	return ns, c.do(ctx, http.MethodGet, "/v1/networks", nil, &ns)
}

// Join joins a network and returns its state right after the attempt.
func (c *Client) Join(ctx context.Context, r JoinRequest) (Network, error) {
	var n Network
	return n, c.do(ctx, http.MethodPost, "/v1/join", r, &n)
}

// Watch returns the daemon's state once its revision passes since, or
// after wait (then the current state, for fresh counters).
func (c *Client) Watch(ctx context.Context, since uint64, wait time.Duration) (Snapshot, error) {
	var s Snapshot
	return s, c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/watch?since=%d&wait=%s", since, wait), nil, &s)
}

// Logs returns the daemon's log lines after since, waiting up to wait for
// new ones.
func (c *Client) Logs(ctx context.Context, since uint64, wait time.Duration) ([]logring.Line, error) {
	var ls []logring.Line
	return ls, c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/logs?since=%d&wait=%s", since, wait), nil, &ls)
}

// Leave leaves a network.
func (c *Client) Leave(ctx context.Context, network string) error {
	return c.do(ctx, http.MethodPost, "/v1/leave", LeaveRequest{Network: network}, nil)
}
