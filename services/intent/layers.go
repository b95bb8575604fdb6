// Package intent owns what a node is told by everyone but its controller:
// the layers of its configuration document (services/nodeconfig) and the
// one place they meet.
//
// The layers, lowest first: the image's preseed, the cloud's metadata and
// user-data (services/cloud), the settings made on the machine from the
// console or the CLI (the state directory's interfaces.json), and the
// kernel command line (recovery). Assemble is the only function that
// merges them; boot, user-data, the console and the CLI all go through it,
// so a value is checked by one rule wherever it came from, and where each
// value came from (provenance) is always that of the layers in force.
//
// A change made on the machine is a proposal: a new local layer is
// assembled with the others, persisted, and published, on probation until
// the operator confirms it (confirm.go). Cloud layers are accepted whole or
// not at all (cloud.go), and the networks a layer names are joined once per
// layer (joins.go).
//
// The package touches no kernel state and runs nothing: it hands what is
// in force to the daemon (services/daemon), which applies it through the
// NIC manager, the agent and a controller run in-process.
package intent

import (
	"errors"
	"slices"

	"github.com/gatenet/gate/services/nodeconfig"
)

// InterfacesFile is the state directory's file of the NIC settings made on
// the machine (the local layer): a JSON object of nodeconfig.Interface by
// NIC name, e.g. {"eth1": {"address": "172.16.1.10/24", "gateway":
// "172.16.1.1"}}.
const InterfacesFile = "interfaces.json"

// Layers are a node's configuration layers. Nil and empty ones are absent.
type Layers struct {
	Preseed *nodeconfig.Layer
	Cloud   []*nodeconfig.Layer // metadata, then user-data
	Local   map[string]nodeconfig.Interface
	Cmdline *nodeconfig.Layer
}

// list is the layers as nodeconfig layers; Merge orders them by source.
func (l Layers) list() []*nodeconfig.Layer {
	out := []*nodeconfig.Layer{l.Preseed}
	out = append(out, l.Cloud...)
	if len(l.Local) > 0 {
		out = append(out, nodeconfig.NewLayer(nodeconfig.SourceLocal, InterfacesFile, &nodeconfig.Config{Interfaces: l.Local}))
	}
	return append(out, l.Cmdline)
}

// Assemble merges the layers, each over those below it, and validates the
// result whole. An invalid result is an error (a *nodeconfig.Error naming
// the layer and line of each offending value): the caller keeps what was
// in force.
func Assemble(l Layers) (*nodeconfig.Effective, error) {
	return nodeconfig.Merge(l.list()...)
}

// NICs is the NIC settings the layers make (interfaces and the WAN), the
// rest of each layer left out: what the NIC manager is handed. A network
// or controller that does not validate does not hold NICs back.
func NICs(l Layers) (*nodeconfig.Config, error) {
	nicOnly := func(x *nodeconfig.Layer) *nodeconfig.Layer {
		if x == nil {
			return nil
		}
		return nodeconfig.NewLayer(x.Source, x.Name, &nodeconfig.Config{Interfaces: x.Config.Interfaces, WAN: x.Config.WAN})
	}
	n := Layers{Preseed: nicOnly(l.Preseed), Local: l.Local, Cmdline: nicOnly(l.Cmdline)}
	for _, c := range l.Cloud {
		n.Cloud = append(n.Cloud, nicOnly(c))
	}
	e, err := Assemble(n)
	if err != nil {
		return nil, err
	}
	return e.Config, nil
}

// Provenance says where each value of an effective document came from, as
// "path: layer" lines for the local API.
func Provenance(eff *nodeconfig.Effective) []string {
	var out []string
	for _, p := range eff.Provenance() {
		out = append(out, p.Path+": "+p.Name)
	}
	return out
}

// Issues splits an error into error and warning lines: a
// *nodeconfig.Error's issues one by one (each with its path, layer and
// line), any other error as one line.
func Issues(err error) (errs, warns []string) {
	var ne *nodeconfig.Error
	if !errors.As(err, &ne) {
		return []string{err.Error()}, nil
	}
	// A layer's own parse errors name no layer: it is ne.Source.
	origin := func(is []nodeconfig.Issue) []string {
		var out []string
		for _, i := range slices.Clone(is) {
			if i.Origin == "" && ne.Source != "configuration" {
				i.Origin = ne.Source
			}
			out = append(out, i.String())
		}
		return out
	}
	return origin(ne.Errors), origin(ne.Warnings)
}

func issueStrings(is []nodeconfig.Issue) []string {
	var out []string
	for _, i := range is {
		out = append(out, i.String())
	}
	return out
}
