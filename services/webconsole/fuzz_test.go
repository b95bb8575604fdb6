package webconsole

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"unicode"

	"github.com/gatenet/gate/services/cloud"
	"github.com/gatenet/gate/services/control"
)

// Whatever next a sign-in brings, the browser is sent to a path on this
// console: read as a browser reads a Location (tabs and newlines
// dropped, backslashes as slashes), it keeps the console's scheme and host.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/networks", "/n/0123456789abcdef?x=1", "//evil", "/\t/evil", "/\\evil", "https://evil/", "javascript:alert(1)", "/%2f%2fevil", "/@evil", "", "/a\r\nb"} {
		f.Add(s)
	}
	base, _ := url.Parse("http://127.0.0.1:8444/signin")
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if got != next && got != "/networks" {
			t.Fatalf("safeNext(%q) = %q: neither it nor home", next, got)
		}
		if strings.ContainsFunc(got, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
			t.Fatalf("safeNext(%q) = %q holds what a browser rewrites", next, got)
		}
		to, err := base.Parse(got)
		if err != nil || to.Scheme != base.Scheme || to.Host != base.Host {
			t.Fatalf("safeNext(%q) = %q leads to %v (%v)", next, got, to, err)
		}
	})
}

// A form refilled after a refusal holds no unprintable character.
func FuzzPrintableOnly(f *testing.F) {
	f.Add("name", "<script>\x1b[31m\u202e")
	f.Fuzz(func(t *testing.T, k, v string) {
		out := printableOnly(url.Values{k: {v}})
		for _, r := range out.Get(k) {
			if r != ' ' && r != '\n' && r != '\t' && !unicode.IsPrint(r) {
				t.Fatalf("printableOnly(%q) kept %U", v, r)
			}
		}
	})
}

// The user-data the tokens page hands out parses, as the appliance
// parses it, to a join with the token, whatever the token's join string
// and the subnets typed.
func FuzzUserData(f *testing.F) {
	f.Add("gate://203.0.113.5:8443/d363b4e9bd3d6aa8?pin=sha256:ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12&token=s3cr3t", "172.16.0.0/16", true)
	f.Fuzz(func(t *testing.T, join, serve string, aws bool) {
		if _, err := control.ParseJoinString(join); err != nil {
			return // the controller makes only join strings that parse
		}
		var prefixes []netip.Prefix
		for _, s := range splitList(serve) {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return // the page refuses it before
			}
			prefixes = append(prefixes, p.Masked())
		}
		text := userData(control.Token{JoinString: join}, prefixes, aws)
		ud, err := cloud.ParseUserData("fuzz", []byte(text))
		if err != nil {
			// A subnet the appliance refuses (a bad serve list) is an
			// error naming it, never a different join.
			return
		}
		if ud.Layer == nil || len(ud.Layer.Config.Networks) != 1 || ud.Layer.Config.Networks[0].Join != join {
			t.Fatalf("user-data for %q does not join with it:\n%s", join, text)
		}
	})
}
