package nodeconfig

import (
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// pw is the password the tests put in database URLs: it must never come
// out of the package again, in a message, a warning or Format's output.
const pw = "S3cr3tPw"

const goodDB = "postgres://gate@db.internal/gate?sslmode=verify-full"

// everything is every string a config and its parse make that a node
// shows: the error, every issue, Format's output and the Redacted copy's.
func everything(c *Config, warns []Issue, err error) string {
	var b strings.Builder
	if err != nil {
		b.WriteString(err.Error())
		var e *Error
		if errors.As(err, &e) {
			for _, is := range append(e.Errors, e.Warnings...) {
				b.WriteString(is.String() + is.Path + is.Message + is.Origin)
			}
		}
	}
	for _, w := range warns {
		b.WriteString(w.String())
	}
	if c != nil {
		b.Write(Format(c))
		b.Write(Format(c.Redacted()))
	}
	return b.String()
}

func TestControllerDB(t *testing.T) {
	doc := func(db string) string {
		return "version: 1\ncontroller:\n  listen: \":8443\"\n  db: " + db + "\n"
	}
	for _, tc := range []struct {
		name, db string
		want     string // the DB after Format and Parse again
	}{
		{"URL", goodDB, goodDB},
		{"postgresql scheme", "postgresql://gate@10.0.0.5:5432/gate", "postgresql://gate@10.0.0.5:5432/gate"},
		{"unix socket", "postgres:///gate?host=/run/postgresql", "postgres:///gate?host=/run/postgresql"},
		{"two hosts", "postgres://gate@db1:5432,db2:5432/gate?target_session_attrs=read-write", "postgres://gate@db1:5432,db2:5432/gate?target_session_attrs=read-write"},
		{"passfile", "postgres://gate@db/gate?passfile=/var/lib/gate/controller/pgpass", "postgres://gate@db/gate?passfile=/var/lib/gate/controller/pgpass"},
		{"IPv6 host", "postgres://gate@[2001:db8::5]:5432/gate", "postgres://gate@[2001:db8::5]:5432/gate"},
		{"password", "postgres://gate:" + pw + "@db/gate", "postgres://gate:xxxxx@db/gate"},
		{"password setting", "postgres://gate@db/gate?sslmode=require&password=" + pw + "&connect_timeout=5", "postgres://gate@db/gate?sslmode=require&password=xxxxx&connect_timeout=5"},
		{"sslpassword", "postgres://gate@db/gate?sslkey=/k&sslcert=/c&sslpassword=" + pw, "postgres://gate@db/gate?sslkey=/k&sslcert=/c&sslpassword=xxxxx"},
		{"passwords twice", "postgresql://gate:" + pw + "@db/gate?Password=" + pw, "postgresql://gate:xxxxx@db/gate?Password=xxxxx"},
		{"encoded password", "postgres://gate:" + pw + "%40%2F@db/gate", "postgres://gate:xxxxx@db/gate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, warns, err := Parse([]byte(doc(`"` + tc.db + `"`)))
			if err != nil {
				t.Fatal(err)
			}
			if len(warns) > 0 {
				t.Errorf("warnings: %v", warns)
			}
			if c.Controller == nil || c.Controller.DB != tc.db {
				t.Fatalf("controller %+v, want db %q", c.Controller, tc.db)
			}
			out := Format(c)
			again, _, err := Parse(out)
			if err != nil {
				t.Fatalf("Format's output does not parse: %v\n%s", err, out)
			}
			if again.Controller.DB != tc.want {
				t.Errorf("after Format: %q, want %q\n%s", again.Controller.DB, tc.want, out)
			}
			if r := c.Redacted().Controller.DB; r != tc.want {
				t.Errorf("Redacted: %q, want %q", r, tc.want)
			}
			if c.Controller.DB != tc.db {
				t.Error("Redacted changed the original")
			}
			if s := everything(c, warns, nil); strings.Contains(s, pw) {
				t.Errorf("password shown:\n%s", s)
			}
			if got, want := DBPassword(tc.db), tc.db != tc.want; got != want {
				t.Errorf("DBPassword = %v, want %v", got, want)
			}
		})
	}
}

func TestControllerDBErrors(t *testing.T) {
	v := "version: 1\n"
	for _, tc := range []struct{ name, doc, want string }{
		{"mysql", v + "controller: {listen: \":1\", db: \"mysql://gate:" + pw + "@db/gate\"}\n", "controller.db: a mysql:// URL: want postgres:// or postgresql://"},
		{"odd scheme", v + "controller: {listen: \":1\", db: \"gate:" + pw + "@x://db/gate\"}\n", "controller.db: want a postgres:// or postgresql:// URL (document, line 2)"},
		{"SQLite path", v + "controller: {listen: \":1\", db: /var/lib/gate/controller/controller.db}\n", "controller.db: not a postgres:// or postgresql:// URL; a controller here keeps SQLite on the state disk"},
		{"sqlite URL", v + "controller: {listen: \":1\", db: \"sqlite:///var/lib/gate/x.db\"}\n", "controller.db: a sqlite:// URL: want postgres://"},
		{"keyword/value", v + "controller: {listen: \":1\", db: \"host=db user=gate password=" + pw + "\"}\n", "controller.db: not a postgres:// or postgresql:// URL"},
		{"upper-case scheme", v + "controller: {listen: \":1\", db: \"POSTGRES://gate:" + pw + "@db/gate\"}\n", "controller.db: a POSTGRES:// URL: want postgres://"},
		{"unparsable port", v + "controller: {listen: \":1\", db: \"postgres://gate:" + pw + "@db:54x2/gate\"}\n", "controller.db: the URL does not parse (the URL is not shown"},
		{"bad escape", v + "controller: {listen: \":1\", db: \"postgres://gate:" + pw + "%zz@db/gate\"}\n", "controller.db: the URL does not parse"},
		{"ambiguous user part", v + "controller: {listen: \":1\", db: \"postgres://gate:" + pw + "@x@db/gate\"}\n", "controller.db: the user part is ambiguous"},
		{"at in the query", v + "controller: {listen: \":1\", db: \"postgres://db?password=" + pw + "@x\"}\n", "controller.db: the user part is ambiguous"},
		{"fragment", v + "controller: {listen: \":1\", db: \"postgres://gate:" + pw + "@db/gate#x\"}\n", "controller.db: a database URL has no #fragment"},
		{"query without =", v + "controller: {listen: \":1\", db: \"postgres://gate@db/gate?password" + pw + "\"}\n", "controller.db: the query is not KEY=VALUE settings"},
		{"query two =", v + "controller: {listen: \":1\", db: \"postgres://gate@db/gate?password=" + pw + "=\"}\n", "controller.db: the query is not KEY=VALUE settings"},
		{"query semicolon", v + "controller: {listen: \":1\", db: \"postgres://gate@db/gate?a=1;password=" + pw + "\"}\n", "controller.db: the query is not KEY=VALUE settings"},
		{"space", v + "controller: {listen: \":1\", db: \"postgres://gate:" + pw + " @db/gate\"}\n", "controller.db: a database URL is printable ASCII without spaces"},
		{"sslmode", v + "controller: {listen: \":1\", db: \"postgres://gate:" + pw + "@db/gate?sslmode=strict\"}\n", `controller.db: sslmode "strict": want one of disable, allow, prefer, require, verify-ca, verify-full`},
		{"relative passfile", v + "controller: {listen: \":1\", db: \"postgres://gate@db/gate?passfile=pgpass\"}\n", `controller.db: passfile "pgpass": want an absolute path`},
		{"relative sslrootcert", v + "controller: {listen: \":1\", db: \"postgres://gate@db/gate?sslrootcert=ca.pem\"}\n", `controller.db: sslrootcert "ca.pem": want an absolute path`},
		{"number", v + "controller: {listen: \":1\", db: 5432}\n", "controller.db: want a postgres:// URL, got a value that is not a string (quote it; not shown"},
		{"tagged", v + "controller: {listen: \":1\", db: !pg \"postgres://gate:" + pw + "@db/gate\"}\n", "controller.db: want a postgres:// URL, got a value that is not a string"},
		{"binary", v + "controller: {listen: \":1\", db: !!binary UzNjcjN0UHc=}\n", "controller.db: want a postgres:// URL, got a value that is not a string"},
		{"mapping", v + "controller: {listen: \":1\", db: {password: " + pw + "}}\n", "controller.db: want a postgres:// URL, got a mapping"},
		{"list", v + "controller: {listen: \":1\", db: [" + pw + "]}\n", "controller.db: want a postgres:// URL, got a list"},
		{"JSON number", `{"version": 1, "controller": {"listen": ":1", "db": 5}}`, "controller.db: want a postgres:// URL, got a value that is not a string"},
		{"too long", v + "controller: {listen: \":1\", db: \"postgres://gate:" + pw + "@db/gate?application_name=" + strings.Repeat("a", MaxDB) + "\"}\n", "bytes long; a database URL has at most 1024"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, warns, err := Parse([]byte(tc.doc))
			if err == nil {
				t.Fatalf("accepted: %+v", c.Controller)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\nwant %q", err, tc.want)
			}
			if s := everything(nil, warns, err); strings.Contains(s, pw) {
				t.Errorf("password shown: %s", s)
			}
			checkClean(t, tc.name, err, warns)
		})
	}
}

// TestRedactDB: a password is replaced wherever pgx would find one; what
// cannot be read apart is not shown at all.
func TestRedactDB(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{goodDB, goodDB},
		{"postgres://gate:" + pw + "@db/gate", "postgres://gate:xxxxx@db/gate"},
		{"postgres://gate:@db/gate", "postgres://gate:@db/gate"},
		{"postgres://:" + pw + "@db/gate", "postgres://:xxxxx@db/gate"},
		{"postgres://db/gate?password=" + pw + "&password=" + pw, "postgres://db/gate?password=xxxxx&password=xxxxx"},
		{"postgres://db/gate?pass%77ord=" + pw, "postgres://db/gate?pass%77ord=xxxxx"},
		{"postgres://db/gate?password=", "postgres://db/gate?password="},
		{"postgres://gate:" + pw + "@x@db/gate", "(not shown)"},
		{"postgres://gate:" + pw + "@db:x/gate", "(not shown)"},
		{"host=db password=" + pw, "(not shown)"},
		{"/var/lib/gate/controller.db", "(not shown)"},
		{"mysql://gate:" + pw + "@db/gate", "(not shown)"},
		{"postgres://gate:" + pw + "@db/gate\n", "(not shown)"},
		{"postgres://gate:" + pw + "\x1b[2J@db/gate", "(not shown)"},
	} {
		if got := RedactDB(tc.in); got != tc.want {
			t.Errorf("RedactDB(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestDBPasswordWarning: a password in a db URL from user-data is
// warned about, naming where it was written and what to do instead; the
// same URL from the node's own disks, or a URL without a password, is
// not.
func TestDBPasswordWarning(t *testing.T) {
	userData := func(db string) *Layer {
		t.Helper()
		l, _, err := ParseEmbedded(SourceUserData, "user-data (aws)", []byte("#cloud-config\ngate:\n  controller:\n    listen: \":8443\"\n    db: \""+db+"\"\n"), "gate")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	withPW := "postgres://gate:" + pw + "@db.internal/gate?sslmode=verify-full"
	e, err := Merge(userData(withPW))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Warnings) != 1 {
		t.Fatalf("warnings %v, want one", e.Warnings)
	}
	w := e.Warnings[0]
	if w.Path != "controller.db" || w.Origin != "user-data (aws)" || w.Line != 5 ||
		!strings.Contains(w.Message, "metadata service") || !strings.Contains(w.Message, "owns only its database") || !strings.Contains(w.Message, "passfile=") {
		t.Errorf("warning %+v", w)
	}
	if s := everything(e.Config, e.Warnings, nil); strings.Contains(s, pw) {
		t.Errorf("password shown:\n%s", s)
	}
	// In the query too.
	if e, err := Merge(userData("postgres://gate@db.internal/gate?password=" + pw)); err != nil || len(e.Warnings) != 1 {
		t.Errorf("password setting: %v, %v", e, err)
	}
	// A passfile instead: no warning.
	if e, err := Merge(userData("postgres://gate@db.internal/gate?passfile=/var/lib/gate/controller/pgpass")); err != nil || len(e.Warnings) != 0 {
		t.Errorf("passfile: warnings %v, %v", e.Warnings, err)
	}
	// The preseed, or the console: the node's own disks.
	for _, src := range []Source{SourcePreseed, SourceLocal} {
		l := NewLayer(src, "", &Config{Controller: &Controller{Listen: ":8443", DB: withPW}})
		if e, err := Merge(l); err != nil || len(e.Warnings) != 0 {
			t.Errorf("%v: warnings %v, %v", src, e.Warnings, err)
		}
	}
	// A higher layer that replaces user-data's controller takes its
	// warning away.
	local := NewLayer(SourceLocal, "", &Config{Controller: &Controller{Listen: ":8443"}})
	if e, err := Merge(userData(withPW), local); err != nil || len(e.Warnings) != 0 {
		t.Errorf("replaced: warnings %v, %v", e.Warnings, err)
	}
	// An invalid document: the warning comes with the errors, and still
	// no password.
	_, err = Merge(userData(withPW), NewLayer(SourceLocal, "", &Config{Hostname: "bad_name"}))
	var ee *Error
	if !errors.As(err, &ee) || len(ee.Warnings) != 1 {
		t.Errorf("invalid: %v", err)
	}
	if s := everything(nil, nil, err); strings.Contains(s, pw) {
		t.Errorf("password shown: %s", s)
	}
}

// FuzzDB: whatever the URL, CheckDB and RedactDB never panic nor quote a
// password; and where pgx, which the controller connects with, reads a
// password from a URL CheckDB accepts, DBPassword says there is one and
// RedactDB's URL gives pgx "xxxxx" in its place.
func FuzzDB(f *testing.F) {
	for _, s := range []string{
		goodDB,
		"postgres://gate:" + pw + "@db/gate",
		"postgresql://gate:" + pw + "@db1:5432,db2/gate?password=x&sslpassword=y",
		"postgres://gate:" + pw + "@x@db/gate",
		"postgres://db/gate?password=" + pw + "@x",
		"postgres://gate:p%40ss@[::1]:5432/gate?sslmode=disable",
		"postgres://gate:a?b@db/gate",
		"postgres://gate:12?x@db/gate",
		"postgres:///gate?host=/run/postgresql&password=" + pw,
		"host=db password=" + pw,
		"postgres://gate:" + pw + "@db/gate\n",
	} {
		f.Add(s)
	}
	f.Setenv("PGPASSFILE", "/nonexistent")
	f.Setenv("PGPASSWORD", "")
	f.Setenv("PGSERVICEFILE", "/nonexistent")
	f.Fuzz(func(t *testing.T, s string) {
		err := CheckDB(s)
		red := RedactDB(s)
		if err != nil {
			if !PrintableASCII(err.Error()) {
				t.Fatalf("error not printable: %q", err)
			}
		}
		if err != nil || strings.Contains(s, "service") || strings.Contains(s, "passfile") || strings.Contains(s, "ssl") {
			return // pgx would read files
		}
		cfg, perr := pgconn.ParseConfig(s)
		if perr != nil || cfg.Password == "" {
			return
		}
		if !DBPassword(s) {
			t.Fatalf("pgx reads password %q from %q; DBPassword says none", cfg.Password, s)
		}
		rcfg, rerr := pgconn.ParseConfig(red)
		if rerr != nil {
			t.Fatalf("pgx reads %q but not its redaction %q: %v", s, red, rerr)
		}
		if rcfg.Password != redactedPassword {
			t.Fatalf("redaction %q of %q: pgx reads password %q", red, s, rcfg.Password)
		}
		if rcfg.Host != cfg.Host || rcfg.User != cfg.User || rcfg.Database != cfg.Database {
			t.Fatalf("redaction %q of %q names another database", red, s)
		}
	})
}
