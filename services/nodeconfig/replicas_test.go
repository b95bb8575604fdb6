package nodeconfig

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// A controller run as replicas is named by all its addresses, one pin:
// the document, the CLI's join and the kernel command line read them
// through the one parser (control.ParseJoinString, ParseControllerAddress)
// and refuse a bad list naming the address that is wrong.

const (
	twoCtl  = "203.0.113.5:8443,[2001:db8::5]:8443"
	twoJoin = "gate://" + twoCtl + "/" + netID + "?pin=" + pin
	twoAddr = "gate://" + twoCtl + "?pin=" + pin
)

var twoList = []string{"203.0.113.5:8443", "[2001:db8::5]:8443"}

func TestParseJoinReplicas(t *testing.T) {
	for _, tc := range []struct{ name, join, controller string }{
		{"join string", twoJoin, ""},
		{"bare ID and controller", netID, twoAddr},
	} {
		j, err := ParseJoin(tc.join, tc.controller, "")
		if err != nil || j.NetworkID != netID || j.Pin != pin || !slices.Equal(j.Controllers(), twoList) {
			t.Errorf("%s: ParseJoin = %+v, %v", tc.name, j, err)
		}
	}
	for _, tc := range []struct {
		name, join, controller string
		field, want            string
	}{
		{"empty element", "gate://a.example:1,,b.example:2/" + netID + "?pin=" + pin, "", "join", "join string: controller address 2 of 3 is empty"},
		{"duplicate", "gate://a.example:1,A.example:1/" + netID + "?pin=" + pin, "", "join", `join string: controller "A.example:1" is listed twice (addresses 1 and 2)`},
		{"nine", "gate://" + strings.Repeat("a.example:1,", 8) + "b.example:1/" + netID + "?pin=" + pin, "", "join", "join string: more than 8 controller addresses"},
		{"space", "gate://a.example:1, b.example:2/" + netID + "?pin=" + pin, "", "join", `controller " b.example:2" (address 2 of 2)`},
		{"control character", "gate://a.example:1,b\x1b[2J:2/" + netID + "?pin=" + pin, "", "join", `controller "b\x1b[2J:2" (address 2 of 2)`},
		{"bad controller list", netID, "gate://a.example:1,b.example:0?pin=" + pin, "controller", `controller address: controller "b.example:0" (address 2 of 2): port "0" must be 1-65535`},
		{"controller list without pin", netID, "gate://a.example:1,b.example:2", "controller", "controller address: missing pin"},
	} {
		_, err := ParseJoin(tc.join, tc.controller, "")
		var p *Problem
		if !errors.As(err, &p) || p.Field != tc.field || !strings.Contains(p.Msg, tc.want) {
			t.Errorf("%s: ParseJoin = %#v, want %s: %q", tc.name, err, tc.field, tc.want)
			continue
		}
		if strings.ContainsAny(p.Msg, "\x1b\r\n") {
			t.Errorf("%s: message not printable: %q", tc.name, p.Msg)
		}
	}
}

// TestDocumentReplicas: the configuration document takes a list in join
// and in controller, and hands the daemon every address.
func TestDocumentReplicas(t *testing.T) {
	v := "version: 1\n"
	for _, tc := range []struct{ name, doc, join, ctl string }{
		{"join string", v + "networks: [{join: \"" + twoJoin + "\"}]\n", twoJoin, ""},
		{"bare ID and controller", v + "networks: [{join: " + netID + ", controller: \"" + twoAddr + "\"}]\n", netID, "gate://" + twoCtl + "/?pin=sha256%3A" + strings.TrimPrefix(pin, "sha256:")},
	} {
		cfg, _, err := Parse([]byte(tc.doc))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		r, err := cfg.Networks[0].JoinRequest()
		if err != nil || r.Join != tc.join || r.Controller != tc.ctl {
			t.Errorf("%s: JoinRequest = %+v, %v; want join %q controller %q", tc.name, r, err, tc.join, tc.ctl)
		}
		j, err := ParseJoin(r.Join, r.Controller, "")
		if err != nil || !slices.Equal(j.Controllers(), twoList) {
			t.Errorf("%s: the request reads back as %+v, %v", tc.name, j, err)
		}
	}
	for _, tc := range []struct{ name, doc, want string }{
		{"bad second address", v + "networks: [{join: \"gate://h:1,h2/" + netID + "?pin=" + pin + "\"}]\n",
			`networks[0].join: join string: controller "h2" (address 2 of 2): "h2" must be HOST:PORT`},
		{"duplicate in controller", v + "networks: [{join: " + netID + ", controller: \"gate://h:1,h:1?pin=" + pin + "\"}]\n",
			`networks[0].controller: controller address: controller "h:1" is listed twice`},
	} {
		_, _, err := Parse([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Parse = %v, want %q", tc.name, err, tc.want)
		}
	}
	// A token in a list's join string is redacted, the list kept.
	c := &Config{Networks: []Network{{Join: "gate://" + twoCtl + "/" + netID + "?pin=" + pin + "&token=" + token}}}
	red := c.Redacted().Networks[0].Join
	if strings.Contains(red, token) || !strings.Contains(red, twoCtl) {
		t.Errorf("Redacted join %q", red)
	}
}

// TestCmdlineReplicas: gate.join takes a list of addresses (commas are
// not the kernel's separator), checked when the layers merge.
func TestCmdlineReplicas(t *testing.T) {
	l, err := ParseCmdline("ro gate.join=" + twoJoin)
	if err != nil {
		t.Fatal(err)
	}
	e, err := Merge(l)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Config.Networks) != 1 || e.Config.Networks[0].Join != twoJoin {
		t.Fatalf("networks %+v", e.Config.Networks)
	}
	bad, err := ParseCmdline("gate.join=gate://a.example:1,,b.example:2/" + netID + "?pin=" + pin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Merge(bad); err == nil || !strings.Contains(err.Error(), "networks[0].join: join string: controller address 2 of 3 is empty (separate addresses with one comma, no spaces) (kernel command line)") {
		t.Errorf("got %v", err)
	}
}
