package controller

import (
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatenet/gate/services/control"
	"github.com/gatenet/gate/services/policy"
)

// The fuzz targets feed arbitrary bodies to the decoder and the checks of
// each request type: whatever comes in, they must answer an error or a
// value, never panic, and an accepted value must pass its checks again.

func FuzzCreateNetworkRequest(f *testing.F) {
	f.Add([]byte(`{"name":"seed","cidr":"192.168.254.0/24","mtu":1420,"auto_allow":true}`))
	f.Add([]byte(`{"name":"x","cidr":"192.168.254.1/24"}`))
	f.Add([]byte(`{"name":"\u0007","cidr":"fd00::/64","mtu":-1}`))
	f.Add([]byte(`{"cidr":7}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var req control.CreateNetworkRequest
		if decodeBody(b, &req) != nil {
			return
		}
		got, err := checkCreateNetwork(req)
		if err != nil {
			return
		}
		if _, err := checkCreateNetwork(got); err != nil {
			t.Fatalf("accepted %+v, then refused it: %v", got, err)
		}
		if got.CIDR.Masked() != got.CIDR || !got.CIDR.Addr().Is4() {
			t.Fatalf("accepted bad cidr %s", got.CIDR)
		}
	})
}

func FuzzRoute(f *testing.F) {
	f.Add([]byte(`{"dest":"172.16.0.0/16","via":"192.168.254.11"}`))
	f.Add([]byte(`{"dest":"0.0.0.0/0","via":"192.168.254.0"}`))
	f.Add([]byte(`{"dest":"fd00::/8","via":"::1"}`))
	f.Add([]byte(`{"dest":"172.16.0.0/16","via":"192.168.254.11","extra":1}`))
	cidr := netip.MustParsePrefix("192.168.254.0/24")
	existing := []control.Route{{Dest: netip.MustParsePrefix("10.0.0.0/8"), Via: netip.MustParseAddr("192.168.254.1")}}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r control.Route
		if decodeBody(b, &r) != nil {
			return
		}
		if checkRoute(cidr, existing, r) != nil {
			return
		}
		if r.Dest.Overlaps(cidr) || !cidr.Contains(r.Via) || r.Dest == existing[0].Dest {
			t.Fatalf("accepted bad route %+v", r)
		}
	})
}

func FuzzJoinRequest(f *testing.F) {
	f.Add([]byte(`{"public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","hostname":"h","listen_port":51820,"endpoints":["1.2.3.4:5"]}`))
	f.Add([]byte(`{"token":"abcdefghijklmnopqrstuvwxyz","public_key":"x","listen_port":0,"requested_address":"192.168.254.11"}`))
	f.Add([]byte(`{"endpoints":["[::1]:0","0.0.0.0:1"],"requested_address":"fd00::1"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var req control.JoinRequest
		if decodeBody(b, &req) != nil {
			return
		}
		got, err := checkJoin(req)
		if err != nil {
			return
		}
		if _, err := checkJoin(got); err != nil {
			t.Fatalf("accepted %+v, then refused it: %v", got, err)
		}
	})
}

func FuzzSyncRequest(f *testing.F) {
	f.Add([]byte(`{"since":3,"wait":"25s","listen_port":51820,"endpoints":[]}`))
	f.Add([]byte(`{"since":-1,"wait":1e300}`))
	f.Add([]byte(`{"wait":"-5s","endpoints":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var req control.SyncRequest
		if decodeBody(b, &req) != nil {
			return
		}
		got, err := checkSync(req)
		if err != nil {
			return
		}
		if w := got.Wait; w <= 0 || w > control.Duration(control.MaxSyncWait) {
			t.Fatalf("accepted wait %v", w)
		}
	})
}

func FuzzSetRulesRequest(f *testing.F) {
	f.Add([]byte(`{"rules":["allow from tag:web to tag:db on tcp/5432","deny from any to 172.16.0.0/16 on tcp/22"]}`))
	f.Add([]byte(`{"rules":["allow form any to any"]}`))
	f.Add([]byte(`{"rules":[7],"revision":-1}`))
	f.Add([]byte(`{"rules":["allow from any to any # \u001b[2J"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var req control.SetRulesRequest
		if decodeBody(b, &req) != nil {
			return
		}
		// What decodes re-renders to rules that decode to the same.
		for _, r := range req.Rules {
			again, err := policy.ParseRule(r.String())
			if err != nil || !again.Equal(r) {
				t.Fatalf("rule %q decoded, then %q re-read as %q, %v", b, r, again, err)
			}
		}
	})
}

func FuzzSetTagsRequest(f *testing.F) {
	f.Add([]byte(`{"tags":["web","prod"]}`))
	f.Add([]byte(`{"tags":["Web","9x","a-"]}`))
	f.Add([]byte(`{"tags":"web"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var req control.SetTagsRequest
		if decodeBody(b, &req) != nil {
			return
		}
		got, err := checkTags(req.Tags)
		if err != nil {
			return
		}
		if again, err := checkTags(got); err != nil || !slices.Equal(again, got) {
			t.Fatalf("accepted %q as %q, then %q, %v", req.Tags, got, again, err)
		}
		if _, err := parseTags(tagsText(got)); err != nil {
			t.Fatalf("accepted %q, which does not read back: %v", got, err)
		}
	})
}

func FuzzCreateAdminTokenRequest(f *testing.F) {
	f.Add([]byte(`{"name":"alice","role":"operator","scope":{"networks":["0123456789ABCDEF","0123456789abcdef"]},"expires_in":"720h"}`))
	f.Add([]byte(`{"name":"ci","role":"viewer","scope":{"controller":true}}`))
	f.Add([]byte(`{"name":"\u001b[2J","role":"root","scope":{"controller":true,"networks":["x"]},"expires_in":-1}`))
	f.Add([]byte(`{"name":"x","role":"admin","scope":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var req control.CreateAdminTokenRequest
		if decodeBody(b, &req) != nil {
			return
		}
		got, err := checkCreateAdminToken(req)
		if err != nil {
			if len(err.Error()) > 4096 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			return
		}
		if again, err := checkCreateAdminToken(got); err != nil || !slices.Equal(again.Scope.Networks, got.Scope.Networks) {
			t.Fatalf("accepted %+v, then %+v, %v", got, again, err)
		}
		if got.Scope.Controller == (len(got.Scope.Networks) > 0) || !got.Role.Includes(control.RoleViewer) {
			t.Fatalf("accepted scope %+v, role %q", got.Scope, got.Role)
		}
		for _, r := range got.Name {
			if r < ' ' || r == 0x7f {
				t.Fatalf("accepted name %q", got.Name)
			}
		}
		// As stored, read back.
		rec := adminTokenRec{ID: "0123456789abcdef", Name: got.Name, Role: got.Role, Scope: got.Scope}
		if n := splitList(strings.Join(rec.Scope.Networks, ",")); !slices.Equal(n, got.Scope.Networks) {
			t.Fatalf("networks %q read back as %q", got.Scope.Networks, n)
		}
	})
}

func FuzzAuditQuery(f *testing.F) {
	f.Add("since=2025-01-02T15:04:05Z&before=2025-01-03T00:00:00.5%2B01:00&network=0123456789ABCDEF&limit=5")
	f.Add("limit=0&since=yesterday")
	f.Add("network=%1b%5B2J&limit=99999999999999999999")
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := parseAuditQuery(v)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\x00\x1b\n") || len(err.Error()) > 512 {
				t.Fatalf("error %q", err)
			}
			return
		}
		if q.Limit < 1 || q.Limit > control.MaxAuditLimit || q.NetworkID != "" && control.CheckNetworkID(q.NetworkID) != nil {
			t.Fatalf("accepted %+v", q)
		}
		for _, tm := range []time.Time{q.Since, q.Before} {
			if !tm.IsZero() && tm.UnixNano()/1e9 != tm.Unix() {
				t.Fatalf("accepted a time out of nanosecond range: %v", tm)
			}
		}
	})
}
