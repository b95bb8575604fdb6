// Package jsonapi is the client side of Gate's JSON-over-HTTP APIs: the
// controller's /v1 API (services/control) and the node daemon's local API
// (services/localapi). It owns one exchange, once: a method, a path, a JSON
// body in, a JSON answer out, and a non-2xx answer turned into an *Error
// that carries the status and the server's message. Each API's client
// brings its own transport (pinned TLS, a unix socket), its routes and its
// own words for errors; this package knows none of them.
//
// An answer is not trusted. It is read up to a bound, and whatever of it
// reaches an error's text is truncated and made printable, so that a broken
// or hostile server cannot write control sequences into a terminal or a log
// line through a caller's error.
//
// It imports nothing of Gate, so that every API package can use it.
package jsonapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// DefaultMaxAnswer bounds an answer's body when Client.MaxAnswer is 0.
const DefaultMaxAnswer = 16 << 20

// Bounds on what of an answer reaches an error's text, in bytes before
// escaping.
const (
	maxMessage = 1024 // a server's error message
	maxExcerpt = 64   // the start of an answer that is not JSON
)

// Client makes calls to one JSON API. Its zero value is not usable: HTTP
// and Base must be set.
type Client struct {
	// HTTP carries the calls (its transport decides TLS, sockets, timeouts).
	HTTP *http.Client
	// Base is prepended to every path: "https://host:port", "http://gate".
	Base string
	// Token, when set, is sent as "Authorization: Bearer <Token>".
	Token string
	// MaxAnswer bounds an answer's body in bytes; 0 means DefaultMaxAnswer.
	MaxAnswer int64
}

// Error is a non-2xx answer. Message is the server's message (the "error"
// field of a body like {"error":"..."}), truncated and made printable; when
// the server gave none, it is the status text and a description of what
// came instead. Its text is Message alone: a client adds its own context
// (control.APIError names the controller and the status).
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// ErrorBody is the shape of every non-2xx body in Gate: control.Error is
// this type (an alias: it is defined here because services/control
// imports this package).
type ErrorBody struct {
	Error string `json:"error"`
}

// Do sends one request and decodes the answer into out. in and out may be
// nil: no body is sent, the answer's body is not read as JSON. An error is
// an *Error for a non-2xx answer; an error of the transport as
// http.Client.Do returns it (a *url.Error, and the only error here with one
// in its chain); otherwise one that names the call and what was wrong.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding request for %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		// Not wrapped: url.Parse's *url.Error would pass for one of the
		// transport's, which callers tell apart with errors.As.
		return fmt.Errorf("building request %s %s: %v", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	limit := c.MaxAnswer
	if limit <= 0 {
		limit = DefaultMaxAnswer
	}
	// One byte more than the bound tells a body at the bound from a
	// longer one.
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("reading answer to %s %s: %w", method, path, err)
	}
	tooLarge := int64(len(b)) > limit
	if resp.StatusCode/100 != 2 {
		// The status is what callers act on (IsStatus, 4xx is permanent),
		// so it is kept whatever the body.
		return &Error{Status: resp.StatusCode, Message: message(resp, b, limit)}
	}
	if out == nil {
		return nil
	}
	switch {
	case tooLarge:
		return fmt.Errorf("answer to %s %s is larger than %d bytes", method, path, limit)
	case !json.Valid(b):
		return fmt.Errorf("answer to %s %s is not JSON: got %s", method, path, describe(resp, b))
	}
	if err := json.Unmarshal(b, out); err != nil {
		// A decoder's error may quote the answer (a custom
		// UnmarshalJSON, a parse error of a value): made printable too.
		return &decodeError{text: fmt.Sprintf("decoding answer to %s %s: %s", method, path, clean(err.Error(), maxMessage)), err: err}
	}
	return nil
}

// message is the text of a non-2xx answer: the server's message, or the
// status text and what came instead. b holds at most limit+1 bytes.
func message(resp *http.Response, b []byte, limit int64) string {
	tooLarge := int64(len(b)) > limit
	var e ErrorBody
	if !tooLarge && json.Unmarshal(b, &e) == nil && e.Error != "" {
		return clean(e.Error, maxMessage)
	}
	m := http.StatusText(resp.StatusCode)
	if m == "" {
		m = "HTTP " + strconv.Itoa(resp.StatusCode)
	}
	switch {
	case tooLarge:
		return m + " (an answer larger than " + strconv.FormatInt(limit, 10) + " bytes)"
	case len(b) == 0, json.Valid(b):
		return m
	}
	return m + " (not JSON: " + describe(resp, b) + ")"
}

// describe names an answer that is not JSON: its size, its content type and
// its first bytes, quoted.
func describe(resp *http.Response, b []byte) string {
	if len(b) == 0 {
		return "an empty answer"
	}
	d := strconv.Itoa(len(b)) + " bytes"
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		d += " of " + clean(ct, maxExcerpt)
	}
	cut := prefix(string(b), maxExcerpt)
	d += " starting " + strconv.Quote(cut)
	if len(cut) < len(b) {
		d += "..."
	}
	return d
}

// clean returns s, at most max bytes of it, fit to show: unchanged when it
// is valid UTF-8 of printable characters, otherwise escaped as in a Go
// string literal (without the quotes), so that control characters, bidi
// overrides and broken UTF-8 show as \x1b, \u202e and the like. A cut
// string ends in "...".
func clean(s string, max int) string {
	cut := prefix(s, max)
	short := len(cut) < len(s)
	if !printable(cut) {
		q := strconv.Quote(cut)
		cut = q[1 : len(q)-1]
	}
	if short {
		cut += "..."
	}
	return cut
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return false
		}
	}
	return true
}

// prefix returns at most max bytes of s, not cutting a character in two.
func prefix(s string, max int) string {
	if len(s) <= max {
		return s
	}
	n := max
	for n > 0 && n > max-utf8.UTFMax && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// decodeError is an answer that did not decode: its text made printable,
// the decoder's error kept for errors.As.
type decodeError struct {
	text string
	err  error
}

func (e *decodeError) Error() string { return e.text }
func (e *decodeError) Unwrap() error { return e.err }
