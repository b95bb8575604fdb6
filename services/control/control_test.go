package control

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

const testPin = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseJoinString(t *testing.T) {
	tests := []struct {
		in      string
		want    JoinString
		wantErr string
	}{
		{in: "gate://203.0.113.5:8443/d363b4e9bd3d6aa8?pin=" + testPin,
			want: JoinString{Controller: "203.0.113.5:8443", NetworkID: "d363b4e9bd3d6aa8", Pin: testPin}},
		{in: "  gate://ctl.example:8443/D363B4E9BD3D6AA8?pin=" + strings.ToUpper(testPin) + "&token=abcdefghijklmnop_-12 ",
			want: JoinString{Controller: "ctl.example:8443", NetworkID: "d363b4e9bd3d6aa8", Pin: testPin, Token: "abcdefghijklmnop_-12"}},
		{in: "gate://[2001:db8::1]:8443/d363b4e9bd3d6aa8?pin=" + testPin,
			want: JoinString{Controller: "[2001:db8::1]:8443", NetworkID: "d363b4e9bd3d6aa8", Pin: testPin}},
		{in: "https://1.2.3.4:8443/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: "must start with gate://"},
		{in: "gate://1.2.3.4/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: "must be HOST:PORT"},
		{in: "gate://1.2.3.4:0/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: "port"},
		{in: "gate://1.2.3.4:8443?pin=" + testPin, wantErr: "missing network ID"},
		{in: "gate://1.2.3.4:8443/d363b4e9?pin=" + testPin, wantErr: "want 16 hex digits"},
		{in: "gate://1.2.3.4:8443/d363b4e9bd3d6aa8", wantErr: "missing pin"},
		{in: "gate://1.2.3.4:8443/d363b4e9bd3d6aa8?pin=md5:abc", wantErr: "pin"},
		{in: "gate://1.2.3.4:8443/d363b4e9bd3d6aa8?pin=" + testPin + "&token=short", wantErr: "token"},
		{in: "gate://1.2.3.4:8443/d363b4e9bd3d6aa8?pin=" + testPin + "&colour=blue", wantErr: `unknown parameter "colour"`},
		{in: "gate://1.2.3.4:8443/d363b4e9bd3d6aa8?pin=" + testPin + "&pin=" + testPin, wantErr: "given 2 times"},
		{in: "d363b4e9bd3d6aa8", wantErr: "must start with gate://"},
		// Hostile hosts: %-escapes give url.Parse any byte.
		{in: "gate://a%C2%9B:1/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: `controller host "a\u009b" must be an IP address`},
		{in: "gate://ctl%20x:8443/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: "invalid URL escape"},
		{in: "gate://[fe80::1%25eth0]:8443/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: "controller host"},
		{in: "gate://ctl_1.example:8443/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: "controller host"},
		{in: "gate://1.2.3.4:+8443/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: "port"},

		// Several addresses of one controller, one pin.
		{in: "gate://198.51.100.10:8443,198.51.100.11:8443/d363b4e9bd3d6aa8?pin=" + testPin,
			want: JoinString{Controller: "198.51.100.10:8443", Replicas: []string{"198.51.100.11:8443"}, NetworkID: "d363b4e9bd3d6aa8", Pin: testPin}},
		{in: "GATE://[2001:db8::1]:8443,ctl-b.example:443,[::1]:1/d363b4e9bd3d6aa8?token=abcdefghijklmnop_-12&pin=" + testPin,
			want: JoinString{Controller: "[2001:db8::1]:8443", Replicas: []string{"ctl-b.example:443", "[::1]:1"}, NetworkID: "d363b4e9bd3d6aa8", Pin: testPin, Token: "abcdefghijklmnop_-12"}},
		{in: "gate://" + hostList(8) + "/d363b4e9bd3d6aa8?pin=" + testPin,
			want: JoinString{Controller: "10.0.0.1:8443", Replicas: strings.Split(hostList(8), ",")[1:], NetworkID: "d363b4e9bd3d6aa8", Pin: testPin}},
		{in: "gate://" + hostList(9) + "/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: "more than 8 controller addresses"},
		{in: "gate://" + strings.Repeat("a:1,", 100000) + "a:1/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: "more than 8 controller addresses"},
		{in: "gate://a.example:1,,b.example:2/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: "controller address 2 of 3 is empty"},
		{in: "gate://a.example:1,/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: "controller address 2 of 2 is empty"},
		{in: "gate://,a.example:1/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: "controller address 1 of 2 is empty"},
		{in: "gate://a.example:1, b.example:2/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: `controller " b.example:2" (address 2 of 2): invalid character " " in host name`},
		{in: "gate://a.example:1,b.ex\x01ample:2/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: `controller "b.ex\x01ample:2" (address 2 of 2): net/url: invalid control character in URL`},
		{in: "gate://a.example:1,b.ex\x7fample:2/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: "(address 2 of 2)"},
		{in: "gate://a.example:1,b%C2%9B:2/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: `controller "b\u009b:2" (address 2 of 2): host "b\u009b" must be an IP address`},
		{in: "gate://a.example:1,b.example:0/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: `controller "b.example:0" (address 2 of 2): port "0" must be 1-65535`},
		{in: "gate://a.example:1,b.example/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: `controller "b.example" (address 2 of 2): "b.example" must be HOST:PORT`},
		{in: "gate://a.example,b.example:1/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: `controller "a.example" (address 1 of 2)`},
		{in: "gate://a.example:1,u@b.example:1/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: `(address 2 of 2): unexpected user info`},
		{in: "gate://u@a.example:1,b.example:1/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: `unexpected user info`},
		{in: "gate://a.example:1,[fe80::1%25eth0]:1/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: `(address 2 of 2): host "fe80::1%eth0" must be an IP address (without a zone)`},
		{in: "gate://[::1,::2]:1/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: `controller "[::1" (address 1 of 2): missing ']' in host`},
		{in: "gate://a.example:1,b.example:2,A.Example:01/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: `controller "A.Example:01" is listed twice (addresses 1 and 3)`},
		{in: "gate://[2001:db8::1]:1,[2001:db8:0::1]:1/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: "listed twice"},
		{in: "gate://a.example:1,b.example:2?pin=" + testPin, wantErr: "missing network ID"},
		{in: "gate://a.example:1,b.example:2/d363b4e9bd3d6aa8", wantErr: "missing pin"},
		{in: "https://a.example:1,b.example:2/d363b4e9bd3d6aa8?pin=" + testPin, wantErr: "must start with gate://"},
		// A comma after the authority is not a list of controllers.
		{in: "gate://a.example:1/d363b4e9bd3d6aa8?pin=" + testPin + "&x=a,b", wantErr: `unknown parameter "x"`},
		{in: "gate://a.example:1/d363b4e9bd3d6aa8,b?pin=" + testPin, wantErr: "network"},
	}
	for _, tt := range tests {
		got, err := ParseJoinString(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseJoinString(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseJoinString(%q): %v", tt.in, err)
			continue
		}
		if !got.Equal(tt.want) {
			t.Errorf("ParseJoinString(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		again, err := ParseJoinString(got.String())
		if err != nil || !again.Equal(got) {
			t.Errorf("round trip of %q: %+v, %v", got.String(), again, err)
		}
	}
}

// hostList is n controller addresses, comma-separated.
func hostList(n int) string {
	var hs []string
	for i := range n {
		hs = append(hs, fmt.Sprintf("10.0.0.%d:8443", i+1))
	}
	return strings.Join(hs, ",")
}

// TestJoinStringOneAddressRendersAsBefore: a join string with one
// controller address is byte for byte what it was before replicas.
func TestJoinStringOneAddressRendersAsBefore(t *testing.T) {
	for _, tt := range []struct {
		j    JoinString
		want string
	}{
		{JoinString{Controller: "203.0.113.5:8443", NetworkID: "d363b4e9bd3d6aa8", Pin: testPin},
			"gate://203.0.113.5:8443/d363b4e9bd3d6aa8?pin=sha256%3A0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		{JoinString{Controller: "[2001:db8::1]:8443", NetworkID: "d363b4e9bd3d6aa8", Pin: testPin, Token: "abcdefghijklmnop_-12"},
			"gate://[2001:db8::1]:8443/d363b4e9bd3d6aa8?pin=sha256%3A0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef&token=abcdefghijklmnop_-12"},
		{JoinString{Controller: "ctl.example:8443", Pin: testPin}, "gate://ctl.example:8443/?pin=sha256%3A0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
	} {
		if got := tt.j.String(); got != tt.want {
			t.Errorf("String() = %s, want %s", got, tt.want)
		}
	}
	if got := (JoinString{Controller: "ctl.example:8443", NetworkID: "d363b4e9bd3d6aa8", Pin: testPin, Token: "abcdefghijklmnop_-12"}).ControllerAddress(); got != "gate://ctl.example:8443/?pin=sha256%3A0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" {
		t.Errorf("ControllerAddress() = %s", got)
	}
}

// TestJoinStringSeveralAddresses: several addresses render comma-separated
// in order, in join strings and controller addresses, and read back.
func TestJoinStringSeveralAddresses(t *testing.T) {
	j := JoinString{Controller: "198.51.100.10:8443", Replicas: []string{"[2001:db8::2]:8443", "ctl-c.example:443"}, NetworkID: "d363b4e9bd3d6aa8", Pin: testPin, Token: "abcdefghijklmnop_-12"}
	want := "gate://198.51.100.10:8443,[2001:db8::2]:8443,ctl-c.example:443/d363b4e9bd3d6aa8?pin=sha256%3A" + testPin[len("sha256:"):] + "&token=abcdefghijklmnop_-12"
	if got := j.String(); got != want {
		t.Fatalf("String() = %s, want %s", got, want)
	}
	if got := j.Controllers(); !reflect.DeepEqual(got, []string{"198.51.100.10:8443", "[2001:db8::2]:8443", "ctl-c.example:443"}) {
		t.Errorf("Controllers() = %q", got)
	}
	c, err := ParseControllerAddress(j.ControllerAddress())
	if err != nil {
		t.Fatal(err)
	}
	if !c.Equal(JoinString{Controller: j.Controller, Replicas: j.Replicas, Pin: j.Pin}) {
		t.Errorf("ParseControllerAddress(%s) = %+v", j.ControllerAddress(), c)
	}
	if c, err := ParseControllerAddress("gate://a.example:1,b.example:2?pin=" + testPin); err != nil || !reflect.DeepEqual(c.Controllers(), []string{"a.example:1", "b.example:2"}) {
		t.Errorf("bare controller list: %+v, %v", c, err)
	}
	if got := (JoinString{}).Controllers(); got != nil {
		t.Errorf("no controller: Controllers() = %q", got)
	}
}

func TestJoinStringErrorsDoNotLeakToken(t *testing.T) {
	for _, host := range []string{"1.2.3.4", "ctl%20x:1", "a:1,b%20:2", "a:1,,b:2", "a:1,a:1", "a\x01:1,b:1", "a:1,b\x01:1"} {
		_, err := ParseJoinString("gate://" + host + "/d363b4e9bd3d6aa8?pin=" + testPin + "&token=SECRETSECRETSECRET")
		if err == nil || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: error %v; want one without the token", host, err)
		}
	}
}

func FuzzParseJoinString(f *testing.F) {
	f.Add("gate://203.0.113.5:8443/d363b4e9bd3d6aa8?pin=" + testPin)
	f.Add("gate://h:1/d363b4e9bd3d6aa8?pin=" + testPin + "&token=abcdefghijklmnopq")
	f.Add("gate://[::1]:8443?pin=x")
	f.Add("gate://198.51.100.10:8443,[2001:db8::1]:8443,c.example:1/d363b4e9bd3d6aa8?pin=" + testPin)
	f.Add("gate://a:1,,b:2/d363b4e9bd3d6aa8?pin=" + testPin)
	f.Add("gate://a:1,a:01/d363b4e9bd3d6aa8?pin=" + testPin)
	f.Add("gate://a:1, b:2/d363b4e9bd3d6aa8?pin=" + testPin)
	f.Add("gate://" + hostList(9) + "/d363b4e9bd3d6aa8?pin=" + testPin)
	f.Fuzz(func(t *testing.T, s string) {
		j, err := ParseJoinString(s)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\x00\r\n\x1b") {
				t.Fatalf("error for %q is not printable: %q", s, err)
			}
			return
		}
		if CheckNetworkID(j.NetworkID) != nil || j.Pin == "" {
			t.Fatalf("accepted %q as %+v", s, j)
		}
		// Every address is one a join string of its own would take, and
		// none is listed twice.
		cs := j.Controllers()
		if len(cs) == 0 || len(cs) > MaxControllers || (len(j.Replicas) == 0) != (j.Replicas == nil) {
			t.Fatalf("accepted %q with controllers %q", s, cs)
		}
		seen := map[string]bool{}
		for _, c := range cs {
			one, err := ParseJoinString(JoinString{Controller: c, NetworkID: j.NetworkID, Pin: j.Pin}.String())
			if err != nil || one.Controller != c || one.Replicas != nil {
				t.Fatalf("accepted %q with controller %q, which alone gives %+v, %v", s, c, one, err)
			}
			if seen[controllerKey(c)] {
				t.Fatalf("accepted %q with %q twice", s, c)
			}
			seen[controllerKey(c)] = true
		}
		again, err := ParseJoinString(j.String())
		if err != nil || !again.Equal(j) {
			t.Fatalf("round trip of %q: %+v, %v", s, again, err)
		}
		ctl, err := ParseControllerAddress(j.ControllerAddress())
		if err != nil || !ctl.Equal(JoinString{Controller: j.Controller, Replicas: j.Replicas, Pin: j.Pin}) {
			t.Fatalf("controller address of %q: %+v, %v", s, ctl, err)
		}
	})
}

func TestDurationJSON(t *testing.T) {
	for in, want := range map[string]time.Duration{`"90s"`: 90 * time.Second, `3600`: time.Hour, `"24h"`: 24 * time.Hour} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err != nil || time.Duration(d) != want {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", in, time.Duration(d), err, want)
		}
	}
	var d Duration
	if err := json.Unmarshal([]byte(`"soon"`), &d); err == nil {
		t.Error(`Unmarshal("soon") succeeded`)
	}
}

func TestIdentityPEMRoundTrip(t *testing.T) {
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	b, err := id.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	id2, err := ParseIdentityPEM(b)
	if err != nil {
		t.Fatal(err)
	}
	if id.NodeID() != id2.NodeID() || id.Pin() != id2.Pin() || CheckNodeID(id.NodeID()) != nil {
		t.Errorf("round trip changed identity: %s/%s", id.NodeID(), id2.NodeID())
	}
	if _, err := ParseIdentityPEM([]byte("junk")); err == nil {
		t.Error("ParseIdentityPEM(junk) succeeded")
	}
}

// TestPinnedTLS runs a real TLS server and checks that the client accepts
// only the pinned key and that the server learns the client's node ID.
func TestPinnedTLS(t *testing.T) {
	server, _ := NewIdentity()
	member, _ := NewIdentity()
	other, _ := NewIdentity()
	cfg, err := ServerTLS(server)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: cfg, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := PeerNodeID(r.TLS)
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(Error{Error: err.Error()})
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"node": id})
	})}
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()
	ctx := context.Background()
	addr := ln.Addr().String()

	c, err := NewClient(addr, server.Pin(), &member, "")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := c.Do(ctx, "GET", "/", nil, &got); err != nil {
		t.Fatal(err)
	}
	if got["node"] != member.NodeID() {
		t.Errorf("server saw node %q, want %q", got["node"], member.NodeID())
	}

	wrong, _ := NewClient(addr, other.Pin(), &member, "")
	if err := wrong.Do(ctx, "GET", "/", nil, &got); err == nil || !strings.Contains(err.Error(), "does not match pin") {
		t.Errorf("client with wrong pin: err = %v", err)
	}

	anon, _ := NewClient(addr, server.Pin(), nil, "")
	if err := anon.Do(ctx, "GET", "/", nil, &got); !IsStatus(err, http.StatusUnauthorized) {
		t.Errorf("client without identity: err = %v, want HTTP 401", err)
	}
}

// TestPeerJSON: allowed_ips is left out exactly when it is the addresses
// as host prefixes, and every peer decodes to what was encoded.
func TestPeerJSON(t *testing.T) {
	a4, a6 := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("fd00::3")
	route := netip.MustParsePrefix("172.16.0.0/16")
	ep := []netip.AddrPort{netip.MustParseAddrPort("198.51.100.7:51820")}
	for _, c := range []struct {
		name    string
		p       Peer
		omitted bool
	}{
		{"plain", Peer{NodeID: "aa", Addresses: []netip.Addr{a4}, AllowedIPs: []netip.Prefix{netip.PrefixFrom(a4, 32)}, Endpoints: ep}, true},
		{"IPv6", Peer{NodeID: "bb", Addresses: []netip.Addr{a4, a6}, AllowedIPs: []netip.Prefix{netip.PrefixFrom(a4, 32), netip.PrefixFrom(a6, 128)}}, true},
		{"serves a route", Peer{NodeID: "cc", Addresses: []netip.Addr{a4}, AllowedIPs: []netip.Prefix{netip.PrefixFrom(a4, 32), route}}, false},
		{"a wider prefix", Peer{NodeID: "dd", Addresses: []netip.Addr{a4}, AllowedIPs: []netip.Prefix{netip.PrefixFrom(a4, 24)}}, false},
		{"no allowed IPs", Peer{NodeID: "ee", Addresses: []netip.Addr{a4}, AllowedIPs: []netip.Prefix{}}, false},
		{"no addresses", Peer{NodeID: "ff", Addresses: []netip.Addr{}, AllowedIPs: []netip.Prefix{route}}, false},
	} {
		b, err := json.Marshal(c.p)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if omitted := !bytes.Contains(b, []byte(`"allowed_ips"`)); omitted != c.omitted {
			t.Errorf("%s: %s: allowed_ips left out %t, want %t", c.name, b, omitted, c.omitted)
		}
		var got Peer
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !reflect.DeepEqual(got, c.p) {
			t.Errorf("%s: %s decodes to\n%+v, want\n%+v", c.name, b, got, c.p)
		}
	}
	// What an older controller sends, allowed_ips and all, still decodes.
	var p Peer
	if err := json.Unmarshal([]byte(`{"node_id":"aa","addresses":["10.1.2.3"],"allowed_ips":["10.1.2.3/32","172.16.0.0/16"]}`), &p); err != nil || len(p.AllowedIPs) != 2 {
		t.Errorf("full form: %+v, %v", p, err)
	}
	if err := json.Unmarshal([]byte(`{"node_id":"aa","addresses":["10.1.2.x"]}`), &p); err == nil {
		t.Error("a bad address decoded")
	}
}

// FuzzPeerJSON: whatever decodes as a peer encodes and decodes to the same
// peer, with or without allowed_ips on the wire.
func FuzzPeerJSON(f *testing.F) {
	f.Add([]byte(`{"node_id":"aa","addresses":["10.1.2.3"],"endpoints":["198.51.100.7:51820"]}`))
	f.Add([]byte(`{"node_id":"aa","addresses":["10.1.2.3","fd00::3"],"allowed_ips":["10.1.2.3/32","172.16.0.0/16"]}`))
	f.Add([]byte(`{"addresses":[],"allowed_ips":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Peer
		if json.Unmarshal(b, &p) != nil {
			return
		}
		out, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("%+v does not encode: %v", p, err)
		}
		var q Peer
		if err := json.Unmarshal(out, &q); err != nil {
			t.Fatalf("%s does not decode: %v", out, err)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("%s -> %+v -> %s -> %+v", b, p, out, q)
		}
	})
}
