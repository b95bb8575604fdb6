package daemon

// The static NIC settings the daemon hands its NIC manager (services/nics):
// part of the configuration pipeline, layered with services/nodeconfig:
// the preseed (and the cloud layers in force) < interfaces.json in the
// state directory < the kernel command line.

import (
	"strings"

	"github.com/gatenet/gate/services/nodeconfig"
)

// InterfacesFile is the state directory's file of static NIC settings: a
// JSON object of nodeconfig.Interface by NIC name, e.g.
// {"eth1": {"address": "172.16.1.10/24", "gateway": "172.16.1.1"}}.
const InterfacesFile = "interfaces.json"

// nicSettings merges the static NIC settings of the preseed, the state
// directory and the kernel command line; on an error it says so and
// returns nil (DHCP on every NIC).
func (d *Daemon) nicSettings() *nodeconfig.Config {
	var local map[string]nodeconfig.Interface
	if _, err := d.state.LoadJSON(InterfacesFile, &local); err != nil {
		d.opt.Logf("NIC settings: %v (ignored)", err)
		local = nil
	}
	cfg, err := nicConfig(d.preseedNICs(), local, d.opt.Cmdline)
	if err != nil {
		d.opt.Logf("NIC settings are invalid, using DHCP on every NIC: %v", err)
		return nil
	}
	return cfg
}

// nicConfig merges the static NIC settings: preseed < the state
// directory's interfaces.json < the kernel command line. An invalid merge
// is an error (the caller keeps DHCP everywhere and says why).
func nicConfig(preseed *nodeconfig.Layer, local map[string]nodeconfig.Interface, cmdline string) (*nodeconfig.Config, error) {
	layers := []*nodeconfig.Layer{preseed}
	if len(local) > 0 {
		layers = append(layers, nodeconfig.NewLayer(nodeconfig.SourceLocal, InterfacesFile, &nodeconfig.Config{Interfaces: local}))
	}
	if strings.Contains(cmdline, "gate.") {
		l, err := nodeconfig.ParseCmdline(cmdline)
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	e, err := nodeconfig.Merge(layers...)
	if err != nil {
		return nil, err
	}
	return e.Config, nil
}
