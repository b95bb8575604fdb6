package nodeconfig

// The database of a controller run on this node (controller.db): a
// PostgreSQL URL, as `gate controller --db` takes it. The URL may hold a
// password, so this file is the one place that reads it apart: CheckDB
// says whether the controller can take it, RedactDB is how it may be
// shown, DBPassword whether it holds a password. No message of this
// package quotes a db value; they name the part that is wrong.
//
// The check is net/url's parse (the controller's first, in
// controller.OpenPostgres) plus the rules in which pgx, which reads the
// URL at the controller's start, parses it apart differently (the user
// part, the query), so that what Go's parse calls the password is pgx's
// password too and RedactDB hides it. It is not pgconn.ParseConfig: that
// reads the process's PG* environment and files (passfile, sslrootcert,
// ~/.pgpass), and this package is pure: `gate check-config` on a laptop
// must say what the appliance says.

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
)

// MaxDB is the longest database URL a document takes.
const MaxDB = 1024

// redactedPassword stands for a password in RedactDB's output.
const redactedPassword = "xxxxx"

// dbURL is a database URL read apart, with the places of its secrets.
type dbURL struct {
	raw string
	// pass is where the password of the user part is in raw ([0, 0):
	// none).
	pass [2]int
	// query holds the query's settings in order, raw and decoded.
	query []dbParam
}

type dbParam struct {
	key, value string // decoded
	at         int    // where the raw value starts in dbURL.raw
	rawValue   string
}

// secret says whether a setting is a password (password, sslpassword),
// as controller.Redacted takes it.
func (p dbParam) secret() bool { return strings.Contains(strings.ToLower(p.key), "password") }

const errNotShown = "(the URL is not shown: it may hold a password)"

// parseDB reads a postgres:// or postgresql:// URL apart. Its errors
// never quote s.
func parseDB(s string) (*dbURL, error) {
	var rest string
	switch {
	case strings.HasPrefix(s, "postgres://"):
		rest = s[len("postgres://"):]
	case strings.HasPrefix(s, "postgresql://"):
		rest = s[len("postgresql://"):]
	case strings.Contains(s, "://"):
		scheme, _, _ := strings.Cut(s, "://")
		if plainScheme(scheme) {
			return nil, fmt.Errorf("a %s:// URL: want postgres:// or postgresql://", scheme)
		}
		return nil, errors.New("want a postgres:// or postgresql:// URL")
	default:
		return nil, errors.New("not a postgres:// or postgresql:// URL; a controller here keeps SQLite on the state disk (controller.db, beside its key) when db is left out, and takes no other SQLite file")
	}
	if !PrintableASCII(s) || strings.ContainsRune(s, ' ') {
		return nil, errors.New("a database URL is printable ASCII without spaces (percent-encode the rest) " + errNotShown)
	}
	u, err := url.Parse(s)
	if err != nil {
		// url's error quotes the URL whole.
		return nil, errors.New("the URL does not parse " + errNotShown)
	}
	if strings.Contains(s, "#") {
		return nil, errors.New("a database URL has no #fragment (percent-encode '#' as %23) " + errNotShown)
	}
	d := &dbURL{raw: s}
	base := len(s) - len(rest)
	// The user part, as Go reads it: up to the authority's last '@'; as
	// pgx (and libpq) read it: up to the first '@', if no '/' comes
	// before. They must be the same, or one's password is the other's
	// host or query.
	auth := rest
	if i := strings.IndexAny(auth, "/?"); i >= 0 {
		auth = auth[:i]
	}
	goUser, pgxUser := -1, -1
	if i := strings.LastIndexByte(auth, '@'); i >= 0 {
		goUser = i
	}
	if i := strings.IndexAny(rest, "@/"); i >= 0 && rest[i] == '@' {
		pgxUser = i
	}
	if goUser != pgxUser {
		return nil, errors.New("the user part is ambiguous: percent-encode '@', '/', '?' and ':' in the user name and password " + errNotShown)
	}
	if goUser >= 0 {
		if _, p, ok := strings.Cut(rest[:goUser], ":"); ok && p != "" {
			start := base + strings.IndexByte(rest, ':') + 1
			d.pass = [2]int{start, start + len(p)}
		}
	}
	if u.RawQuery != "" {
		// pgx's rules: settings separated by '&', each KEY=VALUE with one
		// '=' (Go's would skip what pgx takes).
		at := strings.IndexByte(s, '?') + 1
		for _, pair := range strings.Split(u.RawQuery, "&") {
			rk, rv, ok := strings.Cut(pair, "=")
			if !ok || strings.Contains(rv, "=") {
				return nil, errors.New("the query is not KEY=VALUE settings separated by '&' " + errNotShown)
			}
			k, err1 := url.PathUnescape(rk) // as pgx: '+' is itself
			v, err2 := url.PathUnescape(rv)
			if err1 != nil || err2 != nil {
				return nil, errors.New("the query does not parse " + errNotShown)
			}
			d.query = append(d.query, dbParam{key: k, value: v, rawValue: rv, at: at + len(rk) + 1})
			at += len(pair) + 1
		}
	}
	return d, nil
}

// plainScheme says whether s can be shown as a URL scheme (RFC 3986).
func plainScheme(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// hasPassword says whether the URL carries a password: in the user part,
// or as a password (or sslpassword) setting.
func (d *dbURL) hasPassword() bool {
	if d.pass[1] > d.pass[0] {
		return true
	}
	for _, p := range d.query {
		if p.secret() && p.value != "" {
			return true
		}
	}
	return false
}

// redacted is the URL with every password replaced, all else as written.
func (d *dbURL) redacted() string {
	type cut struct{ from, to int }
	var cuts []cut
	if d.pass[1] > d.pass[0] {
		cuts = append(cuts, cut{d.pass[0], d.pass[1]})
	}
	for _, p := range d.query {
		if p.secret() && p.rawValue != "" {
			cuts = append(cuts, cut{p.at, p.at + len(p.rawValue)})
		}
	}
	var b strings.Builder
	last := 0
	for _, c := range cuts { // in order: the user part comes first
		b.WriteString(d.raw[last:c.from])
		b.WriteString(redactedPassword)
		last = c.to
	}
	b.WriteString(d.raw[last:])
	return b.String()
}

// sslModes are the sslmode values pgx takes.
var sslModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// CheckDB says whether s can be the database of a controller run on this
// node: a postgres:// or postgresql:// URL (the SQLite default needs no
// setting), at most MaxDB bytes of printable ASCII, that net/url and pgx
// read alike; sslmode, if given, one pgx knows, and the files it may name
// (passfile, sslrootcert, sslcert, sslkey) absolute paths. Its errors
// never quote the URL.
func CheckDB(s string) error {
	if len(s) > MaxDB {
		return fmt.Errorf("%d bytes long; a database URL has at most %d", len(s), MaxDB)
	}
	d, err := parseDB(s)
	if err != nil {
		return err
	}
	for _, p := range d.query {
		switch p.key {
		case "sslmode":
			if !slices.Contains(sslModes, p.value) {
				return fmt.Errorf("sslmode %s: want one of %s (verify-full across hosts)", show(p.value), strings.Join(sslModes, ", "))
			}
		case "passfile", "sslrootcert", "sslcert", "sslkey":
			if p.key == "sslrootcert" && p.value == "system" {
				continue
			}
			if !path.IsAbs(p.value) {
				return fmt.Errorf("%s %s: want an absolute path (e.g. /var/lib/gate/controller/pgpass, 0600, on the state disk)", p.key, show(p.value))
			}
		}
	}
	return nil
}

// RedactDB is a database URL as it may be logged or shown: every password
// (in the user part, and password or sslpassword settings) replaced by
// "xxxxx", all else as written; "(not shown)" for anything that is not a
// URL CheckDB's parse reads apart, for then no one can say where its
// password is.
func RedactDB(s string) string {
	d, err := parseDB(s)
	if err != nil {
		return "(not shown)"
	}
	return d.redacted()
}

// DBPassword says whether a database URL holds a password (in the user
// part, or a password or sslpassword setting); false for one CheckDB
// refuses.
func DBPassword(s string) bool {
	d, err := parseDB(s)
	return err == nil && d.hasPassword()
}

// dbPasswordWarning is said of a controller.db that holds a password and
// came from user-data.
const dbPasswordWarning = "the URL holds a password, and user-data can be read by every process on this host that reaches the metadata service (and by whoever may view the instance's settings in the cloud): " +
	"give the controller a PostgreSQL role that owns only its database, and keep the password in a 0600 file on the node's own disk named by passfile= (e.g. passfile=/var/lib/gate/controller/pgpass, on the state disk)"
