package cloud_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/gatenet/gate/services/cloud"
	"github.com/gatenet/gate/services/nodeconfig"
	"github.com/gatenet/gate/services/state"
)

// The daemon's boot: detect, parse, merge, apply once per instance. Here
// the seed is a directory named on the kernel command line; on the
// appliance the same code finds a cidata volume, or (with Metadata set)
// DigitalOcean or AWS.
func Example() {
	seed, _ := os.MkdirTemp("", "seed")
	defer os.RemoveAll(seed)
	os.WriteFile(filepath.Join(seed, "meta-data"), []byte("instance-id: iid-01\nlocal-hostname: gate-1\n"), 0o644)
	os.WriteFile(filepath.Join(seed, "user-data"), []byte("#cloud-config\npackages: [htop]\ngate:\n  interfaces: {eth0: {dhcp: true}}\n  controller: {listen: \":8443\"}\n"), 0o644)
	stateDir, _ := os.MkdirTemp("", "state")
	defer os.RemoveAll(stateDir)
	st, _ := state.Open(stateDir)
	cmdline := "console=ttyS0 ds=nocloud;s=" + seed + "/ gate.hostname=rescue"

	// 1. Detect, only because the caller says so (the appliance always;
	//    `gate up` on an ordinary host only when told).
	d := &cloud.Detector{Cmdline: cmdline, Metadata: false, SysBlock: "-"}
	r, err := d.Detect(context.Background())
	if err != nil {
		log.Fatal(err) // a source was found but is broken: report it, keep the last good config
	}

	// 2. Parse the layers. A layer with errors is refused whole.
	layers := []*nodeconfig.Layer{
		nodeconfig.NewLayer(nodeconfig.SourceDefaults, "", &nodeconfig.Config{Interfaces: map[string]nodeconfig.Interface{"eth0": {DHCP: true}}}),
		r.MetadataLayer(),
	}
	boot, err := cloud.CheckInstance(st, r)
	if err != nil {
		log.Fatal(err)
	}
	ud, err := r.ParseUserData()
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range ud.Notes {
		fmt.Println("note:", n)
	}
	layers = append(layers, ud.Layer)
	cl, err := nodeconfig.ParseCmdline(cmdline)
	if err != nil {
		log.Fatal(err)
	}
	layers = append(layers, cl)

	// 3. Merge and validate; on error keep the last good config.
	eff, err := nodeconfig.Merge(layers...)
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range eff.Provenance() {
		fmt.Printf("%s from %s\n", p.Path, p.Name)
	}

	// 4. Apply (the reconciler's job), then record the instance, once.
	if boot.First {
		if err := cloud.MarkApplied(st, r, time.Now()); err != nil {
			log.Fatal(err)
		}
	}
	again, _ := cloud.CheckInstance(st, r)
	fmt.Println("first boot:", boot.First, "then:", again.First)
	// Output:
	// note: user-data (nocloud): cloud-config keys ignored (Gate reads only gate:): packages
	// controller from user-data (nocloud)
	// hostname from kernel command line
	// interfaces.eth0 from user-data (nocloud)
	// first boot: true then: false
}
