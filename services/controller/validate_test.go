package controller

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatenet/gate/services/control"
)

// wantErr checks err against a wanted substring ("" means no error).
func wantErr(t *testing.T, what string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: unexpected error %v", what, err)
	case want != "" && err == nil:
		t.Errorf("%s: no error, want one containing %q", what, want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("%s: error %q does not contain %q", what, err, want)
	}
}

func TestCheckCIDR(t *testing.T) {
	for _, tc := range []struct {
		cidr string
		want string
	}{
		{"192.168.254.0/24", ""},
		{"10.0.0.0/8", ""},
		{"10.0.0.0/30", ""},
		{"192.168.254.1/24", "cidr 192.168.254.1/24 is not a network address; did you mean 192.168.254.0/24?"},
		{"10.0.0.0/7", "prefix length must be 8 to 30, got /7"},
		{"10.0.0.0/31", "prefix length must be 8 to 30"},
		{"10.0.0.1/32", "prefix length must be 8 to 30, got /32"},
		{"10.0.0.1/30", "did you mean 10.0.0.0/30?"},
		{"fd00::/64", "IPv6 networks are not supported yet"},
		{"::ffff:10.0.0.0/104", "plain IPv4"},
		{"", "missing"},
	} {
		var p netip.Prefix
		if tc.cidr != "" {
			p = netip.MustParsePrefix(tc.cidr)
		}
		wantErr(t, tc.cidr, checkCIDR(p), tc.want)
	}
}

func TestCheckCreateNetwork(t *testing.T) {
	cidr := netip.MustParsePrefix("192.168.254.0/24")
	for _, tc := range []struct {
		name    string
		req     control.CreateNetworkRequest
		want    string
		wantMTU int
	}{
		{"defaults", control.CreateNetworkRequest{Name: "seed", CIDR: cidr}, "", control.DefaultMTU},
		{"mtu", control.CreateNetworkRequest{Name: "seed", CIDR: cidr, MTU: 1280}, "", 1280},
		{"mtu max", control.CreateNetworkRequest{Name: "seed", CIDR: cidr, MTU: 9000}, "", 9000},
		{"mtu low", control.CreateNetworkRequest{Name: "seed", CIDR: cidr, MTU: 1279}, "mtu 1279: must be 1280 to 9000", 0},
		{"mtu high", control.CreateNetworkRequest{Name: "seed", CIDR: cidr, MTU: 9001}, "mtu 9001", 0},
		{"mtu negative", control.CreateNetworkRequest{Name: "seed", CIDR: cidr, MTU: -1}, "mtu -1", 0},
		{"no name", control.CreateNetworkRequest{CIDR: cidr}, "name", 0},
		{"long name", control.CreateNetworkRequest{Name: strings.Repeat("n", 65), CIDR: cidr}, "1 to 64 characters", 0},
		{"64 chars", control.CreateNetworkRequest{Name: strings.Repeat("é", 64), CIDR: cidr}, "", control.DefaultMTU},
		{"control char", control.CreateNetworkRequest{Name: "a\x07b", CIDR: cidr}, "unprintable", 0},
		{"bad utf8", control.CreateNetworkRequest{Name: "a\xffb", CIDR: cidr}, "UTF-8", 0},
		{"spaces", control.CreateNetworkRequest{Name: " seed", CIDR: cidr}, "must not start or end with a space", 0},
		{"no cidr", control.CreateNetworkRequest{Name: "seed"}, "cidr is missing", 0},
	} {
		got, err := checkCreateNetwork(tc.req)
		wantErr(t, tc.name, err, tc.want)
		if err == nil && got.MTU != tc.wantMTU {
			t.Errorf("%s: mtu %d, want %d", tc.name, got.MTU, tc.wantMTU)
		}
		if err != nil && statusOf(err) != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", tc.name, statusOf(err))
		}
	}
}

func TestCheckRoute(t *testing.T) {
	cidr := netip.MustParsePrefix("192.168.254.0/24")
	existing := []control.Route{{Dest: netip.MustParsePrefix("172.16.0.0/16"), Via: netip.MustParseAddr("192.168.254.11")}}
	for _, tc := range []struct {
		dest, via string
		want      string
	}{
		{"10.10.0.0/16", "192.168.254.11", ""},
		{"172.16.10.0/24", "192.168.254.12", ""}, // more specific than an existing route: fine
		{"172.16.0.0/16", "192.168.254.12", "a route to 172.16.0.0/16 already exists (via 192.168.254.11)"},
		{"172.16.1.0/16", "192.168.254.11", "route dest 172.16.1.0/16 is not a network address; did you mean 172.16.0.0/16?"},
		{"192.168.254.128/25", "192.168.254.11", "overlaps the network's own CIDR 192.168.254.0/24"},
		{"192.168.0.0/16", "192.168.254.11", "overlaps the network's own CIDR"},
		{"0.0.0.0/0", "192.168.254.11", "overlaps"},
		{"169.254.169.254/32", "192.168.254.11", "is inside 169.254.0.0/16"},
		{"127.0.0.0/24", "192.168.254.11", "is inside 127.0.0.0/8"},
		{"224.0.0.0/8", "192.168.254.11", "is inside 224.0.0.0/4"},
		{"10.10.0.0/16", "192.168.253.11", "route via 192.168.253.11 is outside the network 192.168.254.0/24"},
		{"10.10.0.0/16", "192.168.254.0", "route via 192.168.254.0 is the network address"},
		{"10.10.0.0/16", "192.168.254.255", "route via 192.168.254.255 is the broadcast address"},
		{"10.10.0.0/16", "", "route via is missing"},
		{"fd00::/64", "192.168.254.11", "IPv6"},
		{"10.10.0.0/16", "fd00::1", "only IPv4"},
		{"", "192.168.254.11", "route dest is missing"},
	} {
		var r control.Route
		if tc.dest != "" {
			r.Dest = netip.MustParsePrefix(tc.dest)
		}
		if tc.via != "" {
			r.Via = netip.MustParseAddr(tc.via)
		}
		wantErr(t, tc.dest+" via "+tc.via, checkRoute(cidr, existing, r), tc.want)
	}
}

func TestCheckFree(t *testing.T) {
	cidr := netip.MustParsePrefix("192.168.254.0/24")
	used := map[netip.Addr]string{netip.MustParseAddr("192.168.254.11"): "9788637428"}
	for _, tc := range []struct {
		addr string
		want string
	}{
		{"192.168.254.12", ""},
		{"192.168.254.1", ""},
		{"192.168.254.254", ""},
		{"192.168.254.11", "192.168.254.11 is already assigned to member 9788637428"},
		{"192.168.254.0", "is the network address of 192.168.254.0/24"},
		{"192.168.254.255", "is the broadcast address of 192.168.254.0/24"},
		{"192.168.255.1", "is outside the network 192.168.254.0/24"},
		{"fd00::1", "only IPv4"},
		{"", "missing"},
	} {
		var a netip.Addr
		if tc.addr != "" {
			a = netip.MustParseAddr(tc.addr)
		}
		wantErr(t, tc.addr, checkFree("address", cidr, taken{members: used}, a), tc.want)
	}
}

func TestCheckJoinAndSync(t *testing.T) {
	key := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	ep := netip.MustParseAddrPort("203.0.113.5:51820")
	ok := control.JoinRequest{PublicKey: key, Hostname: "gate-1", ListenPort: 51820, Endpoints: []netip.AddrPort{ep}}
	many := make([]netip.AddrPort, 17)
	for i := range many {
		many[i] = ep
	}
	mod := func(f func(*control.JoinRequest)) control.JoinRequest { r := ok; f(&r); return r }
	for _, tc := range []struct {
		name string
		req  control.JoinRequest
		want string
	}{
		{"ok", ok, ""},
		{"no key", mod(func(r *control.JoinRequest) { r.PublicKey = "" }), "public_key is missing"},
		{"short key", mod(func(r *control.JoinRequest) { r.PublicKey = "AAAA" }), "want base64 of 32 bytes"},
		{"bad key", mod(func(r *control.JoinRequest) { r.PublicKey = "!!" }), "public_key"},
		{"port 0", mod(func(r *control.JoinRequest) { r.ListenPort = 0 }), "listen_port 0"},
		{"port high", mod(func(r *control.JoinRequest) { r.ListenPort = 65536 }), "listen_port 65536"},
		{"hostname", mod(func(r *control.JoinRequest) { r.Hostname = strings.Repeat("h", 65) }), "hostname"},
		{"17 endpoints", mod(func(r *control.JoinRequest) { r.Endpoints = many }), "at most 16"},
		{"port 0 endpoint", mod(func(r *control.JoinRequest) {
			r.Endpoints = []netip.AddrPort{netip.MustParseAddrPort("203.0.113.5:0")}
		}), "port 0"},
		{"unspecified endpoint", mod(func(r *control.JoinRequest) {
			r.Endpoints = []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:1")}
		}), "not a unicast"},
		{"zoned endpoint", mod(func(r *control.JoinRequest) {
			r.Endpoints = []netip.AddrPort{netip.MustParseAddrPort("[fe80::1%x]:5")}
		}), "endpoints[0]: an IPv6 zone"},
		{"zone on a global address", mod(func(r *control.JoinRequest) {
			r.Endpoints = []netip.AddrPort{netip.MustParseAddrPort("203.0.113.5:7"), netip.MustParseAddrPort("[2001:db8::1%eth0]:5")}
		}), "endpoints[1]: an IPv6 zone"},
		{"multicast endpoint", mod(func(r *control.JoinRequest) {
			r.Endpoints = []netip.AddrPort{netip.MustParseAddrPort("[ff02::1]:5")}
		}), "not a unicast"},
		{"broadcast endpoint", mod(func(r *control.JoinRequest) {
			r.Endpoints = []netip.AddrPort{netip.MustParseAddrPort("255.255.255.255:5")}
		}), "not a unicast"},
		{"metadata endpoint", mod(func(r *control.JoinRequest) {
			r.Endpoints = []netip.AddrPort{netip.MustParseAddrPort("169.254.169.254:80")}
		}), "link-local"},
		{"v6 request", mod(func(r *control.JoinRequest) { r.RequestedAddress = netip.MustParseAddr("fd00::1") }), "only IPv4"},
		{"bad token", mod(func(r *control.JoinRequest) { r.Token = "short" }), "token"},
	} {
		_, err := checkJoin(tc.req)
		wantErr(t, tc.name, err, tc.want)
	}

	for _, tc := range []struct {
		name     string
		req      control.SyncRequest
		want     string
		wantWait time.Duration
	}{
		{"empty", control.SyncRequest{}, "", 25 * time.Second},
		{"wait", control.SyncRequest{Wait: control.Duration(time.Second)}, "", time.Second},
		{"long wait", control.SyncRequest{Wait: control.Duration(time.Hour)}, "", control.MaxSyncWait},
		{"negative wait", control.SyncRequest{Wait: -1}, "must not be negative", 0},
		{"bad key", control.SyncRequest{PublicKey: "x"}, "public_key", 0},
		{"bad port", control.SyncRequest{ListenPort: -5}, "listen_port -5", 0},
		{"too many", control.SyncRequest{Endpoints: many}, "at most 16", 0},
	} {
		got, err := checkSync(tc.req)
		wantErr(t, tc.name, err, tc.want)
		if err == nil && time.Duration(got.Wait) != tc.wantWait {
			t.Errorf("%s: wait %v, want %v", tc.name, time.Duration(got.Wait), tc.wantWait)
		}
	}
}

func TestCheckCreateToken(t *testing.T) {
	for _, tc := range []struct {
		name    string
		req     control.CreateTokenRequest
		want    string
		wantExp time.Duration
	}{
		{"default", control.CreateTokenRequest{}, "", control.DefaultTokenLifetime},
		{"hour", control.CreateTokenRequest{ExpiresIn: control.Duration(time.Hour)}, "", time.Hour},
		{"year", control.CreateTokenRequest{ExpiresIn: control.Duration(365 * 24 * time.Hour)}, "", 365 * 24 * time.Hour},
		{"too long", control.CreateTokenRequest{ExpiresIn: control.Duration(366 * 24 * time.Hour)}, "at most", 0},
		{"negative", control.CreateTokenRequest{ExpiresIn: -1}, "must be positive", 0},
		{"note", control.CreateTokenRequest{Note: strings.Repeat("x", 257)}, "note", 0},
	} {
		got, err := checkCreateToken(tc.req)
		wantErr(t, tc.name, err, tc.want)
		if err == nil && time.Duration(got.ExpiresIn) != tc.wantExp {
			t.Errorf("%s: expires_in %v, want %v", tc.name, time.Duration(got.ExpiresIn), tc.wantExp)
		}
	}
}

func TestCheckTokenUse(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tok := tokenRec{NetworkID: "aaaaaaaaaaaaaaaa", Expires: now.Add(time.Hour)}
	mod := func(f func(*tokenRec)) tokenRec { t := tok; f(&t); return t }
	for _, tc := range []struct {
		name string
		tok  tokenRec
		net  string
		node string
		want string
	}{
		{"fresh", tok, "aaaaaaaaaaaaaaaa", "1111111111", ""},
		{"other network", tok, "bbbbbbbbbbbbbbbb", "1111111111", "not valid for network bbbbbbbbbbbbbbbb"},
		{"expired", mod(func(t *tokenRec) { t.Expires = now }), "aaaaaaaaaaaaaaaa", "1111111111", "join token expired"},
		{"used", mod(func(t *tokenRec) { t.Uses, t.UsedBy = 1, "2222222222" }), "aaaaaaaaaaaaaaaa", "1111111111", "join token already used"},
		{"used by self", mod(func(t *tokenRec) { t.Uses, t.UsedBy = 1, "1111111111" }), "aaaaaaaaaaaaaaaa", "1111111111", ""},
		{"reusable", mod(func(t *tokenRec) { t.Reusable, t.Uses, t.UsedBy = true, 5, "2222222222" }), "aaaaaaaaaaaaaaaa", "1111111111", ""},
	} {
		err := checkTokenUse(tc.tok, tc.net, memberRef{node: tc.node}, now)
		wantErr(t, tc.name, err, tc.want)
		if err != nil && statusOf(err) != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", tc.name, statusOf(err))
		}
	}
}

func TestBroadcast(t *testing.T) {
	for _, tc := range []struct{ cidr, want string }{
		{"192.168.254.0/24", "192.168.254.255"},
		{"10.0.0.0/8", "10.255.255.255"},
		{"10.0.0.4/30", "10.0.0.7"},
		{"172.16.0.0/12", "172.31.255.255"},
	} {
		if got := broadcast(netip.MustParsePrefix(tc.cidr)); got.String() != tc.want {
			t.Errorf("broadcast(%s) = %s, want %s", tc.cidr, got, tc.want)
		}
	}
}

type codeErr int

func (c codeErr) Error() string { return fmt.Sprintf("sqlite error %d", int(c)) }
func (c codeErr) Code() int     { return int(c) }

type stateErr string

func (s stateErr) Error() string    { return "postgres error " + string(s) }
func (s stateErr) SQLState() string { return string(s) }

func TestDiskFull(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("commit: %w", codeErr(13)), true},        // SQLITE_FULL
		{fmt.Errorf("write: %w", codeErr(13|(1<<8))), true},  // an extended code of it
		{fmt.Errorf("sync: %w", syscall.ENOSPC), true},       // the file system
		{fmt.Errorf("commit: %w", codeErr(5)), false},        // SQLITE_BUSY
		{fmt.Errorf("commit: %w", stateErr("53100")), true},  // PostgreSQL's disk_full
		{fmt.Errorf("insert: %w", stateErr("23505")), false}, // unique_violation
		{errors.New("database or disk is full"), false},      // only the words
	} {
		if got := diskFull(tc.err); got != tc.want {
			t.Errorf("diskFull(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
