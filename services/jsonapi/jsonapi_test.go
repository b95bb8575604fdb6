package jsonapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type answer struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

// echoed fails to decode with an error that quotes the value raw, as a
// careless UnmarshalJSON would.
type echoed struct{}

func (*echoed) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	return fmt.Errorf("bad value %s", s)
}

// hostile is a message meant for a terminal: a title change, a colour, a
// fake second line and a bidi override.
const hostile = "denied\x1b]0;pwned\x07\x1b[31m\r\nok: joined\u202egnp.exe"

func TestDo(t *testing.T) {
	long := strings.Repeat("é", 600) // 1200 bytes: cut at 1024, between characters
	for _, tt := range []struct {
		name   string
		status int
		ctype  string
		body   string
		limit  int64
		out    any // nil: &answer{}; noOut: nil
		want   any // the decoded answer, when no error
		// Exactly one of these: the *Error wanted, or a text in another
		// error, or neither for success.
		wantAPI *Error
		wantErr string
	}{
		{name: "answer", status: 200, body: `{"name":"x","n":3}`, want: &answer{Name: "x", N: 3}},
		{name: "2xx other than 200", status: 201, body: `{"name":"y"}`, want: &answer{Name: "y"}},
		{name: "no answer wanted", status: 204, out: noOut},
		{name: "no answer wanted, one given", status: 200, body: "<html>", out: noOut},
		{name: "unknown fields are ignored", status: 200, body: `{"name":"x","later":true}`, want: &answer{Name: "x"}},
		{name: "at the limit", status: 200, body: `{"name":"` + strings.Repeat("a", 90) + `"}`, limit: 101, want: &answer{Name: strings.Repeat("a", 90)}},

		{name: "server's message", status: 404, body: `{"error":"network 00000000000000aa not found"}`,
			wantAPI: &Error{404, "network 00000000000000aa not found"}},
		{name: "message with printable unicode", status: 409, body: `{"error":"name «café» is taken"}`,
			wantAPI: &Error{409, "name «café» is taken"}},
		{name: "no message", status: 500, wantAPI: &Error{500, "Internal Server Error"}},
		{name: "empty message", status: 403, body: `{"error":""}`, wantAPI: &Error{403, "Forbidden"}},
		{name: "JSON of another shape", status: 400, body: `[1,2]`, wantAPI: &Error{400, "Bad Request"}},
		{name: "unknown status", status: 599, wantAPI: &Error{599, "HTTP 599"}},
		{name: "a proxy's page", status: 502, ctype: "text/html", body: "<html><body><h1>502 Bad Gateway</h1>\n<hr>nginx</body></html>\n",
			wantAPI: &Error{502, `Bad Gateway (not JSON: 61 bytes of text/html starting "<html><body><h1>502 Bad Gateway</h1>\n<hr>nginx</body></html>\n")`}},
		{name: "hostile message", status: 409, body: `{"error":` + jsonString(hostile) + `}`,
			wantAPI: &Error{409, `denied\x1b]0;pwned\a\x1b[31m\r\nok: joined\u202egnp.exe`}},
		{name: "invalid UTF-8 in the message", status: 400, body: "{\"error\":\"bad \xff\xfe\"}",
			wantAPI: &Error{400, "bad \ufffd\ufffd"}}, // encoding/json replaces it
		{name: "long message", status: 400, body: `{"error":"` + long + `"}`,
			wantAPI: &Error{400, long[:1024] + "..."}},
		{name: "hostile page", status: 500, ctype: "text/plain\u202e\xff", body: "\x1b[2Jgotcha" + strings.Repeat("\x00", 100),
			wantAPI: &Error{500, `Internal Server Error (not JSON: 110 bytes of text/plain\u202e\xff starting "\x1b[2Jgotcha` + strings.Repeat(`\x00`, 54) + `"...)`}},
		{name: "error too large", status: 400, body: `{"error":"` + strings.Repeat("x", 200) + `"}`, limit: 100,
			wantAPI: &Error{400, "Bad Request (an answer larger than 100 bytes)"}},

		{name: "answer too large", status: 200, body: `{"name":"` + strings.Repeat("a", 91) + `"}`, limit: 101,
			wantErr: "answer to POST /v1/thing is larger than 101 bytes"},
		{name: "not JSON", status: 200, ctype: "text/html; charset=utf-8", body: "<!DOCTYPE html>\n<html><head><title>Login</title></head><body>\x1b[5mplease log in</body></html>",
			wantErr: `answer to POST /v1/thing is not JSON: got 92 bytes of text/html; charset=utf-8 starting "<!DOCTYPE html>\n<html><head><title>Login</title></head><body>\x1b[5"...`},
		{name: "empty answer", status: 200, wantErr: "answer to POST /v1/thing is not JSON: got an empty answer"},
		{name: "JSON cut short", status: 200, body: `{"name":"x"`, wantErr: `is not JSON: got 11 bytes of text/plain; charset=utf-8 starting "{\"name\":\"x\""`}, // the server's sniffing,
		{name: "wrong shape", status: 200, body: `{"name":7}`, wantErr: "decoding answer to POST /v1/thing: json: cannot unmarshal number into Go struct field answer.name of type string"},
		{name: "decoder quotes the answer", status: 200, body: jsonString(hostile), out: new(echoed),
			wantErr: `decoding answer to POST /v1/thing: bad value denied\x1b]0;pwned\a`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.ctype != "" {
					w.Header()["Content-Type"] = []string{tt.ctype}
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			c := Client{HTTP: srv.Client(), Base: srv.URL, MaxAnswer: tt.limit}
			out := tt.out
			switch out {
			case nil:
				out = &answer{}
			case noOut:
				out = nil
			}
			err := c.Do(context.Background(), http.MethodPost, "/v1/thing", answer{Name: "in"}, out)
			if err != nil {
				for _, r := range err.Error() {
					if !strconv.IsPrint(r) {
						t.Errorf("error text has %U: %q", r, err.Error())
						break
					}
				}
			}
			switch {
			case tt.wantAPI != nil:
				var ae *Error
				if !errors.As(err, &ae) {
					t.Fatalf("err = %v, want an *Error", err)
				}
				if diff := cmp.Diff(tt.wantAPI, ae); diff != "" {
					t.Errorf("*Error (-want +got):\n%s", diff)
				}
				if ae.Error() != tt.wantAPI.Message {
					t.Errorf("Error() = %q, want the message alone", ae.Error())
				}
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				var ae *Error
				var ue *url.Error
				if errors.As(err, &ae) || errors.As(err, &ue) {
					t.Errorf("err = %#v: a 2xx answer's fault is neither an *Error nor the transport's", err)
				}
			case err != nil:
				t.Fatal(err)
			case tt.want != nil:
				if diff := cmp.Diff(tt.want, out); diff != "" {
					t.Errorf("answer (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func jsonString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// noOut in a case's out asks for a call without an answer.
var noOut = new(struct{ noOut bool })

// TestRequest: what the server sees of a call.
func TestRequest(t *testing.T) {
	type seen struct {
		Method, Path, Query, Body, ContentType, Accept, Auth string
	}
	var got seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = seen{r.Method, r.URL.Path, r.URL.RawQuery, string(b), r.Header.Get("Content-Type"), r.Header.Get("Accept"), r.Header.Get("Authorization")}
		io.WriteString(w, "{}")
	}))
	defer srv.Close()
	ctx := context.Background()
	for _, tt := range []struct {
		name  string
		token string
		call  func(c *Client) error
		want  seen
	}{
		{"body and token", "s3cret", func(c *Client) error {
			return c.Do(ctx, http.MethodPatch, "/v1/networks/ab?delta=1", answer{Name: "n", N: 1}, nil)
		}, seen{"PATCH", "/v1/networks/ab", "delta=1", `{"name":"n","n":1}`, "application/json", "application/json", "Bearer s3cret"}},
		{"no body, no token", "", func(c *Client) error {
			return c.Do(ctx, http.MethodGet, "/v1/status", nil, &answer{})
		}, seen{"GET", "/v1/status", "", "", "", "application/json", ""}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &Client{HTTP: srv.Client(), Base: srv.URL, Token: tt.token}
			if err := tt.call(c); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

// TestErrorsOfTheCaller: errors before anything is sent, and of the
// transport, are told apart from the server's.
func TestErrorsOfTheCaller(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens there now
	ctx := context.Background()
	c := &Client{HTTP: http.DefaultClient, Base: base}

	var ue *url.Error
	if err := c.Do(ctx, http.MethodGet, "/v1/status", nil, nil); !errors.As(err, &ue) {
		t.Errorf("nothing listening: err = %#v, want the transport's *url.Error", err)
	}
	if err := c.Do(ctx, http.MethodPost, "/v1/x", func() {}, nil); err == nil || !strings.Contains(err.Error(), "encoding request for POST /v1/x") {
		t.Errorf("unencodable body: err = %v", err)
	}
	if err := c.Do(ctx, http.MethodGet, "/v1/\x7f", nil, nil); err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), "building request") {
		t.Errorf("bad path: err = %#v, want a building error without a *url.Error", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.Do(cctx, http.MethodGet, "/v1/status", nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v, want context.Canceled", err)
	}
}

func TestPrefix(t *testing.T) {
	for _, tt := range []struct {
		s    string
		max  int
		want string
	}{
		{"abc", 5, "abc"},
		{"abc", 3, "abc"},
		{"abc", 2, "ab"},
		{"aé", 2, "a"}, // é is 2 bytes: not cut in two
		{"a€", 3, "a"},
		{"\xff\xff\xff\xff\xff\xff", 3, "\xff\xff\xff"}, // broken UTF-8 is cut anywhere
		{"", 0, ""},
	} {
		if got := prefix(tt.s, tt.max); got != tt.want {
			t.Errorf("prefix(%q, %d) = %q, want %q", tt.s, tt.max, got, tt.want)
		}
	}
}
