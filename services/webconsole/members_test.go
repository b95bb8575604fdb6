package webconsole

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/gatenet/gate/services/control"
)

func TestFilterMembers(t *testing.T) {
	var rows []memberRow
	for i := range 250 {
		m := control.Member{NodeID: fmt.Sprintf("%010x", i), Hostname: fmt.Sprintf("host-%03d", i), State: control.StateAllowed,
			Addresses: []netip.Addr{netip.AddrFrom4([4]byte{10, 0, byte(i / 256), byte(i % 256)})}}
		if i%50 == 0 {
			m.State, m.Tags = control.StatePending, []string{"Edge"}
		}
		rows = append(rows, memberRow{Member: m})
	}
	for _, tc := range []struct {
		q                  string
		page               int
		wantRows           int
		wantFirst          string
		wantPage, wantOf   int
		wantPrev, wantNext string
	}{
		{"", 1, 100, "host-000", 1, 3, "", "?page=2"},
		{"", 2, 100, "host-100", 2, 3, "?", "?page=3"},
		{"", 3, 50, "host-200", 3, 3, "?page=2", ""},
		{"", 99, 50, "host-200", 3, 3, "?page=2", ""}, // past the end: the last page
		{"", -1, 100, "host-000", 1, 3, "", "?page=2"},
		{"HOST-12", 1, 10, "host-120", 1, 1, "", ""},  // any case: 120-129
		{"edge", 1, 5, "host-000", 1, 1, "", ""},      // tags
		{"pending", 1, 5, "host-000", 1, 1, "", ""},   // state
		{"10.0.0.7", 1, 11, "host-007", 1, 1, "", ""}, // address: 10.0.0.7 and 10.0.0.70-79
		{"nothing like it", 1, 0, "", 1, 1, "", ""},
	} {
		got, l := filterMembers(rows, tc.q, tc.page)
		first := ""
		if len(got) > 0 {
			first = got[0].Hostname
		}
		if len(got) != tc.wantRows || first != tc.wantFirst || l.Page != tc.wantPage || l.Pages != tc.wantOf || l.PrevURL != tc.wantPrev || l.NextURL != tc.wantNext || l.Total != 250 || l.Pending != 5 {
			t.Errorf("q %q page %d: %d rows from %q, page %d of %d, prev %q next %q, total %d pending %d", tc.q, tc.page, len(got), first, l.Page, l.Pages, l.PrevURL, l.NextURL, l.Total, l.Pending)
		}
	}
}
