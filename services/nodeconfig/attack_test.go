package nodeconfig

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// checkClean fails t unless every issue of err (and err's text) is
// printable ASCII, fields and rendering both.
func checkClean(t *testing.T, what string, err error, warns []Issue) {
	t.Helper()
	var all []Issue
	all = append(all, warns...)
	if err != nil {
		if !PrintableASCII(err.Error()) {
			t.Errorf("%s: error text carries control or non-ASCII bytes: %q", what, err.Error())
		}
		var e *Error
		if errors.As(err, &e) {
			all = append(all, e.Errors...)
			all = append(all, e.Warnings...)
		}
	}
	for _, is := range all {
		for _, s := range []string{is.Path, is.Message, is.String()} {
			if !PrintableASCII(s) {
				t.Errorf("%s: issue carries control or non-ASCII bytes: %q", what, s)
			}
		}
	}
}

func TestAttackInterfaceNameControlCharacters(t *testing.T) {
	for _, name := range []string{"\x1b[31m", "eth\x00", "eth0\x7f", "eth\u00e9", "a\u009bb", "\x9b", "e\tth", "eth0\n"} {
		if err := CheckInterfaceName(name); err == nil {
			t.Errorf("CheckInterfaceName(%q) = nil", name)
		} else if !PrintableASCII(err.Error()) {
			t.Errorf("CheckInterfaceName(%q): message not clean: %q", name, err)
		}
	}
	// In a document: as a NIC key, as wan, as a gateway's lan.
	for _, doc := range []string{
		"version: 1\ninterfaces:\n  \"\\e[2J\": {dhcp: true}\n",
		"version: 1\nwan: \"\\e]0;owned\\a\"\n",
		"version: 1\nnetworks: [{join: \"" + joinStr + "\", gateway: {serve: [10.0.0.0/8], lan: \"\\x9b31m\"}}]\n",
	} {
		_, warns, err := Parse([]byte(doc))
		if err == nil {
			t.Errorf("accepted %q", doc)
		}
		checkClean(t, doc, err, warns)
	}
}

func TestAttackIssuePathQuotesKeys(t *testing.T) {
	doc := "version: 1\n\"\\e]0;x\\a\": 1\ninterfaces:\n  eth0: {dhcp: true, \"mtu\\e[31m\": 1}\n"
	_, warns, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	checkClean(t, "warnings", nil, warns)
	var paths []string
	for _, w := range warns {
		paths = append(paths, w.Path)
	}
	want := []string{`"\x1b]0;x\a"`, `interfaces.eth0."mtu\x1b[31m"`}
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Errorf("paths %q, want %q", paths, want)
	}
	// A key that is not a plain identifier is quoted even when printable:
	// a dot or a bracket in it would make the path ambiguous.
	_, warns, _ = Parse([]byte("version: 1\n\"a.b[0]\": 1\n"))
	if len(warns) != 1 || warns[0].Path != `"a.b[0]"` {
		t.Errorf("warnings %v", warns)
	}
	// A huge key is cut in the message, not repeated whole.
	_, warns, _ = Parse([]byte(`{"version": 1, "` + strings.Repeat("k", 5000) + `": 1}`))
	if len(warns) != 1 || len(warns[0].String()) > 200 {
		t.Errorf("warnings for a 5000-byte key: %.300v", warns)
	}
}

func TestAttackYAMLTagInMessage(t *testing.T) {
	_, warns, err := Parse([]byte("version: 1\nhostname: !%1B[2J x\n"))
	if err == nil {
		t.Fatal("accepted")
	}
	checkClean(t, "tag", err, warns)
}

func TestAttackZonedAddresses(t *testing.T) {
	for _, tc := range []struct{ doc, path string }{
		{"version: 1\ninterfaces:\n  eth0: {dhcp: true, dns: [\"fe80::1%eth0\"]}\n", "interfaces.eth0.dns[0]"},
		{"version: 1\ninterfaces:\n  eth0: {dhcp: true, dns: [\"fe80::1%\\e[31m\"]}\n", "interfaces.eth0.dns[0]"},
		{"version: 1\ninterfaces:\n  eth0: {address: 10.0.0.5/24, gateway: \"fe80::1%\\e[2J\"}\n", "interfaces.eth0.gateway"},
		{"version: 1\nnetworks: [{join: \"" + joinStr + "\", address: \"fe80::1%\\e[2J\"}]\n", "networks[0].address"},
		{"version: 1\ncontroller: {listen: \"[fe80::1%\\e[2J]:8443\"}\n", "controller.listen"},
		{"version: 1\ncontroller: {listen: \":8443\", advertise: \"[fe80::1%eth0]:8443\"}\n", "controller.advertise"},
	} {
		_, warns, err := Parse([]byte(tc.doc))
		if err == nil {
			t.Errorf("accepted %q", tc.doc)
			continue
		}
		checkClean(t, tc.doc, err, warns)
		if !strings.Contains(err.Error(), tc.path+": ") {
			t.Errorf("%q: error does not name %s: %v", tc.doc, tc.path, err)
		}
	}
	// The console and the CLI write a layer in code: the same rule.
	l := NewLayer(SourceLocal, "interfaces.json", &Config{Interfaces: map[string]Interface{
		"eth0": {Address: netip.MustParsePrefix("10.0.0.5/24"), DNS: []netip.Addr{netip.MustParseAddr("fe80::53%eth0")}},
	}})
	if _, err := Merge(l); err == nil || !strings.Contains(err.Error(), "interfaces.eth0.dns[0]") {
		t.Errorf("a zoned DNS server from the console: %v", err)
	}
	// The kernel command line.
	for _, cl := range []string{"gate.iface.eth0=10.0.0.5/24,10.0.0.1,fe80::1%eth0", "gate.iface.eth0=10.0.0.5/24,fe80::1%\x1b[2J"} {
		l, err := ParseCmdline(cl)
		if err == nil {
			_, err = Merge(l)
		}
		if err == nil {
			t.Errorf("accepted %q", cl)
		}
		checkClean(t, cl, err, nil)
	}
}

func TestAttackHostname(t *testing.T) {
	for _, h := range []string{strings.Repeat("a", 65), strings.Repeat("a.", 200) + "a", strings.Repeat("x", 1<<16), "a\x1b[2J", "gate\u00e9", "-a", "a-", "a..b", "a.", "a_b", ""} {
		err := CheckHostname(h)
		if err == nil {
			t.Errorf("CheckHostname(%.40q) = nil", h)
			continue
		}
		if !PrintableASCII(err.Error()) || len(err.Error()) > 200 {
			t.Errorf("CheckHostname(%.40q): message %d bytes: %.100q", h, len(err.Error()), err)
		}
		l, err := ParseCmdline("gate.hostname=" + h)
		if err == nil {
			t.Errorf("kernel command line: accepted %.40q: %+v", h, l.Config)
		}
		checkClean(t, "cmdline", err, nil)
	}
}

func TestAttackCmdlineKeys(t *testing.T) {
	for _, cl := range []string{"gate.\x1b]0;owned\x07=1", "gate.iface.\x1b[2J=dhcp", "gate.iface.eth0=\x1b[2J", "gate.join=\x1b[2J", "gate.wan=\x9b"} {
		l, err := ParseCmdline(cl)
		var warns []Issue
		if l != nil {
			warns = l.Warnings
			if _, merr := Merge(l); merr != nil {
				err = merr
			}
		}
		checkClean(t, cl, err, warns)
	}
}

func TestAttackJoinControllerHost(t *testing.T) {
	for _, doc := range []string{
		"version: 1\nnetworks: [{join: \"gate://a%C2%9Bb:8443/" + netID + "?pin=" + pin + "\"}]\n",
		"version: 1\nnetworks: [{join: \"gate://a%FF:8443/" + netID + "?pin=" + pin + "\"}]\n",
		"version: 1\nnetworks: [{join: " + netID + ", controller: \"gate://x%C2%9B:8443?pin=" + pin + "\"}]\n",
		"version: 1\nnetworks: [{join: \"gate://[fe80::1%25eth%20x]:8443/" + netID + "?pin=" + pin + "\"}]\n",
	} {
		_, warns, err := Parse([]byte(doc))
		if err == nil {
			t.Errorf("accepted %q", doc)
		}
		checkClean(t, doc, err, warns)
	}
}

// TestAttackControllerDB: controller.db holds a credential and comes from
// user-data: control characters, a newline, a huge value or a value of
// the wrong kind are refused with a message that is printable, short and
// free of the password; the value itself is never quoted.
func TestAttackControllerDB(t *testing.T) {
	const secret = "Hunter2Secret"
	for _, db := range []string{
		`"postgres://gate:` + secret + `@db/gate\e[2J"`,
		`"postgres://gate:` + secret + `\e]0;owned\a@db/gate"`,
		`"postgres://gate:` + secret + `@db/gate\nsslmode=disable"`,
		`"postgres://gate:` + secret + `@db/gate\r\n"`,
		`"postgres://gate:` + secret + `@db/gate\x00"`,
		`"postgres://gate:` + secret + `\u009b@db/gate"`,
		`"postgres://gate:` + secret + `@db\u00e9/gate"`,
		`"postgres://gate:` + secret + `@db/gate?application_name=` + strings.Repeat("a", 1<<16) + `"`,
		`"postgres://gate:` + secret + `@` + strings.Repeat("d", 1<<19) + `/gate"`,
		`"\e[2J` + secret + `"`,
		`"` + secret + `\npostgres://x"`,
		`!!binary ` + "SHVudGVyMlNlY3JldA==",
		`{password: "` + secret + `\e[2J"}`,
		`|` + "\n    postgres://gate:" + secret + "@db/gate\n    password=" + secret + "\n",
	} {
		what, warns, err := refusedClean(t, "version: 1\ncontroller:\n  listen: \":8443\"\n  db: "+db+"\n", "controller.db", 400)
		if err == nil {
			continue
		}
		if s := everything(nil, warns, err); strings.Contains(s, secret) || strings.Contains(s, "SHVudGVy") {
			t.Errorf("%q: password shown: %.300s", what, s)
		}
		// In user-data, as a cloud hands it over.
		l, _, err := ParseEmbedded(SourceUserData, "user-data (aws)", []byte("#cloud-config\ngate:\n  controller:\n    listen: \":8443\"\n    db: "+db+"\n"), "gate")
		if err == nil {
			_, err = Merge(l)
		}
		if err == nil {
			t.Errorf("user-data: accepted %q", what)
			continue
		}
		checkClean(t, what, err, nil)
		if s := everything(nil, nil, err); strings.Contains(s, secret) {
			t.Errorf("user-data %q: password shown: %.300s", what, s)
		}
	}
	// Built in code (the console's layer): the same rules.
	l := NewLayer(SourceLocal, "console", &Config{Controller: &Controller{Listen: ":8443", DB: "postgres://gate:" + secret + "@db/gate\n"}})
	_, err := Merge(l)
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("a newline from the console: %v", err)
	}
	checkClean(t, "console", err, nil)
}

// The web console's address and certificate paths come from user-data
// too: hostile text is refused, named, and never echoed raw.
func TestAttackControllerWeb(t *testing.T) {
	for _, web := range []string{
		`{listen: "127.0.0.1:8444\e[2J"}`,
		`{listen: "127.0.0.1:8444\n"}`,
		`{listen: "` + strings.Repeat("1", 1<<16) + `:1"}`,
		`{listen: ":443", cert: "/etc/x\e]0;owned\a", key: /k}`,
		`{listen: ":443", cert: "/etc/x\nrm -rf /", key: /k}`,
		`{listen: ":443", cert: "/` + strings.Repeat("a", 1<<16) + `", key: /k}`,
		`{listen: ":443", cert: "/a\u009b", key: /k}`,
		`{listen: ":443", cert: "../../etc/shadow", key: /k}`,
		`{listen: "0.0.0.0:8444"}`,
		`{listen: "[::]:8444"}`,
	} {
		refusedClean(t, "version: 1\ncontroller:\n  listen: \":8443\"\n  web: "+web+"\n", "controller.web", 600)
	}
}

// refusedClean parses a hostile document, which must be refused with an
// error naming key, at most maxLen bytes long and clean (checkClean); it
// returns the document's head (for messages), the warnings and the error.
func refusedClean(t *testing.T, doc, key string, maxLen int) (what string, warns []Issue, err error) {
	t.Helper()
	_, warns, err = Parse([]byte(doc))
	what = doc
	if len(what) > 80 {
		what = what[:80]
	}
	if err == nil {
		t.Errorf("accepted %q", what)
		return what, warns, nil
	}
	checkClean(t, what, err, warns)
	if len(err.Error()) > maxLen {
		t.Errorf("%q: error %d bytes long: %.200s", what, len(err.Error()), err)
	}
	if !strings.Contains(err.Error(), key) {
		t.Errorf("%q: error does not name %s: %v", what, key, err)
	}
	return what, warns, err
}
