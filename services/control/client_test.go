package control

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatenet/gate/services/jsonapi"
)

// TestAPIError: a refusal written as the controller writes it (an Error
// body) reaches callers as an *APIError with its status and message, the
// message made printable (jsonapi owns how).
func TestAPIError(t *testing.T) {
	for _, tt := range []struct {
		name     string
		status   int
		msg      string
		wantText string
	}{
		{"not found", 404, "network 00000000000000aa not found", "controller: network 00000000000000aa not found (HTTP 404)"},
		{"conflict", 409, "public_key is already used by another member", "controller: public_key is already used by another member (HTTP 409)"},
		{"no message", 401, "", "controller: Unauthorized (HTTP 401)"},
		{"hostile", 400, "bad\x1b[2J\r\nadmin: ok", `controller: bad\x1b[2J\r\nadmin: ok (HTTP 400)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				json.NewEncoder(w).Encode(Error{Error: tt.msg})
			}))
			defer srv.Close()
			c := &Client{api: jsonapi.Client{HTTP: srv.Client(), Base: srv.URL}}
			_, err := c.Networks(context.Background())
			if !IsStatus(err, tt.status) {
				t.Fatalf("err = %#v, want an *APIError with HTTP %d", err, tt.status)
			}
			if err.Error() != tt.wantText {
				t.Errorf("err = %q, want %q", err.Error(), tt.wantText)
			}
			if IsStatus(err, tt.status+1) {
				t.Errorf("IsStatus(err, %d) = true", tt.status+1)
			}
		})
	}
}
