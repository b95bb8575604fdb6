package webconsole_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"testing"

	"github.com/gatenet/gate/services/control"
)

// BenchmarkMembersPage is the members page of a network of N members as
// a live page fetches it at each change: the API's member list read in
// process, filtered, sorted and one page of it rendered.
//
//	go test -run '^$' -bench MembersPage -benchtime 50x ./services/webconsole/
func BenchmarkMembersPage(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			c := startConsole(b)
			ctx := context.Background()
			nw, err := c.admin.CreateNetwork(ctx, control.CreateNetworkRequest{Name: "big", CIDR: netip.MustParsePrefix("10.0.0.0/16"), AutoAllow: true})
			if err != nil {
				b.Fatal(err)
			}
			for i := range n {
				ident, _ := control.NewIdentity()
				mc, _ := control.NewClient(c.addr, c.srv.Pin(), &ident, "")
				var k [32]byte
				rand.Read(k[:])
				if _, err := mc.Join(ctx, nw.ID, control.JoinRequest{PublicKey: base64.StdEncoding.EncodeToString(k[:]), Hostname: fmt.Sprintf("member-%05d", i),
					Version: "v1", ListenPort: 51820, Endpoints: []netip.AddrPort{netip.MustParseAddrPort("198.51.100.20:51820")}}); err != nil {
					b.Fatal(err)
				}
				mc.Close()
			}
			hc, _ := signedInClient(b, c, c.srv.AdminToken())
			b.ResetTimer()
			var size int
			for b.Loop() {
				req, _ := http.NewRequest("GET", c.web+"/n/"+nw.ID, nil)
				req.Header.Set("X-Gate-Live", "1")
				resp, err := hc.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				size = len(body)
			}
			b.ReportMetric(float64(size), "bytes/page")
		})
	}
}
