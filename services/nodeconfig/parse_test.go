package nodeconfig

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/gatenet/gate/services/control"
	"github.com/google/go-cmp/cmp"
)

const (
	pin     = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	netID   = "d363b4e9bd3d6aa8"
	token   = "tok_0123456789abcdef"
	joinStr = "gate://203.0.113.5:8443/" + netID + "?pin=" + pin + "&token=" + token
)

// seedDoc is the document of DESIGN.md's seed scenario: the AWS gate.
const seedDoc = `version: 1
hostname: aws-gate-1
interfaces:
  eth0: {dhcp: true}
networks:
  - join: "` + joinStr + `"
    address: 192.168.254.11
    gateway:
      serve: [172.16.0.0/16]
      lan: eth0
      masquerade: {to_lan: false, to_internet: true}
      aws_route_tables: [rtb-0123456789abcdef0]
controller: {listen: ":8443"}
`

func seedConfig() *Config {
	return &Config{
		Version:    1,
		Hostname:   "aws-gate-1",
		Interfaces: map[string]Interface{"eth0": {DHCP: true}},
		Networks: []Network{{
			Join:    joinStr,
			Address: netip.MustParseAddr("192.168.254.11"),
			Gateway: &Gateway{
				Serve:              []netip.Prefix{netip.MustParsePrefix("172.16.0.0/16")},
				LAN:                "eth0",
				MasqueradeInternet: true,
				AWSRouteTables:     []string{"rtb-0123456789abcdef0"},
			},
		}},
		Controller: &Controller{Listen: ":8443"},
	}
}

func TestParseGood(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want *Config
	}{
		{"seed YAML", seedDoc, seedConfig()},
		{"seed JSON", `{
	"version": 1, "hostname": "aws-gate-1",
	"interfaces": {"eth0": {"dhcp": true}},
	"networks": [{"join": "` + strings.ReplaceAll(joinStr, "/", `\/`) + `", "address": "192.168.254.11",
		"gateway": {"serve": ["172.16.0.0/16"], "lan": "eth0", "masquerade": {"to_lan": false, "to_internet": true}, "aws_route_tables": ["rtb-0123456789abcdef0"]}}],
	"controller": {"listen": ":8443"}
}`, seedConfig()},
		{"static NIC and bare network ID", `
version: 1
wan: eth0
interfaces:
  eth0: {address: 172.16.1.10/24, gateway: 172.16.1.1, dns: [172.16.0.2, "2001:db8::53"]}
  eth1: {mac: "02:00:00:AA:BB:CC", dhcp: true}
networks:
  - join: D363B4E9BD3D6AA8
    controller: "gate://203.0.113.5:8443?pin=` + pin + `"
    token: ` + token + `
`, &Config{
			Version: 1,
			WAN:     "eth0",
			Interfaces: map[string]Interface{
				"eth0": {
					Address: netip.MustParsePrefix("172.16.1.10/24"),
					Gateway: netip.MustParseAddr("172.16.1.1"),
					DNS:     []netip.Addr{netip.MustParseAddr("172.16.0.2"), netip.MustParseAddr("2001:db8::53")},
				},
				"eth1": {MAC: "02:00:00:aa:bb:cc", DHCP: true},
			},
			Networks: []Network{{Join: "D363B4E9BD3D6AA8", Controller: "gate://203.0.113.5:8443?pin=" + pin, Token: token}},
		}},
		{"bare ID with the controller here", "version: 1\nnetworks: [{join: " + netID + "}]\ncontroller: {listen: \"10.0.0.1:8443\", advertise: \"gate.example.com:8443\"}\n",
			&Config{Version: 1, Networks: []Network{{Join: netID}}, Controller: &Controller{Listen: "10.0.0.1:8443", Advertise: "gate.example.com:8443"}}},
		{"web console on loopback", "version: 1\ncontroller: {listen: \":8443\", web: {listen: \"127.0.0.1:8444\"}}\n",
			&Config{Version: 1, Controller: &Controller{Listen: ":8443", Web: &ControllerWeb{Listen: "127.0.0.1:8444"}}}},
		{"web console with a certificate", "version: 1\ncontroller:\n  listen: \":8443\"\n  web: {listen: \":443\", cert: /var/lib/gate/web.crt, key: /var/lib/gate/web.key}\n",
			&Config{Version: 1, Controller: &Controller{Listen: ":8443", Web: &ControllerWeb{Listen: ":443", Cert: "/var/lib/gate/web.crt", Key: "/var/lib/gate/web.key"}}}},
		{"version only", "version: 1\n", &Config{Version: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, warns, err := Parse([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if len(warns) > 0 {
				t.Errorf("warnings: %v", warns)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
			// Format reads back to the same config.
			again, _, err := Parse(Format(got))
			if err != nil {
				t.Fatalf("re-parsing Format's output: %v\n%s", err, Format(got))
			}
			if diff := cmp.Diff(got, again, cmpAddrs...); diff != "" {
				t.Errorf("Format round trip (-want +got)\n%s\n%s", diff, Format(got))
			}
		})
	}
}

var cmpAddrs = []cmp.Option{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
}

// TestParseErrors: each kind of error names its key path and why.
func TestParseErrors(t *testing.T) {
	v := "version: 1\n"
	for _, tc := range []struct {
		name, doc string
		want      []string // each must appear in one error line
	}{
		{"empty", "", []string{"version: missing"}},
		{"no version", "hostname: a\n", []string{"version: missing"}},
		{"version 2", "version: 2\n", []string{"version: 2 is not supported"}},
		{"version string", `version: "1"`, []string{`version: want a whole number, got "1"`}},
		{"not a mapping", "- a\n- b\n", []string{"want a mapping of keys at the top, got a list"}},
		{"bad YAML", "version: 1\n  x: [\n", []string{"not valid YAML"}},
		{"bad JSON", `{"version": 1,}`, []string{"not valid JSON"}},
		{"two documents", "version: 1\n---\nversion: 1\n", []string{"more than one YAML document"}},
		{"duplicate key", "version: 1\nhostname: a\nhostname: b\n", []string{"hostname: given twice (line 3)"}},
		{"merge key", "version: 1\nx: &x {dhcp: true}\ninterfaces:\n  eth0:\n    <<: *x\n", []string{"interfaces.eth0.<<: YAML merge keys"}},
		{"bad CIDR", v + "interfaces:\n  eth0: {address: 10.0.0.300/24}\n", []string{`interfaces.eth0.address: "10.0.0.300/24" is not a CIDR (line 3)`}},
		{"no prefix length", v + "interfaces:\n  eth0: {address: 10.0.0.3}\n", []string{`interfaces.eth0.address: "10.0.0.3" has no prefix length`}},
		{"network address", v + "interfaces:\n  eth0: {address: 10.0.0.0/24}\n", []string{"interfaces.eth0.address: 10.0.0.0/24 is the subnet's network address"}},
		{"broadcast address", v + "interfaces:\n  eth0: {address: 10.0.0.255/24}\n", []string{"interfaces.eth0.address: 10.0.0.255/24 is the subnet's broadcast address"}},
		{"gateway outside", v + "interfaces:\n  eth0: {address: 10.0.0.5/24, gateway: 10.0.1.1}\n", []string{"interfaces.eth0.gateway: 10.0.1.1 is outside the NIC's subnet 10.0.0.0/24 (document, line 3)"}},
		{"gateway is self", v + "interfaces:\n  eth0: {address: 10.0.0.5/24, gateway: 10.0.0.5}\n", []string{"interfaces.eth0.gateway: 10.0.0.5 is the NIC's own address"}},
		{"gateway with dhcp", v + "interfaces:\n  eth0: {dhcp: true, gateway: 10.0.0.1}\n", []string{"interfaces.eth0.gateway: a gateway needs a static address"}},
		{"dhcp and static", v + "interfaces:\n  eth0: {dhcp: true, address: 10.0.0.5/24}\n", []string{"interfaces.eth0: dhcp: true and a static address exclude each other"}},
		{"neither", v + "interfaces:\n  eth0: {dns: [1.1.1.1]}\n", []string{"interfaces.eth0: set dhcp: true or a static address"}},
		{"dhcp yes", v + "interfaces:\n  eth0: {dhcp: yes}\n", []string{`interfaces.eth0.dhcp: want true or false, got "yes"`}},
		{"dns not a list", v + "interfaces:\n  eth0: {dhcp: true, dns: 1.1.1.1}\n", []string{`interfaces.eth0.dns: want a list, got "1.1.1.1"`}},
		{"dns bad", v + "interfaces:\n  eth0: {dhcp: true, dns: [1.1.1.x]}\n", []string{`interfaces.eth0.dns[0]: "1.1.1.x" is not an IP address`}},
		{"bad NIC name", v + "interfaces:\n  eth0/1: {dhcp: true}\n", []string{`interfaces.eth0/1: "eth0/1" is not an interface name`}},
		{"bad MAC", v + "interfaces:\n  eth0: {dhcp: true, mac: 02:00}\n", []string{`interfaces.eth0.mac: "02:00" is not a MAC address`}},
		{"duplicate MAC", v + "interfaces:\n  a: {dhcp: true, mac: \"02:00:00:00:00:01\"}\n  b: {dhcp: true, mac: \"02:00:00:00:00:01\"}\n", []string{"interfaces.b.mac: 02:00:00:00:00:01 is also interfaces.a's MAC"}},
		{"duplicate address", v + "interfaces:\n  a: {address: 10.0.0.5/24}\n  b: {address: 10.0.0.5/16}\n", []string{"interfaces.b.address: 10.0.0.5 is also interfaces.a's address"}},
		{"interfaces a list", v + "interfaces: [eth0]\n", []string{"interfaces: want a mapping of NIC name to settings, got a list"}},
		{"hostname", v + "hostname: bad_name\n", []string{`hostname: "bad_name" is not a host name`}},
		{"hostname number", v + "hostname: 1234\n", []string{"hostname: want a string, got number 1234 (quote it)"}},
		{"wan", v + "wan: \"a b\"\n", []string{`wan: "a b" is not an interface name`}},
		{"join missing", v + "networks:\n  - address: 192.168.254.11\n", []string{"networks[0].join: missing"}},
		{"join garbage", v + "networks: [{join: hello}]\n", []string{`networks[0].join: "hello" is neither a join string`}},
		{"join string bad pin", v + "networks: [{join: \"gate://h:1/" + netID + "?pin=sha256:00\"}]\n", []string{"networks[0].join: join string: pin"}},
		{"bare ID without controller", v + "networks: [{join: " + netID + "}]\n", []string{"networks[0].controller: needed with a bare network ID"}},
		{"join string and controller", v + "networks: [{join: \"" + joinStr + "\", controller: \"gate://h:1?pin=" + pin + "\"}]\n", []string{"networks[0].controller: the join string already names the controller"}},
		{"two tokens", v + "networks: [{join: \"" + joinStr + "\", token: " + token + "}]\n", []string{"networks[0].token: the join string already carries a token"}},
		{"bad token", v + "networks: [{join: " + netID + ", controller: \"gate://h:1?pin=" + pin + "\", token: short}]\n", []string{"networks[0].token: token: want 16-128 characters"}},
		{"bad controller", v + "networks: [{join: " + netID + ", controller: \"gate://h?pin=x\"}]\n", []string{"networks[0].controller: controller address: controller \"h\" must be HOST:PORT"}},
		{"duplicate network", v + "networks:\n  - join: \"" + joinStr + "\"\n  - {join: " + strings.ToUpper(netID) + ", controller: \"gate://h:1?pin=" + pin + "\"}\n", []string{"networks[1].join: network " + netID + " is also networks[0]"}},
		{"overlay address", v + "networks: [{join: \"" + joinStr + "\", address: 192.168.254.11/24}]\n", []string{`networks[0].address: "192.168.254.11/24" is not an IP address (no /prefix here)`}},
		{"overlay address is a NIC's", v + "interfaces: {eth0: {address: 10.0.0.5/24}}\nnetworks: [{join: \"" + joinStr + "\", address: 10.0.0.5}]\n", []string{"networks[0].address: 10.0.0.5 is interfaces.eth0's address"}},
		{"serve not canonical", v + "networks: [{join: \"" + joinStr + "\", gateway: {serve: [172.16.1.0/16]}}]\n", []string{"networks[0].gateway.serve[0]: 172.16.1.0/16 is not a network address (did you mean 172.16.0.0/16?)"}},
		{"serve overlap", v + "networks: [{join: \"" + joinStr + "\", gateway: {serve: [172.16.0.0/16, 172.16.5.0/24]}}]\n", []string{"networks[0].gateway.serve[1]: 172.16.5.0/24 overlaps serve[0] 172.16.0.0/16"}},
		{"serve empty", v + "networks: [{join: \"" + joinStr + "\", gateway: {masquerade: {to_internet: true}}}]\n", []string{"networks[0].gateway.serve: a gateway serves at least one CIDR"}},
		{"serve bad", v + "networks: [{join: \"" + joinStr + "\", gateway: {serve: [172.16.0.0/33]}}]\n", []string{`networks[0].gateway.serve[0]: "172.16.0.0/33" is not a CIDR`}},
		{"masquerade string", v + "networks: [{join: \"" + joinStr + "\", gateway: {serve: [10.0.0.0/8], masquerade: {to_internet: \"true\"}}}]\n", []string{`networks[0].gateway.masquerade.to_internet: want true or false, got "true"`}},
		{"lan bad", v + "networks: [{join: \"" + joinStr + "\", gateway: {serve: [10.0.0.0/8], lan: \"a/b\"}}]\n", []string{`networks[0].gateway.lan: "a/b" is not an interface name`}},
		{"networks a mapping", v + "networks: {join: x}\n", []string{"networks: want a list, got a mapping"}},
		{"controller listen port", v + "controller: {listen: \":99999\"}\n", []string{`controller.listen: ":99999": port must be 1-65535`}},
		{"controller listen number", v + "controller: {listen: 8443}\n", []string{"controller.listen: want a string, got number 8443 (quote it)"}},
		{"controller listen hostname", v + "controller: {listen: \"example.com:8443\"}\n", []string{"controller.listen: \"example.com:8443\": listen on an IP address"}},
		{"controller no listen", v + "controller: {advertise: \"h:1\"}\n", []string{"controller.listen: missing"}},
		{"advertise no host", v + "controller: {listen: \":1\", advertise: \":1\"}\n", []string{`controller.advertise: ":1": members need a host to dial`}},
		{"web console off loopback without TLS", v + "controller: {listen: \":8443\", web: {listen: \":8444\"}}\n", []string{`controller.web.listen: ":8444": without a certificate (cert, key) the web console listens on loopback only`}},
		{"web console on the controller's port", v + "controller: {listen: \"127.0.0.1:8443\", web: {listen: \"127.0.0.1:8443\"}}\n", []string{"controller.web.listen: \"127.0.0.1:8443\" is the controller's own address"}},
		{"web console without listen", v + "controller: {listen: \":8443\", web: {cert: /a, key: /b}}\n", []string{"controller.web.listen: missing"}},
		{"web console bad port", v + "controller: {listen: \":8443\", web: {listen: \"127.0.0.1:0\"}}\n", []string{"controller.web.listen: \"127.0.0.1:0\": port must be 1-65535"}},
		{"web console cert without key", v + "controller: {listen: \":8443\", web: {listen: \":443\", cert: /a}}\n", []string{"controller.web: give both cert and key"}},
		{"web console relative cert", v + "controller: {listen: \":8443\", web: {listen: \":443\", cert: web.crt, key: /b/../c}}\n", []string{"controller.web.cert: \"web.crt\": want an absolute, clean path", "controller.web.key: \"/b/../c\": want an absolute, clean path"}},
		{"web console not a mapping", v + "controller: {listen: \":8443\", web: \"127.0.0.1:8444\"}\n", []string{"controller.web: want a mapping"}},
		{"many errors at once", v + "hostname: 12\ninterfaces:\n  eth0: {address: nope}\nnetworks: [{join: " + netID + ", gateway: {serve: [x]}}]\n", []string{"hostname: want a string", "interfaces.eth0.address:", "networks[0].gateway.serve[0]:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := Parse([]byte(tc.doc))
			if err == nil {
				t.Fatalf("accepted: %+v", cfg)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T, want *Error: %v", err, err)
			}
			var lines []string
			for _, is := range e.Errors {
				lines = append(lines, is.String())
			}
			for _, w := range tc.want {
				if !containsAny(lines, w) {
					t.Errorf("no error contains %q; got:\n  %s", w, strings.Join(lines, "\n  "))
				}
			}
		})
	}
}

func containsAny(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func TestUnknownKeysWarn(t *testing.T) {
	doc := `version: 1
hostnme: x
interfaces:
  eth0: {dhcp: true, mtu: 1400}
networks:
  - join: "` + joinStr + `"
    gatway: {serve: [10.0.0.0/8]}
`
	cfg, warns, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range warns {
		got = append(got, w.String())
	}
	want := []string{
		"hostnme: unknown key (document, line 2)",
		"interfaces.eth0.mtu: unknown key (document, line 4)",
		"networks[0].gatway: unknown key (document, line 7)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got)\n%s", diff)
	}
	if cfg.Networks[0].Gateway != nil {
		t.Errorf("a misspelt key was applied: %+v", cfg.Networks[0].Gateway)
	}
}

func TestJSONLines(t *testing.T) {
	_, _, err := Parse([]byte("{\n \"version\": 1,\n \"interfaces\": {\n  \"eth0\": {\"address\": \"10.0.0.300/24\"}\n }\n}"))
	if err == nil || !strings.Contains(err.Error(), `interfaces.eth0.address: "10.0.0.300/24" is not a CIDR (line 4)`) {
		t.Fatalf("got %v", err)
	}
}

func TestByteOrderMark(t *testing.T) {
	for _, doc := range []string{"\ufeff{\"version\": 1, \"hostname\": \"b\"}", "\ufeffversion: 1\nhostname: b\n"} {
		if c, _, err := Parse([]byte(doc)); err != nil || c.Hostname != "b" {
			t.Errorf("%q: %+v, %v", doc, c, err)
		}
	}
}

func TestJoinRequest(t *testing.T) {
	ctl := "gate://203.0.113.5:8443?pin=" + pin
	canon := control.JoinString{Controller: "203.0.113.5:8443", NetworkID: netID, Pin: pin, Token: token}
	for _, tc := range []struct {
		name string
		n    Network
		join string
		ctl  string
	}{
		{"join string", Network{Join: joinStr}, joinStr, ""},
		{"bare ID and controller", Network{Join: strings.ToUpper(netID), Controller: ctl}, netID, canon.ControllerAddress()},
		{"bare ID, controller, token", Network{Join: netID, Controller: ctl, Token: token}, canon.String(), ""},
		{"join string without token, token beside", Network{Join: "gate://203.0.113.5:8443/" + netID + "?pin=" + pin, Token: token}, canon.String(), ""},
		{"bare ID, local controller", Network{Join: netID}, netID, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tc.n.JoinRequest()
			if err != nil {
				t.Fatal(err)
			}
			if r.Join != tc.join || r.Controller != tc.ctl {
				t.Errorf("got join %q controller %q, want %q %q", r.Join, r.Controller, tc.join, tc.ctl)
			}
		})
	}
	g := seedConfig().Networks[0]
	r, err := g.JoinRequest()
	if err != nil {
		t.Fatal(err)
	}
	if r.Gateway == nil || !r.Gateway.MasqueradeInternet || r.Gateway.MasqueradeLAN || r.Gateway.LAN != "eth0" || r.Address != g.Address {
		t.Errorf("gateway not carried over: %+v", r)
	}
}

func TestRedacted(t *testing.T) {
	c := seedConfig()
	c.Networks = append(c.Networks, Network{Join: netID, Token: token})
	r := c.Redacted()
	if s := string(Format(r)); strings.Contains(s, token) {
		t.Errorf("token left in:\n%s", s)
	}
	if c.Networks[0].Join != joinStr || c.Networks[1].Token != token {
		t.Error("Redacted changed the original")
	}
}
