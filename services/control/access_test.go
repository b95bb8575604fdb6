package control

import (
	"strings"
	"testing"
	"time"
)

func TestRoles(t *testing.T) {
	for _, tc := range []struct {
		r, o Role
		want bool
	}{
		{RoleAdmin, RoleOperator, true}, {RoleAdmin, RoleViewer, true}, {RoleOperator, RoleViewer, true}, {RoleViewer, RoleViewer, true},
		{RoleViewer, RoleOperator, false}, {RoleOperator, RoleAdmin, false},
		{"", "", false}, {"root", RoleViewer, false}, {"Admin", RoleViewer, false},
	} {
		if got := tc.r.Includes(tc.o); got != tc.want {
			t.Errorf("%q.Includes(%q) = %v", tc.r, tc.o, got)
		}
	}
	for _, s := range []string{"viewer", "operator", "admin"} {
		if r, err := ParseRole(s); err != nil || string(r) != s {
			t.Errorf("ParseRole(%q) = %q, %v", s, r, err)
		}
	}
	if _, err := ParseRole("ADMIN\x1b[2J" + strings.Repeat("x", 100)); err == nil || strings.Contains(err.Error(), "\x1b") || len(err.Error()) > 120 {
		t.Errorf("ParseRole of garbage: %v", err)
	}
}

func TestScopeAndState(t *testing.T) {
	s := Scope{Networks: []string{"0123456789abcdef"}}
	if !s.Has("0123456789abcdef") || s.Has("fedcba9876543210") || s.String() != "0123456789abcdef" {
		t.Errorf("scope %+v", s)
	}
	if all := (Scope{Controller: true}); !all.Has("fedcba9876543210") || all.String() != "controller" {
		t.Errorf("whole scope %+v", all)
	}
	now := time.Now()
	for _, tc := range []struct {
		t    AdminToken
		want string
	}{
		{AdminToken{}, "active"},
		{AdminToken{Expires: now.Add(time.Second)}, "active"},
		{AdminToken{Expires: now}, "expired"},
		{AdminToken{Expires: now.Add(time.Hour), Revoked: now.Add(-time.Hour)}, "revoked"},
	} {
		if got := tc.t.State(now); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.t, got, tc.want)
		}
	}
}

// TestAdminTokenNotAJoinToken: an admin token is refused wherever a join
// token is taken, for what it is, and never echoed.
func TestAdminTokenNotAJoinToken(t *testing.T) {
	tok := AdminTokenPrefix + "0123456789abcdef_" + strings.Repeat("Ab-_", 10) + "xyz"
	if _, _, ok := SplitAdminToken(tok); !ok {
		t.Fatalf("%q is not an admin token", tok)
	}
	err := CheckTokenSecret(tok)
	if err == nil || !strings.Contains(err.Error(), "this is an admin token") || strings.Contains(err.Error(), tok) {
		t.Errorf("CheckTokenSecret(admin token): %v", err)
	}
	js := "gate://192.0.2.1:8443/0123456789abcdef?pin=sha256:" + strings.Repeat("ab", 32) + "&token=" + tok
	if _, err := ParseJoinString(js); err == nil || !strings.Contains(err.Error(), "this is an admin token") {
		t.Errorf("a join string with an admin token: %v", err)
	}
}

func FuzzSplitAdminToken(f *testing.F) {
	f.Add(AdminTokenPrefix + "0123456789abcdef_" + strings.Repeat("a", 43))
	f.Add(AdminTokenPrefix + "0123456789ABCDEF_" + strings.Repeat("a", 43))
	f.Add(AdminTokenPrefix + "0123456789abcdef_" + strings.Repeat("a", 42) + "\x00")
	f.Add("gate_admin_")
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, ok := SplitAdminToken(s)
		if !ok {
			if id != "" || secret != "" {
				t.Fatalf("%q: not a token, yet %q, %q", s, id, secret)
			}
			return
		}
		if AdminTokenPrefix+id+"_"+secret != s || len(id) != 16 || len(secret) != 43 || !isLowerHex(id) {
			t.Fatalf("%q split into %q, %q", s, id, secret)
		}
		if CheckTokenSecret(s) == nil {
			t.Fatalf("%q passes as a join token", s)
		}
	})
}
