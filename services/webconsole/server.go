package webconsole

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/gatenet/gate/services/control"
)

// Cookies: the session's is HttpOnly, Secure and SameSite=Strict; the
// flash cookie carries one line of the console's own text to the page a
// change redirects to. Their names carry the controller's ID (Backend.ID):
// cookies do not keep ports apart, and two controllers' consoles tunnelled
// to localhost must not overwrite each other's.
const (
	sessionCookie = "gate_session_"
	flashCookie   = "gate_flash_"
)

// Caps on live pages' event streams: each holds a connection (and a
// browser allows only six to one host over HTTP/1.1; pages in hidden tabs
// close theirs).
const (
	maxStreamsPerSession = 8
	maxStreams           = 256
)

// maxForm bounds a form's body: the largest is a network's rules.
const maxForm = 256 << 10

// Console serves the web console.
type Console struct {
	b    Backend
	logf func(format string, args ...any)
	mux  *http.ServeMux
	// sessionName and flashName are the cookies' names.
	sessionName, flashName string
	// once remembers the forms that made a secret, so that a form sent
	// twice (a reload, Back, a double click) does not make a second one.
	once onceForms
	// streams counts the open event streams, by session.
	streams streamCount
	// tick is how often a live page hears from /events when nothing
	// changed (to keep "last seen" fresh and the connection alive).
	tick time.Duration
}

// New returns the console for backend b. logf logs sign-ins and refusals
// (nil: none).
func New(b Backend, logf func(format string, args ...any)) *Console {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	c := &Console{b: b, logf: logf, mux: http.NewServeMux(), tick: 15 * time.Second,
		sessionName: sessionCookie + b.ID(), flashName: flashCookie + b.ID()}
	c.routes()
	return c
}

// ServeHTTP serves a request, with the headers every answer carries: a
// content security policy that allows only the console's own scripts and
// styles (no inline script, nothing from elsewhere), no framing, no
// sniffing, no referrer.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin") // not no-referrer: with it Chromium sends "Origin: null" on the console's own forms
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	c.mux.ServeHTTP(w, r)
}

// page is a handler of a signed-in page: it gets the session and a client
// of the admin API as that session.
type page func(w http.ResponseWriter, r *http.Request, s *signedIn)

type signedIn struct {
	Session
	api    *control.Client
	secret string
	CSRF   string
}

func (c *Console) routes() {
	m := c.mux
	m.Handle("GET /static/", http.StripPrefix("/static/", staticFiles()))
	m.HandleFunc("GET /{$}", c.signedIn(func(w http.ResponseWriter, r *http.Request, s *signedIn) {
		http.Redirect(w, r, "/networks", http.StatusSeeOther)
	}))
	m.HandleFunc("GET /signin", c.signInPage)
	m.HandleFunc("POST /signin", c.signIn)
	m.HandleFunc("POST /signout", c.change(c.signOut))
	m.HandleFunc("GET /events", c.signedIn(c.events))
	m.HandleFunc("GET /networks", c.signedIn(c.networksPage))
	m.HandleFunc("POST /networks", c.change(c.createNetwork))
	m.HandleFunc("GET /n/{id}", c.signedIn(c.membersPage))
	m.HandleFunc("POST /n/{id}/rename", c.change(c.renameNetwork))
	m.HandleFunc("POST /n/{id}/settings", c.change(c.networkSettings))
	m.HandleFunc("POST /n/{id}/delete", c.change(c.deleteNetwork))
	m.HandleFunc("POST /n/{id}/m/{node}/{op}", c.change(c.memberOp))
	m.HandleFunc("GET /n/{id}/m/{node}/check", c.signedIn(c.checkAddress))
	m.HandleFunc("GET /n/{id}/routes", c.signedIn(c.routesPage))
	m.HandleFunc("POST /n/{id}/routes", c.change(c.addRoute))
	m.HandleFunc("POST /n/{id}/routes/delete", c.change(c.deleteRoute))
	m.HandleFunc("GET /n/{id}/tokens", c.signedIn(c.tokensPage))
	m.HandleFunc("POST /n/{id}/tokens", c.change(c.createToken))
	m.HandleFunc("POST /n/{id}/tokens/{token}/revoke", c.change(c.revokeToken))
	m.HandleFunc("GET /n/{id}/rules", c.signedIn(c.rulesPage))
	m.HandleFunc("POST /n/{id}/rules", c.change(c.setRules))
	m.HandleFunc("POST /n/{id}/rules/test", c.change(c.testRules))
	m.HandleFunc("GET /audit", c.signedIn(c.auditPage))
	m.HandleFunc("GET /access", c.signedIn(c.accessPage))
	m.HandleFunc("POST /access", c.change(c.createAdminToken))
	m.HandleFunc("POST /access/{token}/revoke", c.change(c.revokeAdminToken))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, http.StatusNotFound, "error", &view{Title: "Not found", Error: "There is no page at " + quote(r.URL.Path) + "."})
	})
}

// remote is the address a request came from, as the socket saw it.
func remote(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// live says whether r is a live page's own refresh rather than a
// person's request: it does not count as the session's use.
func live(r *http.Request) bool { return r.Header.Get("X-Gate-Live") != "" || r.URL.Path == "/events" }

// session finds the request's session; nil and the reason if there is
// none.
func (c *Console) session(r *http.Request) (*signedIn, error) {
	ck, err := r.Cookie(c.sessionName)
	if err != nil || ck.Value == "" {
		return nil, errors.New("")
	}
	sess, api, err := c.b.Session(r.Context(), ck.Value, remote(r), !live(r))
	if err != nil {
		return nil, err
	}
	return &signedIn{Session: sess, api: api, secret: ck.Value, CSRF: csrfToken(ck.Value)}, nil
}

// signedIn wraps a page that needs a session: without one, the browser is
// sent to sign in (and back here after); a request from the page's own
// script (live updates, checks) gets 401.
func (c *Console) signedIn(h page) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := c.session(r)
		if err != nil {
			if live(r) || strings.HasSuffix(r.URL.Path, "/check") {
				http.Error(w, "signed out", http.StatusUnauthorized)
				return
			}
			c.toSignIn(w, r, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		h(w, r, s)
	}
}

func (c *Console) toSignIn(w http.ResponseWriter, r *http.Request, why error) {
	q := url.Values{"next": {r.URL.RequestURI()}}
	if why != nil && why.Error() != "" {
		c.setFlash(w, messageOf(why))
	}
	http.Redirect(w, r, "/signin?"+q.Encode(), http.StatusSeeOther)
}

// change wraps a handler of a form that changes something: it needs a
// session, a request from the console's own pages (Origin, and
// Sec-Fetch-Site where the browser sends it) and the session's CSRF token
// in the form. Any of them missing is refused before anything is read
// further; nothing reaches the API.
func (c *Console) change(h page) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := sameOrigin(r); err != nil {
			c.refuse(w, r, err.Error())
			return
		}
		s, err := c.session(r)
		if err != nil {
			c.toSignIn(w, r, err)
			return
		}
		if err := r.ParseForm(); err != nil {
			c.render(w, r, http.StatusBadRequest, "error", &view{Title: "Bad request", Error: "The form could not be read: " + err.Error(), S: s})
			return
		}
		if got := r.PostForm.Get("csrf"); subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) != 1 {
			c.refuse(w, r, "the form's anti-forgery token is missing or wrong: reload the page and try again")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		h(w, r, s)
	}
}

func (c *Console) refuse(w http.ResponseWriter, r *http.Request, why string) {
	// The method and path are the requester's: quoted, cut short.
	c.logf("web console: refused %s %s from %s: %s", quote(r.Method), quote(r.URL.Path), remote(r), why)
	c.render(w, r, http.StatusForbidden, "error", &view{Title: "Refused", Error: "Refused: " + why + "."})
}

// sameOrigin refuses a change sent from another site: the Origin header
// (which every current browser sends on a POST) must be this console's
// own, and Sec-Fetch-Site, where sent, same-origin.
func sameOrigin(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return errors.New("the request came from another site (Sec-Fetch-Site: " + quote(site) + ")")
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil // an older browser or a script: the CSRF token decides
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if origin != scheme+"://"+r.Host {
		return errors.New("the request came from another origin (" + quote(origin) + ")")
	}
	return nil
}

// csrfToken is the anti-forgery token of the session whose cookie secret
// is secret: derived from it, so that nothing more is stored, and worth
// nothing without the cookie.
func csrfToken(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("gate web console csrf"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	v := &view{Title: "Sign in", Next: safeNext(r.URL.Query().Get("next")), Flash: c.takeFlash(w, r)}
	c.render(w, r, http.StatusOK, "signin", v)
}

// signIn opens a session for the admin token typed in. It is not behind
// a session, so the Origin check is what keeps another site from signing
// a browser in with the other site's token.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := sameOrigin(r); err != nil {
		c.refuse(w, r, err.Error())
		return
	}
	if err := r.ParseForm(); err != nil {
		c.render(w, r, http.StatusBadRequest, "signin", &view{Title: "Sign in", Error: "The form could not be read."})
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	sess, err := c.b.SignIn(r.Context(), r.PostForm.Get("token"), remote(r))
	if err != nil {
		c.logf("web console: sign-in refused from %s", remote(r))
		c.render(w, r, statusOf(err), "signin", &view{Title: "Sign in", Next: next, Error: messageOf(err)})
		return
	}
	// A session this browser held before ends: one browser, one session.
	if old, err := r.Cookie(c.sessionName); err == nil && old.Value != "" {
		c.b.SignOut(r.Context(), old.Value, remote(r))
	}
	http.SetCookie(w, &http.Cookie{Name: c.sessionName, Value: sess.Secret, Path: "/", Expires: sess.Expires,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request, s *signedIn) {
	if err := c.b.SignOut(r.Context(), s.secret, remote(r)); err != nil {
		c.fail(w, r, s, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: c.sessionName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	c.setFlash(w, "Signed out.")
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// safeNext is where to go after signing in: a path on this console only.
// Browsers drop tabs and newlines from a Location and read a backslash as
// a slash, so "/\t/evil" or "/\\evil" would leave it: any control
// character, backslash, scheme or host is refused.
func safeNext(next string) string {
	const home = "/networks"
	if len(next) > 512 || strings.ContainsFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return home
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(next, "//") {
		return home
	}
	return next
}

func (c *Console) setFlash(w http.ResponseWriter, msg string) {
	http.SetCookie(w, &http.Cookie{Name: c.flashName, Value: base64.RawURLEncoding.EncodeToString([]byte(control.Truncate(msg, 300))), Path: "/",
		MaxAge: 60, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

// takeFlash returns the message a redirect carried, once.
func (c *Console) takeFlash(w http.ResponseWriter, r *http.Request) string {
	ck, err := r.Cookie(c.flashName)
	if err != nil {
		return ""
	}
	http.SetCookie(w, &http.Cookie{Name: c.flashName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	b, err := base64.RawURLEncoding.DecodeString(ck.Value)
	if err != nil {
		return ""
	}
	return control.Truncate(string(b), 300)
}

// done redirects after a change that worked, with msg shown there.
func (c *Console) done(w http.ResponseWriter, r *http.Request, to, msg string) {
	c.setFlash(w, msg)
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// events streams "change" to a live page at every change the controller
// commits, and "tick" every c.tick, until the page goes away or the
// session ends.
func (c *Console) events(w http.ResponseWriter, r *http.Request, s *signedIn) {
	release, ok := c.streams.open(s.secret)
	if !ok {
		http.Error(w, "too many live pages open", http.StatusTooManyRequests)
		return
	}
	defer release()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(": live\n\n"))
	if rc.Flush() != nil {
		return
	}
	// A session is checked again at each tick, so that one that ended
	// stops hearing of changes.
	tick := time.NewTicker(c.tick)
	defer tick.Stop()
	for {
		changed := c.b.Changed()
		select {
		case <-r.Context().Done():
			return
		case <-changed:
			w.Write([]byte("event: change\ndata: \n\n"))
			// At most one change a second reaches a page.
			select {
			case <-r.Context().Done():
				return
			case <-time.After(time.Second):
			}
		case <-tick.C:
			if _, _, err := c.b.Session(r.Context(), s.secret, remote(r), false); err != nil {
				w.Write([]byte("event: signedout\ndata: \n\n"))
				rc.Flush()
				return
			}
			w.Write([]byte("event: tick\ndata: \n\n"))
		}
		if rc.Flush() != nil {
			return
		}
	}
}

func statusOf(err error) int {
	var ae *control.APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	if errors.Is(err, context.Canceled) {
		return http.StatusRequestTimeout
	}
	return http.StatusInternalServerError
}

// messageOf is what a person is told of err.
func messageOf(err error) string {
	var ae *control.APIError
	if errors.As(err, &ae) {
		return ae.Message
	}
	return "internal error; see the controller's log"
}
