package tunnel

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func pfxs(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// key returns a fixed test private key.
func key(b byte) Key {
	var k Key
	for i := range k {
		k[i] = b
	}
	return k
}

// newKey makes a private key for a test device or peer.
func newKey(t *testing.T) Key {
	t.Helper()
	k, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeys(t *testing.T) {
	k, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	if k[0]&7 != 0 || k[31]&128 != 0 || k[31]&64 == 0 {
		t.Errorf("private key not clamped: %x", k)
	}
	p, err := ParseKey(k.String())
	if err != nil || p != k {
		t.Errorf("ParseKey(String()) = %v, %v", p, err)
	}
	if k.Public() == k.Public().Public() || k.Public().IsZero() {
		t.Error("Public looks wrong")
	}
	// RFC 7748 section 6.1, Alice's keys.
	priv, _ := ParseKey("dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=")
	want, _ := ParseKey("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=")
	if got := priv.Public(); got != want {
		t.Errorf("Public() = %v, want %v (RFC 7748)", got, want)
	}
	if !(Key{}).IsZero() || k.IsZero() || !(Key{}).Public().IsZero() {
		t.Error("IsZero wrong")
	}
	var u Key
	if err := u.UnmarshalText([]byte(want.String())); err != nil || u != want {
		t.Errorf("UnmarshalText = %v, %v", u, err)
	}
}

func TestParseKeyErrors(t *testing.T) {
	good := key(7).String()
	tests := []struct {
		in, err string
	}{
		{"", "key is 0 characters long, want 44 characters of standard base64"},
		{good[:43], "key is 43 characters long"},
		{good + "=", "key is 45 characters long"},
		{"!" + good[1:], "key is not standard base64: bad character at offset 0"},
		{strings.ReplaceAll(good[:40], "B", "-") + "-_-=", "not standard base64"}, // URL alphabet
		{strings.Repeat("A", 42) + "==", "key decodes to 31 bytes, want 32"},
		{strings.Repeat("A", 44), "key decodes to 33 bytes, want 32"},
	}
	for _, tt := range tests {
		_, err := ParseKey(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("ParseKey(%q) = %v, want error containing %q", tt.in, err, tt.err)
		}
		if err != nil && len(tt.in) > 8 && strings.Contains(err.Error(), tt.in[:8]) {
			t.Errorf("ParseKey error repeats the key: %v", err)
		}
	}
}

func TestPlan(t *testing.T) {
	priv := key(1)
	a, b, c := key(2).Public(), key(3).Public(), key(4).Public()
	now := time.Unix(1_700_000_000, 0)
	base := Status{PublicKey: priv.Public(), ListenPort: 51820, Observed: now}
	withPeers := func(ps ...PeerStatus) Status { s := base; s.Peers = ps; return s }
	peerA := PeerStatus{PublicKey: a, Endpoint: ap("198.51.100.1:51820"), AllowedIPs: pfxs("192.168.254.11/32", "172.16.0.0/16"), Keepalive: 25}
	wantA := Peer{PublicKey: a, Endpoint: ap("198.51.100.1:51820"), AllowedIPs: pfxs("172.16.0.0/16", "192.168.254.11/32"), Keepalive: 25}
	cfg := func(ps ...Peer) Config { return Config{PrivateKey: priv, ListenPort: 51820, Peers: ps} }

	tests := []struct {
		name string
		cur  Status
		want Config
		set  string
	}{
		{
			name: "fresh device",
			cur:  Status{ListenPort: 40000, Observed: now},
			want: cfg(wantA),
			set: "private_key=" + priv.hex() + "\nlisten_port=51820\n" +
				"public_key=" + a.hex() + "\nendpoint=198.51.100.1:51820\npersistent_keepalive_interval=25\n" +
				"replace_allowed_ips=true\nallowed_ip=172.16.0.0/16\nallowed_ip=192.168.254.11/32\n",
		},
		{name: "nothing to do", cur: withPeers(peerA), want: cfg(wantA)},
		{
			name: "listen port 0 keeps the kernel's pick",
			cur:  withPeers(peerA),
			want: Config{PrivateKey: priv, Peers: []Peer{wantA}},
		},
		{
			name: "new key",
			cur:  withPeers(peerA),
			want: Config{PrivateKey: key(9), ListenPort: 51820, Peers: []Peer{wantA}},
			set:  "private_key=" + key(9).hex() + "\n",
		},
		{
			name: "peer without endpoint or keepalive",
			cur:  base,
			want: cfg(Peer{PublicKey: b, AllowedIPs: pfxs("192.168.254.170/32")}),
			set:  "public_key=" + b.hex() + "\nreplace_allowed_ips=true\nallowed_ip=192.168.254.170/32\n",
		},
		{
			name: "remove peers (sorted), keep one",
			cur:  withPeers(PeerStatus{PublicKey: c}, peerA, PeerStatus{PublicKey: b}),
			want: cfg(wantA),
			set: func() string {
				first, second := b, c
				if strings.Compare(string(c[:]), string(b[:])) < 0 {
					first, second = c, b
				}
				return "public_key=" + first.hex() + "\nremove=true\npublic_key=" + second.hex() + "\nremove=true\n"
			}(),
		},
		{
			name: "remove all",
			cur:  withPeers(peerA),
			want: cfg(),
			set:  "public_key=" + a.hex() + "\nremove=true\n",
		},
		{
			name: "allowed IPs change: replace on that peer only",
			cur:  withPeers(peerA, PeerStatus{PublicKey: b, AllowedIPs: pfxs("192.168.254.170/32")}),
			want: cfg(Peer{PublicKey: a, Endpoint: peerA.Endpoint, Keepalive: 25, AllowedIPs: pfxs("192.168.254.11/32", "10.0.0.0/8")},
				Peer{PublicKey: b, AllowedIPs: pfxs("192.168.254.170/32")}),
			set: "public_key=" + a.hex() + "\nupdate_only=true\nreplace_allowed_ips=true\nallowed_ip=10.0.0.0/8\nallowed_ip=192.168.254.11/32\n",
		},
		{
			name: "allowed IPs compared masked and as a set",
			cur:  withPeers(peerA),
			want: cfg(Peer{PublicKey: a, Endpoint: peerA.Endpoint, Keepalive: 25, AllowedIPs: pfxs("172.16.9.9/16", "192.168.254.11/32", "172.16.0.0/16")}),
		},
		{
			name: "keepalive change",
			cur:  withPeers(peerA),
			want: cfg(Peer{PublicKey: a, Endpoint: peerA.Endpoint, AllowedIPs: peerA.AllowedIPs}),
			set:  "public_key=" + a.hex() + "\nupdate_only=true\npersistent_keepalive_interval=0\n",
		},
		{
			name: "endpoint set when the peer has none",
			cur:  withPeers(PeerStatus{PublicKey: a, AllowedIPs: peerA.AllowedIPs, Keepalive: 25}),
			want: cfg(wantA),
			set:  "public_key=" + a.hex() + "\nupdate_only=true\nendpoint=198.51.100.1:51820\n",
		},
		{
			name: "endpoint change without a session",
			cur:  withPeers(PeerStatus{PublicKey: a, Endpoint: ap("203.0.113.5:4000"), AllowedIPs: peerA.AllowedIPs, Keepalive: 25}),
			want: cfg(wantA),
			set:  "public_key=" + a.hex() + "\nupdate_only=true\nendpoint=198.51.100.1:51820\n",
		},
		{
			name: "endpoint change with a stale session",
			cur: withPeers(PeerStatus{PublicKey: a, Endpoint: ap("203.0.113.5:4000"), AllowedIPs: peerA.AllowedIPs, Keepalive: 25,
				LastHandshake: now.Add(-RoamingGrace)}),
			want: cfg(wantA),
			set:  "public_key=" + a.hex() + "\nupdate_only=true\nendpoint=198.51.100.1:51820\n",
		},
		{
			name: "roamed endpoint with a live session is left alone",
			cur: withPeers(PeerStatus{PublicKey: a, Endpoint: ap("203.0.113.5:4000"), AllowedIPs: peerA.AllowedIPs, Keepalive: 25,
				LastHandshake: now.Add(-time.Minute)}),
			want: cfg(wantA),
		},
		{
			name: "IPv6 endpoint",
			cur:  base,
			want: cfg(Peer{PublicKey: b, Endpoint: ap("[2001:db8::1]:51820")}),
			set:  "public_key=" + b.hex() + "\nendpoint=[2001:db8::1]:51820\nreplace_allowed_ips=true\n",
		},
		{
			name: "IPv4-mapped wanted endpoint equals the unmapped one",
			cur:  withPeers(peerA),
			want: cfg(Peer{PublicKey: a, Endpoint: ap("[::ffff:198.51.100.1]:51820"), AllowedIPs: peerA.AllowedIPs, Keepalive: 25}),
		},
		{
			name: "no wanted endpoint leaves the learnt one",
			cur:  withPeers(PeerStatus{PublicKey: b, Endpoint: ap("203.0.113.5:4000")}),
			want: cfg(Peer{PublicKey: b}),
		},
		{
			name: "add, update and remove together",
			cur:  withPeers(peerA, PeerStatus{PublicKey: b}),
			want: cfg(Peer{PublicKey: c, AllowedIPs: pfxs("10.1.0.0/16")},
				Peer{PublicKey: a, Endpoint: peerA.Endpoint, Keepalive: 10, AllowedIPs: peerA.AllowedIPs}),
			set: "public_key=" + b.hex() + "\nremove=true\n" +
				"public_key=" + c.hex() + "\nreplace_allowed_ips=true\nallowed_ip=10.1.0.0/16\n" +
				"public_key=" + a.hex() + "\nupdate_only=true\npersistent_keepalive_interval=10\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Plan(tt.cur, tt.want)
			if diff := cmp.Diff(tt.set, got); diff != "" {
				t.Errorf("Plan (-want +got):\n%s", diff)
			}
			if strings.HasPrefix(got, "\n") || strings.Contains(got, "\n\n") || strings.Contains(got, "replace_peers") {
				t.Errorf("Plan output has a blank line or replace_peers:\n%s", got)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	priv := key(1)
	a, b, c := key(2).Public(), key(3).Public(), key(4).Public()
	tests := []struct {
		name    string
		cfg     Config
		err     string // a device-level fault: nothing is applied
		kept    []Key  // the peers left in
		dropped string // what the dropped peers' reasons contain
	}{
		{name: "good", cfg: Config{PrivateKey: priv, Peers: []Peer{{PublicKey: a}}}, kept: []Key{a}},
		{name: "no private key", cfg: Config{}, err: "no private key"},
		{name: "listen port", cfg: Config{PrivateKey: priv, ListenPort: 70000}, err: "listen port 70000 out of range"},
		{name: "no public key", cfg: Config{PrivateKey: priv, Peers: []Peer{{}, {PublicKey: a}}}, kept: []Key{a}, dropped: "no public key"},
		{name: "own key", cfg: Config{PrivateKey: priv, Peers: []Peer{{PublicKey: priv.Public()}, {PublicKey: a}}}, kept: []Key{a}, dropped: "own key"},
		{name: "a key two members claim drops both, keeps the rest",
			cfg: Config{PrivateKey: priv, Peers: []Peer{
				{PublicKey: a, AllowedIPs: pfxs("10.0.0.1/32")}, {PublicKey: b}, {PublicKey: a, AllowedIPs: pfxs("10.0.0.2/32")}}},
			kept: []Key{b}, dropped: "key listed 2 times"},
		{name: "keepalive", cfg: Config{PrivateKey: priv, Peers: []Peer{{PublicKey: a, Keepalive: -1}}}, dropped: "keepalive -1 out of range"},
		{name: "port 0", cfg: Config{PrivateKey: priv, Peers: []Peer{{PublicKey: a, Endpoint: ap("1.2.3.4:0")}}}, dropped: "has no port"},
		{name: "zone", cfg: Config{PrivateKey: priv, Peers: []Peer{
			{PublicKey: a, Endpoint: ap("[fe80::1%eth0]:5")}, {PublicKey: b, Endpoint: ap("192.0.2.1:5")}}},
			kept: []Key{b}, dropped: "IPv6 zone"},
		{name: "multicast endpoint", cfg: Config{PrivateKey: priv, Peers: []Peer{{PublicKey: a, Endpoint: ap("224.0.0.1:5")}}}, dropped: "not a unicast"},
		{name: "invalid allowed IP", cfg: Config{PrivateKey: priv, Peers: []Peer{{PublicKey: a, AllowedIPs: []netip.Prefix{{}}}}}, dropped: "invalid allowed IP"},
		{name: "an allowed IP two peers claim drops both",
			cfg: Config{PrivateKey: priv, Peers: []Peer{
				{PublicKey: a, AllowedIPs: pfxs("10.0.0.0/8")},
				{PublicKey: b, AllowedIPs: pfxs("10.1.2.3/8")},
				{PublicKey: c, AllowedIPs: pfxs("10.0.0.0/16")}}},
			kept: []Key{c}, dropped: "allowed IP 10.0.0.0/8 is claimed by 2 peers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, dropped, err := check(tt.cfg)
			if (tt.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("check = %v, want %q", err, tt.err)
			}
			if err != nil {
				return
			}
			var kept []Key
			for _, p := range got.Peers {
				kept = append(kept, p.PublicKey)
			}
			if !slices.Equal(kept, tt.kept) {
				t.Errorf("kept %v, want %v", kept, tt.kept)
			}
			if len(kept)+len(dropped) != len(tt.cfg.Peers) {
				t.Errorf("%d kept + %d dropped of %d peers", len(kept), len(dropped), len(tt.cfg.Peers))
			}
			for _, d := range dropped {
				if !strings.Contains(d.Reason, tt.dropped) {
					t.Errorf("dropped %s: %q, want %q", d.PublicKey, d.Reason, tt.dropped)
				}
			}
			if tt.dropped != "" && len(dropped) == 0 {
				t.Errorf("nothing dropped, want %q", tt.dropped)
			}
		})
	}
}

// An endpoint's zone is attacker text (a member's report, through the
// controller): it never reaches the UAPI, even if Plan is called on an
// unchecked config.
func TestAttackPlanRendersNoZone(t *testing.T) {
	priv := key(1)
	a := key(2).Public()
	evil := netip.MustParseAddr("fe80::1").WithZone("x\nallowed_ip=0.0.0.0/0\nendpoint=203.0.113.66:1")
	ep := netip.AddrPortFrom(evil, 5)
	for _, cur := range []Status{{PublicKey: priv.Public()}, {PublicKey: priv.Public(), Peers: []PeerStatus{{PublicKey: a}}}} {
		set := Plan(cur, Config{PrivateKey: priv, Peers: []Peer{{PublicKey: a, Endpoint: ep}}})
		if !strings.Contains(set, "endpoint=[fe80::1]:5\n") || strings.Contains(set, "allowed_ip=0.0.0.0/0") || strings.Count(set, "endpoint=") != 1 {
			t.Errorf("Plan with a zoned endpoint:\n%s", set)
		}
	}
	if _, dropped, _ := check(Config{PrivateKey: priv, Peers: []Peer{{PublicKey: a, Endpoint: ep}}}); len(dropped) != 1 {
		t.Errorf("check kept a peer whose endpoint has a zone")
	}
}

func TestParseStatus(t *testing.T) {
	priv := key(1)
	a, b := key(2).Public(), key(3).Public()
	// As wireguard-go's IpcGetOperation writes it.
	text := "private_key=" + priv.hex() + "\nlisten_port=51820\nfwmark=51\n" +
		"public_key=" + a.hex() + "\npreshared_key=" + (Key{}).hex() + "\nprotocol_version=1\n" +
		"endpoint=198.51.100.1:51820\nlast_handshake_time_sec=1700000000\nlast_handshake_time_nsec=5\n" +
		"tx_bytes=1000\nrx_bytes=2000\npersistent_keepalive_interval=25\n" +
		"allowed_ip=192.168.254.11/32\nallowed_ip=172.16.0.0/16\n" +
		"public_key=" + b.hex() + "\npreshared_key=" + (Key{}).hex() + "\nprotocol_version=1\n" +
		"endpoint=[::ffff:192.0.2.1]:7\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\n" +
		"tx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\n"
	now := time.Unix(1_700_000_100, 0)
	got, err := parseStatus(text, now)
	if err != nil {
		t.Fatal(err)
	}
	want := Status{
		PublicKey:  priv.Public(),
		ListenPort: 51820,
		Observed:   now,
		Peers: []PeerStatus{
			{PublicKey: a, Endpoint: ap("198.51.100.1:51820"), AllowedIPs: pfxs("192.168.254.11/32", "172.16.0.0/16"),
				Keepalive: 25, LastHandshake: time.Unix(1_700_000_000, 5), TxBytes: 1000, RxBytes: 2000},
			{PublicKey: b, Endpoint: ap("192.0.2.1:7")},
		},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(x, y netip.Prefix) bool { return x == y }),
		cmp.Comparer(func(x, y netip.AddrPort) bool { return x == y })); diff != "" {
		t.Errorf("parseStatus (-want +got):\n%s", diff)
	}
	// The parsed status of a configured device plans to nothing.
	cfg := Config{PrivateKey: priv, ListenPort: 51820, Peers: []Peer{
		{PublicKey: a, Endpoint: ap("198.51.100.1:51820"), AllowedIPs: pfxs("172.16.0.0/16", "192.168.254.11/32"), Keepalive: 25},
		{PublicKey: b, Endpoint: ap("192.0.2.1:7")},
	}}
	if set := Plan(got, cfg); set != "" {
		t.Errorf("Plan(parsed, cfg) = %q, want nothing", set)
	}

	for _, bad := range []string{"listen_port\n", "listen_port=x\n", "allowed_ip=1.2.3.4/32\n", "public_key=zz\n",
		"public_key=" + a.hex() + "\nendpoint=nope\n", "public_key=" + a.hex() + "\nnew_key=1\n"} {
		if _, err := parseStatus(bad, now); err == nil {
			t.Errorf("parseStatus(%q) succeeded", bad)
		}
	}
}
