package webconsole

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatenet/gate/services/control"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

var funcs = template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		d := time.Since(t)
		switch {
		case d < 0:
			return "just now"
		case d < time.Minute:
			return strconv.Itoa(int(d.Seconds())) + " s ago"
		case d < time.Hour:
			return strconv.Itoa(int(d.Minutes())) + " min ago"
		case d < 48*time.Hour:
			return strconv.Itoa(int(d.Hours())) + " h ago"
		}
		return strconv.Itoa(int(d.Hours()/24)) + " days ago"
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"iso":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"join": strings.Join,
	"str":  func(v any) string { return fmt.Sprint(v) },
	"has": func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	},
	"split": strings.Fields,
}

// pages is every page, each parsed with the layout.
var pages = func() map[string]*template.Template {
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/_*.html"))
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" || strings.HasPrefix(name, "_") {
			continue
		}
		out[name] = template.Must(template.Must(layout.Clone()).ParseFS(templateFS, n))
	}
	return out
}()

// render writes page name with v. Everything from the controller, and
// everything typed, reaches the page through html/template's escaping.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	v.LiveURL = liveURL(r, v)
	v.Once = newOnce()
	v.Form = printableOnly(v.Form)
	var b bytes.Buffer
	if err := pages[name].ExecuteTemplate(&b, "layout.html", v); err != nil {
		c.logf("web console: page %s: %v", name, err)
		http.Error(w, "internal error; see the controller's log", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// staticFiles serves the embedded stylesheet and script.
func staticFiles() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	fsrv := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		fsrv.ServeHTTP(w, r)
	})
}

// quote quotes text someone typed for a message, cut short.
func quote(s string) string { return strconv.Quote(control.Truncate(s, 80)) }

// liveURL is the page a live page fetches again at a change: itself, or
// for the answer to a form, the page the form is on.
func liveURL(r *http.Request, v *view) string {
	if r.Method == http.MethodGet {
		return r.URL.RequestURI()
	}
	switch {
	case v.Net != nil && v.Tab == "members":
		return "/n/" + v.Net.ID
	case v.Net != nil:
		return "/n/" + v.Net.ID + "/" + v.Tab
	case v.Nav != "":
		return "/" + v.Nav
	}
	return ""
}

// printableOnly is what was typed into a form, to fill it in again after a
// refusal, without control characters or other unprintable ones (the
// refusal names those): escaped or not, they have no business on a page.
func printableOnly(form url.Values) url.Values {
	if form == nil {
		return nil
	}
	out := make(url.Values, len(form))
	for k, vs := range form {
		for _, v := range vs {
			out[k] = append(out[k], strings.Map(func(r rune) rune {
				if r == utf8.RuneError || !unicode.IsPrint(r) && r != ' ' && r != '\n' && r != '\t' {
					return -1
				}
				return r
			}, v))
		}
	}
	return out
}
