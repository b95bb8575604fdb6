package nodeconfig

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func prefixes(s ...string) []netip.Prefix {
	var ps []netip.Prefix
	for _, x := range s {
		ps = append(ps, netip.MustParsePrefix(x))
	}
	return ps
}

// TestGatewayCheck: the one validator of a gateway role (moved from the
// agent's CheckGateway, whose rules it now is, with the document's).
func TestGatewayCheck(t *testing.T) {
	tests := []struct {
		g       *Gateway
		wantErr string
	}{
		{nil, ""},
		{&Gateway{Serve: prefixes("172.16.0.0/16")}, ""},
		{&Gateway{Serve: prefixes("172.16.0.0/16"), LAN: "eth0", MasqueradeLAN: true}, ""},
		{&Gateway{Serve: prefixes("172.16.0.0/16", "10.0.0.0/8"), MasqueradeInternet: true}, ""},
		{&Gateway{}, "gateway: serve: a gateway serves at least one CIDR"},
		{&Gateway{Serve: prefixes("172.16.1.1/16")}, "gateway: serve[0]: 172.16.1.1/16 is not a network address (did you mean 172.16.0.0/16?)"},
		{&Gateway{Serve: prefixes("fd00::/64")}, "want an IPv4 CIDR"},
		{&Gateway{Serve: prefixes("::ffff:10.0.0.0/104")}, "want an IPv4 CIDR"},
		{&Gateway{Serve: []netip.Prefix{{}}}, "want an IPv4 CIDR"},
		{&Gateway{Serve: prefixes("172.16.0.0/16", "10.0.0.0/8", "172.16.5.0/24")}, "gateway: serve[2]: 172.16.5.0/24 overlaps serve[0] 172.16.0.0/16"},
		{&Gateway{Serve: prefixes("172.16.0.0/16"), LAN: "eth0/1"}, "is not an interface name"},
		{&Gateway{Serve: prefixes("172.16.0.0/16"), LAN: "averyveryverylongname"}, "is not an interface name"},
		{&Gateway{Serve: prefixes("172.16.0.0/16"), LAN: OverlayInterface(netID)}, `gateway: lan: "gated363b4e9bd" is one of Gate's overlay interfaces, not a LAN`},
		{&Gateway{Serve: prefixes("172.16.0.0/16"), LAN: "gatewaylan01"}, ""},
		{&Gateway{Serve: prefixes("172.16.0.0/16"), AWSRouteTables: []string{"rtb-0123456789abcdef0", "rtb-89abcdef"}}, ""},
		{&Gateway{Serve: prefixes("172.16.0.0/16"), AWSRouteTables: []string{"rtb-0123456789ABCDEF0"}}, `gateway: aws_route_tables[0]: route table "rtb-0123456789ABCDEF0": want rtb- and 8 or 17 hex digits`},
		{&Gateway{Serve: prefixes("172.16.0.0/16"), AWSRouteTables: []string{"rtb-89abcdef", "rtb-89abcdef"}}, "gateway: aws_route_tables[1]: rtb-89abcdef is named twice"},
		{&Gateway{Serve: prefixes("172.16.0.0/16"), AWSRouteTables: []string{"rtb-1234\x1b[2J"}}, `route table "rtb-1234\x1b[2J"`},
		// The decision: a NAT instance says what it serves.
		{&Gateway{MasqueradeInternet: true}, "gateway: serve: a gateway serves at least one CIDR"},
		{&Gateway{LAN: "eth0", MasqueradeLAN: true, MasqueradeInternet: true}, "gateway: serve: a gateway serves at least one CIDR"},
	}
	for _, tt := range tests {
		err := tt.g.Check()
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("Check(%+v) = %v, want %q", tt.g, err, tt.wantErr)
		}
	}
}

// TestAttackGatewayLANName: a gateway's LAN is checked by the one
// interface-name validator, and the refusal says the same as the
// document's and quotes the name in ASCII (moved from the agent).
func TestAttackGatewayLANName(t *testing.T) {
	for _, name := range []string{"eth\u00e9", "\x1b[2J", "a\u009bb", "eth0/1", "..", strings.Repeat("a", 16)} {
		err := (&Gateway{Serve: prefixes("172.16.0.0/16"), LAN: name}).Check()
		want := CheckInterfaceName(name)
		if err == nil || want == nil || err.Error() != "gateway: lan: "+want.Error() {
			t.Errorf("Check(lan %q) = %v, want gateway: lan: %v", name, err, want)
		}
	}
}

// TestParseJoin: the one reading of a join, for the document, the CLI,
// the console and the agent.
func TestParseJoin(t *testing.T) {
	ctl := "gate://203.0.113.5:8443?pin=" + pin
	js := "gate://203.0.113.5:8443/" + netID + "?pin=" + pin
	for _, tc := range []struct {
		name                    string
		join, controller, token string
		wantCtl, wantTok        string
		field, wantErr          string
	}{
		{name: "join string", join: " " + js + " ", wantCtl: "203.0.113.5:8443"},
		{name: "join string and token beside", join: js, token: token, wantCtl: "203.0.113.5:8443", wantTok: token},
		{name: "bare ID", join: strings.ToUpper(netID)},
		{name: "bare ID and controller", join: netID, controller: ctl, wantCtl: "203.0.113.5:8443"},
		{name: "bare ID, controller, token", join: netID, controller: ctl, token: token, wantCtl: "203.0.113.5:8443", wantTok: token},
		{name: "bare ID and token", join: netID, token: token, wantTok: token},
		{name: "empty", join: " ", field: "join", wantErr: "missing: a join string"},
		{name: "short ID", join: "d363b4e9", field: "join", wantErr: `"d363b4e9" is neither a join string (gate://HOST:PORT/NETWORKID?pin=...) nor a network ID (want 16 hex digits)`},
		{name: "no pin", join: "gate://203.0.113.5:8443/" + netID, field: "join", wantErr: "join string: missing pin"},
		{name: "bad host", join: "gate://a%C2%9Bb:8443/" + netID + "?pin=" + pin, field: "join", wantErr: "join string: controller host"},
		{name: "join string and controller", join: js, controller: ctl, field: "controller", wantErr: "the join string already names the controller; drop one"},
		{name: "two tokens", join: js + "&token=" + token, token: token, field: "token", wantErr: "the join string already carries a token; drop one"},
		{name: "bad controller", join: netID, controller: "gate://x:1", field: "controller", wantErr: "controller address: missing pin"},
		{name: "bad token", join: netID, controller: ctl, token: "short", field: "token", wantErr: "token: want 16-128 characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, err := ParseJoin(tc.join, tc.controller, tc.token)
			if tc.wantErr != "" {
				var p *Problem
				if !errors.As(err, &p) || p.Field != tc.field || !strings.Contains(p.Msg, tc.wantErr) {
					t.Errorf("ParseJoin = %+v, %#v; want %s: %q", j, err, tc.field, tc.wantErr)
				}
				return
			}
			if err != nil || j.NetworkID != netID || j.Controller != tc.wantCtl || j.Token != tc.wantTok || (j.Controller != "") != (j.Pin != "") {
				t.Errorf("ParseJoin = %+v, %v", j, err)
			}
		})
	}
}

// TestDocumentIsTheDomainsRule: the document refuses what the agent
// refuses. Each was taken by the document before its checks became the
// domain's (the agent refused them).
func TestDocumentIsTheDomainsRule(t *testing.T) {
	v := "version: 1\n"
	for _, tc := range []struct{ name, doc, want string }{
		{"IPv6 serve", v + "networks: [{join: \"" + joinStr + "\", gateway: {serve: [\"fd00::/64\"]}}]\n",
			"networks[0].gateway.serve[0]: fd00::/64: want an IPv4 CIDR"},
		{"IPv6 requested address", v + "networks: [{join: \"" + joinStr + "\", address: \"fd00::11\"}]\n",
			"networks[0].address: fd00::11: only IPv4 overlay addresses are supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Parse([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestJoinRequestCheck: the request's validator says what the agent and
// the local API say.
func TestJoinRequestCheck(t *testing.T) {
	for _, tc := range []struct {
		r    JoinRequest
		want string
	}{
		{JoinRequest{Join: joinStr}, ""},
		{JoinRequest{Join: netID}, ""}, // the controller is the agent's to know
		{JoinRequest{Join: "bad"}, `"bad" is neither a join string`},
		{JoinRequest{Join: joinStr, Controller: "gate://h:1?pin=" + pin}, "controller: the join string already names the controller"},
		{JoinRequest{Join: netID, Controller: "gate://h:1"}, "controller address: missing pin"},
		{JoinRequest{Join: joinStr, Address: netip.MustParseAddr("fd00::1")}, "address fd00::1: only IPv4 overlay addresses are supported"},
		{JoinRequest{Join: joinStr, Address: netip.MustParseAddr("0.0.0.0")}, "address 0.0.0.0 is not a usable host address"},
		{JoinRequest{Join: joinStr, Gateway: &Gateway{MasqueradeInternet: true}}, "gateway: serve: a gateway serves at least one CIDR"},
		{JoinRequest{Join: joinStr, InstanceID: strings.Repeat("i", 129)}, "instance ID: at most 128 characters"},
	} {
		err := tc.r.Check()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
			t.Errorf("Check(%+v) = %v, want %q", tc.r, err, tc.want)
		}
	}
}
