package webconsole

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/gatenet/gate/services/cloud"
	"github.com/gatenet/gate/services/control"
)

// The user-data the tokens page hands out is what the appliance reads:
// parsed by the same code, it joins with the token and serves what was
// asked.
func TestUserData(t *testing.T) {
	join := "gate://203.0.113.5:8443/d363b4e9bd3d6aa8?pin=sha256:" + "ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12" + "&token=s3cr3t"
	tok := control.Token{JoinString: join, Address: netip.MustParseAddr("192.168.254.11")}
	for _, tc := range []struct {
		name       string
		serve      []netip.Prefix
		aws        bool
		masquerade bool
	}{
		{"droplet", nil, false, false},
		{"aws", nil, true, false},
		{"droplet gateway", []netip.Prefix{netip.MustParsePrefix("10.10.0.0/16")}, false, false},
		{"aws gateway", []netip.Prefix{netip.MustParsePrefix("172.16.0.0/16")}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := userData(tok, tc.serve, tc.aws)
			ud, err := cloud.ParseUserData("test", []byte(text))
			if err != nil {
				t.Fatalf("%v\n%s", err, text)
			}
			if ud.Layer == nil || len(ud.Notes) != 0 {
				t.Fatalf("layer %v, notes %v\n%s", ud.Layer, ud.Notes, text)
			}
			nets := ud.Layer.Config.Networks
			if len(nets) != 1 || nets[0].Join != join || nets[0].Address != tok.Address {
				t.Fatalf("networks %+v\n%s", nets, text)
			}
			g := nets[0].Gateway
			switch {
			case len(tc.serve) == 0 && g != nil:
				t.Errorf("gateway %+v without serve", g)
			case len(tc.serve) > 0 && (g == nil || !slices.Equal(g.Serve, tc.serve) || g.MasqueradeInternet != tc.masquerade):
				t.Errorf("gateway %+v, want serve %v masquerade %v", g, tc.serve, tc.masquerade)
			}
		})
	}
}
