package nodeconfig

import (
	"errors"
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
	f.Add([]byte("version: 1\ncontroller: {listen: \":8443\"}\nnetworks: [{join: " + netID + ", gateway: {serve: [10.0.0.0/8, 192.168.0.0/16], lan: eth1}}]\n"))
	f.Add([]byte("version: 1\nhostname: null\ninterfaces: {a: ~}\n<<: {x: 1}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, _, err := Parse(data)
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
		out := Format(cfg)
		again, _, err := Parse(out)
		if err != nil {
			t.Fatalf("Format output does not parse: %v\n%s", err, out)
		}
		if diff := cmp.Diff(cfg, again, cmpAddrs...); diff != "" {
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
	f.Fuzz(func(t *testing.T, cmdline string) {
		l, err := ParseCmdline(cmdline)
		if err != nil {
			return
		}
		if _, err := Merge(l); err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("merge error is not an *Error: %v", err)
			}
		}
	})
}
