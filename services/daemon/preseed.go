package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"strings"

	"github.com/gatenet/gate/services/localapi"
	"github.com/gatenet/gate/services/nodeconfig"
)

// preseedDone records which preseed's networks were joined (its sha256),
// so that a network left on purpose is not joined again at the next boot,
// and a new preseed is applied once.
const preseedDone = "preseed.applied"

// loadPreseed reads the preseed document at path. A missing file is no
// preseed; an invalid one is logged, whole, and ignored.
func loadPreseed(path string, logf func(string, ...any)) *nodeconfig.Layer {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		logf("preseed: %v", err)
		return nil
	}
	l, err := nodeconfig.ParseLayer(nodeconfig.SourcePreseed, path, b)
	if err != nil {
		logf("preseed %s is invalid, ignored: %v", path, err)
		return nil
	}
	for _, w := range l.Warnings {
		logf("preseed %s: %s", path, w)
	}
	sum := sha256.Sum256(b)
	l.Name = path + "@" + hex.EncodeToString(sum[:])
	logf("preseed %s read (%d interfaces, %d networks)", path, len(l.Config.Interfaces), len(l.Config.Networks))
	return l
}

// preseedNICs is the preseed's NIC settings as a layer (nil without a
// preseed): only those; its networks are joined once, by applyPreseed.
func (d *Daemon) preseedNICs() *nodeconfig.Layer {
	// With the cloud layers in force (config.go): user-data and NoCloud
	// network-config set NICs too.
	return d.lowerNICs()
}

// applyPreseed joins the preseed's networks, once per preseed document.
// A join that the controller cannot be reached for yet is kept and retried
// by the agent (it is saved before the first attempt); a refused one is
// logged.
func (d *Daemon) applyPreseed(ctx context.Context) {
	if d.preseed == nil || len(d.preseed.Config.Networks) == 0 {
		return
	}
	_, sum, _ := strings.Cut(d.preseed.Name, "@")
	if b, err := d.state.Read(preseedDone); err == nil && strings.TrimSpace(string(b)) == sum {
		return
	}
	for _, n := range d.preseed.Config.Networks {
		req, err := n.JoinRequest()
		if err != nil {
			d.opt.Logf("preseed: %v", err)
			continue
		}
		net, err := d.Join(ctx, req)
		if err != nil {
			d.opt.Logf("preseed: joining %s: %v", n.NetworkID(), err)
			continue
		}
		d.opt.Logf("preseed: joined %s: %s", net.ID, net.Status)
	}
	if ctx.Err() != nil {
		return
	}
	if err := d.state.Write(preseedDone, []byte(sum+"\n")); err != nil {
		d.opt.Logf("preseed: %v", err)
	}
}

// Interfaces implements localapi.InterfacesBackend.
func (d *Daemon) Interfaces() []localapi.Interface {
	if d.nics == nil {
		return nil
	}
	return d.nics.Status(d.rec.Status())
}
