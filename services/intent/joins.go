package intent

// Joins are actions, not state: the networks a layer names are joined
// once per layer, so that a reboot never spends a single-use token twice
// nor joins again a network an operator left. The preseed's once per
// preseed document; the cloud's once per instance and user-data
// (cloud.CheckInstance / MarkApplied), so that a new instance (an image or
// snapshot launched again) or edited user-data is a new first boot; the
// console's and the kernel command line's once per list.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/gatenet/gate/services/cloud"
	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/nodeconfig"
)

// State directory files of the once-only joins.
const (
	// preseedDone records the digest of the preseed whose networks were
	// joined.
	preseedDone = "preseed.applied"
	// networksDone records the digest of networks joined from the console
	// or the kernel command line.
	networksDone = "networks.applied"
)

// JoinFunc joins one network, as the local API's join does.
type JoinFunc func(ctx context.Context, r localapi.JoinRequest) (localapi.Network, error)

// Join joins the networks of the plan's document that were not joined
// before. A join the controller cannot be reached for yet is kept and
// retried by the agent; a refused one is logged. local is the join address
// of a controller run on this node ("" if none): a network named by a bare
// ID and no controller is its.
func (in *Intent) Join(ctx context.Context, p *Plan, join JoinFunc, local string) {
	eff, fresh, boot := p.Effective, p.Fresh, p.Boot
	origin, ok := eff.Origin("networks")
	markCloud := func() {
		if fresh != nil && fresh.InstanceID != "" && (boot.First || boot.UserDataChanged) && ctx.Err() == nil {
			if err := cloud.MarkApplied(in.opt.State, fresh, time.Now()); err != nil {
				in.opt.Logf("config: %v", err)
			}
		}
	}
	if !ok {
		markCloud()
		return
	}
	switch origin.Source {
	case nodeconfig.SourcePreseed:
		in.joinPreseed(ctx, join, local)
	case nodeconfig.SourceMetadata, nodeconfig.SourceUserData:
		if fresh == nil || !(boot.First || boot.UserDataChanged) {
			return // joined when this instance's user-data was applied
		}
		if boot.UserDataChanged {
			in.opt.Logf("config: the user-data of instance %s changed since it was applied; applying it", fresh.InstanceID)
		}
		in.join(ctx, join, origin.Name, eff.Config.Networks, fresh.InstanceID, local)
	default:
		sum := sha256.Sum256(nodeconfig.Format(&nodeconfig.Config{Networks: eff.Config.Networks}))
		key := hex.EncodeToString(sum[:])
		if b, err := in.opt.State.Read(networksDone); err == nil && strings.TrimSpace(string(b)) == key {
			break
		}
		in.join(ctx, join, origin.Name, eff.Config.Networks, "", local)
		if ctx.Err() == nil {
			if err := in.opt.State.Write(networksDone, []byte(key+"\n")); err != nil {
				in.opt.Logf("config: %v", err)
			}
		}
	}
	markCloud()
}

// join joins nets; instance is the cloud instance whose user-data asked
// for them ("" otherwise), which the controller records with the token.
func (in *Intent) join(ctx context.Context, join JoinFunc, from string, nets []nodeconfig.Network, instance, local string) {
	for _, n := range nets {
		if n.Controller == "" && local != "" && !strings.Contains(n.Join, "://") {
			n.Controller = local // a bare network ID: this node's own controller's
		}
		req, err := n.JoinRequest()
		if err != nil {
			in.opt.Logf("%s: %v", from, err)
			continue
		}
		req.InstanceID = instance
		got, err := join(ctx, req)
		if err != nil {
			in.opt.Logf("%s: joining %s: %v", from, n.NetworkID(), err)
			continue
		}
		in.opt.Logf("%s: joined %s: %s", from, got.ID, got.Status)
	}
}

// joinPreseed joins the preseed's networks, once per preseed document. A
// join the controller cannot be reached for yet is kept and retried by the
// agent (it is saved before the first attempt); a refused one is logged.
func (in *Intent) joinPreseed(ctx context.Context, join JoinFunc, local string) {
	if in.preseed == nil || len(in.preseed.Config.Networks) == 0 {
		return
	}
	if b, err := in.opt.State.Read(preseedDone); err == nil && strings.TrimSpace(string(b)) == in.preseedSum {
		return
	}
	in.join(ctx, join, "preseed", in.preseed.Config.Networks, "", local)
	if ctx.Err() != nil {
		return
	}
	if err := in.opt.State.Write(preseedDone, []byte(in.preseedSum+"\n")); err != nil {
		in.opt.Logf("preseed: %v", err)
	}
}
