package daemon

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/gatenet/gate/services/firewall"
	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/policy"
)

// TestPolicyRules: the rules a gateway enforces are listed per chain in
// rule order, the default deny last, with what the firewall counted; a
// rule the kernel has no counter for shows zero.
func TestPolicyRules(t *testing.T) {
	ix, err := policy.NewIndex(policy.Network{
		CIDR:   netip.MustParsePrefix("192.168.254.0/24"),
		Routes: []policy.Route{{Dest: netip.MustParsePrefix("172.16.0.0/16"), Via: netip.MustParseAddr("192.168.254.11")}},
		Members: []policy.Member{
			{NodeID: "1111111111", Addresses: []netip.Addr{netip.MustParseAddr("192.168.254.11")}, Tags: []string{"gw"}},
			{NodeID: "2222222222", Addresses: []netip.Addr{netip.MustParseAddr("192.168.254.170")}, Tags: []string{"web"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.ParsePolicy("deny from tag:web to 172.16.0.0/16 on tcp/5005\nallow from any to any\n")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := policy.Compile(p, ix, "1111111111")
	if err != nil {
		t.Fatal(err)
	}
	counts := []firewall.RuleCount{
		{Chain: "forward", Rule: 1, Packets: 2, Bytes: 120},
		{Chain: "forward", Rule: 2, Allow: true, Packets: 3, Bytes: 180},
		{Chain: "input", Rule: 0, Packets: 7, Bytes: 420},
	}
	got := policyRules(&rs, true, counts)
	want := []localapi.PolicyRule{
		{Chain: "input", Rule: 1, Text: "deny from tag:web to 172.16.0.0/16 on tcp/5005"},
		{Chain: "input", Rule: 2, Allow: true, Text: "allow from any to 192.168.254.11; allow from any to 172.16.0.0/16"},
		{Chain: "input", Text: "anything else: denied", Packets: 7, Bytes: 420},
		{Chain: "forward", Rule: 1, Text: "deny from tag:web to 172.16.0.0/16 on tcp/5005", Packets: 2, Bytes: 120},
		{Chain: "forward", Rule: 2, Allow: true, Text: "allow from any to 172.16.0.0/16", Packets: 3, Bytes: 180},
		{Chain: "forward", Text: "anything else: denied"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("policyRules:\n got %+v\nwant %+v", got, want)
	}
	// A member that is no gateway lists input only.
	if got := policyRules(&rs, false, nil); len(got) != 3 || got[2].Rule != 0 || got[2].Chain != "input" {
		t.Errorf("not a gateway: %+v", got)
	}
}
