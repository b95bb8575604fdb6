package localapi

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/gatenet/gate/services/control"
)

// TestJoinWithEveryReplica: the local API carries a join string that lists
// as many controller addresses as a join string may, each a long DNS name,
// and refuses one longer than any join string can be; a bad list is
// refused in the parser's words before the daemon sees it.
func TestJoinWithEveryReplica(t *testing.T) {
	b := &backend{}
	c := NewClient(serve(t, b))
	ctx := context.Background()
	label := strings.Repeat("a", 63)
	var addrs []string
	for i := range control.MaxControllers {
		// 253 characters: the longest DNS name.
		addrs = append(addrs, fmt.Sprintf("%s.%s.%s.%s%d.example:65535", label, label, label, strings.Repeat("b", 53-len(fmt.Sprint(i))), i))
	}
	pin := "sha256:" + strings.Repeat("ab", 32)
	js := control.JoinString{Controller: addrs[0], Replicas: addrs[1:], NetworkID: "d363b4e9bd3d6aa8", Pin: pin, Token: strings.Repeat("t", 128)}.String()
	if len(addrs[0]) != 253+len(":65535") {
		t.Fatalf("address of %d characters", len(addrs[0]))
	}
	if _, err := control.ParseJoinString(js); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Join(ctx, JoinRequest{Join: js}); err != nil {
		t.Fatalf("join with %d addresses (%d characters): %v", len(addrs), len(js), err)
	}
	ctl := control.JoinString{Controller: addrs[0], Replicas: addrs[1:], Pin: pin}.ControllerAddress()
	if _, err := c.Join(ctx, JoinRequest{Join: "0123456789abcdef", Controller: ctl}); err != nil {
		t.Fatalf("join by ID with %d addresses: %v", len(addrs), err)
	}
	if _, err := c.Join(ctx, JoinRequest{Join: js + strings.Repeat("x", maxJoin)}); err == nil || !strings.Contains(err.Error(), "join: at most") {
		t.Errorf("an overlong join: %v", err)
	}
	bad := "gate://a.example:1,a.example:1/d363b4e9bd3d6aa8?pin=" + pin
	if _, err := c.Join(ctx, JoinRequest{Join: bad}); err == nil || !strings.Contains(err.Error(), `controller "a.example:1" is listed twice`) {
		t.Errorf("a duplicate address: %v", err)
	}
	if len(b.joined) != 2 {
		t.Errorf("the daemon saw %d joins, want 2", len(b.joined))
	}
}
