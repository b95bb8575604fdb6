package control

import (
	"bytes"
	"context"
	"encoding/json"
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
		if got != tt.want {
			t.Errorf("ParseJoinString(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		again, err := ParseJoinString(got.String())
		if err != nil || again != got {
			t.Errorf("round trip of %q: %+v, %v", got.String(), again, err)
		}
	}
}

func TestJoinStringErrorsDoNotLeakToken(t *testing.T) {
	_, err := ParseJoinString("gate://1.2.3.4/d363b4e9bd3d6aa8?pin=" + testPin + "&token=SECRETSECRETSECRET")
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error %v; want one without the token", err)
	}
}

func FuzzParseJoinString(f *testing.F) {
	f.Add("gate://203.0.113.5:8443/d363b4e9bd3d6aa8?pin=" + testPin)
	f.Add("gate://h:1/d363b4e9bd3d6aa8?pin=" + testPin + "&token=abcdefghijklmnopq")
	f.Add("gate://[::1]:8443?pin=x")
	f.Fuzz(func(t *testing.T, s string) {
		j, err := ParseJoinString(s)
		if err != nil {
			return
		}
		if CheckNetworkID(j.NetworkID) != nil || j.Pin == "" {
			t.Fatalf("accepted %q as %+v", s, j)
		}
		again, err := ParseJoinString(j.String())
		if err != nil || again != j {
			t.Fatalf("round trip of %q: %+v, %v", s, again, err)
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
