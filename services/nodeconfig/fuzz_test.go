package nodeconfig

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParse: Parse never panics; what it accepts is valid, and Format
// writes it back as a document that parses to the same Config.
func FuzzParse(f *testing.F) {
	f.Add([]byte(seedDoc))
	f.Add([]byte("version: 1\n"))
	f.Add([]byte(`{"version": 1, "interfaces": {"eth0": {"address": "10.0.0.5/24", "gateway": "10.0.0.1"}}}`))
	f.Add([]byte("version: 1\ninterfaces:\n  eth0: {mac: \"02:00:00:00:00:01\", dhcp: true}\nx: &a [1]\ny: *a\n"))
	f.Add([]byte("version: 1\nnetworks: [{join: " + netID + ", controller: \"gate://h:1?pin=" + pin + "\", token: " + token + "}]\n"))
	f.Add([]byte("version: 1\ncontroller: {listen: \":8443\", web: {listen: \":8444\", cert: /a/web.crt, key: /a/web.key}}\n"))
	f.Add([]byte("version: 1\ncontroller: {listen: \":8443\"}\nnetworks: [{join: " + netID + ", gateway: {serve: [10.0.0.0/8, 192.168.0.0/16], lan: eth1}}]\n"))
	f.Add([]byte("version: 1\nhostname: null\ninterfaces: {a: ~}\n<<: {x: 1}\n"))
	f.Add([]byte("version: 1\n\"\\e]0;x\\a\": 1\ninterfaces: {\"eth0.1\": {dhcp: true, dns: [\"fe80::1%eth0\"]}}\nhostname: !%1B[2J x\n"))
	f.Add([]byte("version: 1\nnetworks: [{join: \"gate://203.0.113.5:8443,[2001:db8::5]:8443/" + netID + "?pin=" + pin + "\"}, {join: " + netID + ", controller: \"gate://a:1,,b:2?pin=" + pin + "\"}]\n"))
	f.Add([]byte("version: 1\ncontroller: {listen: \":8443\", db: \"postgres://gate:pw@db.internal/gate?sslmode=verify-full&password=x\"}\n"))
	f.Add([]byte("version: 1\ncontroller: {listen: \":8443\", db: \"postgres://gate:p@x@db/gate?passfile=pgpass\\n\"}\n"))
	f.Add([]byte(`{"version": 1, "wan": "\u001b[2J", "interfaces": {"\u009b": {"dhcp": true}}, "networks": [{"join": "gate://a%C2%9B:1/` + netID + `?pin=` + pin + `"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, warns, err := Parse(data)
		checkRendered(t, err, warns)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || len(e.Errors) == 0 {
				t.Fatalf("error is not an *Error with issues: %v", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted an invalid config: %v", err)
		}
		checkAccepted(t, cfg)
		out := Format(cfg)
		again, _, err := Parse(out)
		if err != nil {
			t.Fatalf("Format output does not parse: %v\n%s", err, out)
		}
		want := cfg.Clone() // with the database password Format never writes
		if want.Controller != nil && want.Controller.DB != "" {
			want.Controller.DB = RedactDB(want.Controller.DB)
		}
		if diff := cmp.Diff(want, again, cmpAddrs...); diff != "" {
			t.Fatalf("round trip (-first +second)\n%s\n%s", diff, out)
		}
	})
}

// FuzzCmdline: ParseCmdline never panics, and what it accepts merges or is
// refused with an *Error.
func FuzzCmdline(f *testing.F) {
	f.Add("gate.hostname=x gate.iface.eth0=dhcp")
	f.Add(`ro quiet "gate.iface.eth1=10.0.0.5/24,10.0.0.1,1.1.1.1" gate.join=` + joinStr)
	f.Add("gate.controller=off gate.join=none gate.iface.eth0=default gate.wan=eth0")
	f.Add("gate.join=gate://203.0.113.5:8443,[::1]:1,h.example:2/" + netID + "?pin=" + pin)
	f.Add("gate.\x1b]0;x\x07=1 gate.iface.\x9b=dhcp gate.hostname=" + strings.Repeat("a", 70))
	f.Add("gate.iface.eth0=10.0.0.5/24,fe80::1%\x1b[2J,fe80::2%eth0 gate.join=gate://a%C2%9B:1/" + netID + "?pin=" + pin)
	f.Fuzz(func(t *testing.T, cmdline string) {
		l, err := ParseCmdline(cmdline)
		if err != nil {
			checkRendered(t, err, nil)
			return
		}
		checkRendered(t, nil, l.Warnings)
		e, err := Merge(l)
		if err != nil {
			checkRendered(t, err, nil)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("merge error is not an *Error: %v", err)
			}
			return
		}
		checkRendered(t, nil, e.Warnings)
		checkAccepted(t, e.Config)
	})
}

// checkRendered: whatever the input, no issue carries a byte outside
// printable ASCII, in its fields or rendered.
func checkRendered(t *testing.T, err error, warns []Issue) {
	t.Helper()
	all := slices.Clone(warns)
	if err != nil {
		if !PrintableASCII(err.Error()) {
			t.Fatalf("error text not printable ASCII: %q", err.Error())
		}
		var e *Error
		if errors.As(err, &e) {
			all = append(append(all, e.Errors...), e.Warnings...)
		}
	}
	for _, is := range all {
		for _, s := range []string{is.Path, is.Message, is.String()} {
			if !PrintableASCII(s) {
				t.Fatalf("issue not printable ASCII: %q", s)
			}
		}
	}
}

// checkAccepted: every name in an accepted configuration passes the one
// validator of its kind.
func checkAccepted(t *testing.T, c *Config) {
	t.Helper()
	if c.Hostname != "" {
		if err := CheckHostname(c.Hostname); err != nil {
			t.Fatalf("accepted hostname: %v", err)
		}
	}
	names := c.InterfaceNames()
	if c.WAN != "" {
		names = append(names, c.WAN)
	}
	for _, n := range c.Networks {
		if n.Gateway != nil && n.Gateway.LAN != "" {
			names = append(names, n.Gateway.LAN)
		}
		for _, s := range []string{n.Join, n.Controller, n.Token} {
			if !PrintableASCII(s) {
				t.Fatalf("accepted network string %q", s)
			}
		}
	}
	for _, n := range names {
		if err := CheckInterfaceName(n); err != nil {
			t.Fatalf("accepted interface name: %v", err)
		}
	}
	for name, nic := range c.Interfaces {
		for _, a := range nic.DNS {
			if err := CheckNameserver(a); err != nil {
				t.Fatalf("accepted DNS server of %q: %v", name, err)
			}
		}
		if nic.Gateway.Zone() != "" {
			t.Fatalf("accepted zoned gateway %q", nic.Gateway)
		}
	}
	if ctl := c.Controller; ctl != nil && (!PrintableASCII(ctl.Listen) || !PrintableASCII(ctl.Advertise)) {
		t.Fatalf("accepted controller %+v", ctl)
	}
	if ctl := c.Controller; ctl != nil && ctl.DB != "" {
		if err := CheckDB(ctl.DB); err != nil {
			t.Fatalf("accepted database URL: %v", err)
		}
		if r := RedactDB(ctl.DB); DBPassword(r) != DBPassword(ctl.DB) || RedactDB(r) != r {
			t.Fatalf("redaction %q of an accepted URL", r)
		}
	}
}
