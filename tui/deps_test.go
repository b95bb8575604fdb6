package tui

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoNetworkPrivileges: the console must stay a client of the local
// API. If it ever imports a package that talks to netlink, nftables or
// WireGuard, it could change the network behind the daemon's back.
func TestNoNetworkPrivileges(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/gatenet/gate/tui").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"github.com/vishvananda/netlink", "github.com/google/nftables", "golang.zx2c4.com/wireguard",
		"github.com/mdlayher/netlink", "github.com/gatenet/gate/services/netcfg", "github.com/gatenet/gate/services/firewall",
		"github.com/gatenet/gate/services/tunnel", "github.com/gatenet/gate/services/reconciler", "github.com/gatenet/gate/services/daemon",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("tui imports %s", dep)
			}
		}
	}
}
