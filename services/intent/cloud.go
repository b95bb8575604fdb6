package intent

// The cloud's layers: found once per start (a NoCloud seed, or the
// metadata service once there is a route to it), accepted whole when the
// document they make with the other layers is valid, and kept in the state
// directory so that the next start applies them before, and whether or
// not, the source answers. An invalid document is rejected whole: the cloud
// layers accepted last time stay in force.

import (
	"context"
	"fmt"
	"time"

	"github.com/gatenet/gate/services/cloud"
	"github.com/gatenet/gate/services/nodeconfig"
)

// Cloud modes: where the node looks for user-data and metadata.
const (
	CloudOff          = "off"          // nowhere (an ordinary host, unless told)
	CloudAuto         = "auto"         // a NoCloud seed, then the metadata service (the appliance)
	CloudNoCloud      = "nocloud"      // a NoCloud seed only
	CloudDigitalOcean = "digitalocean" // DigitalOcean's metadata service only
	CloudAWS          = "aws"          // AWS IMDSv2 only
)

// CheckCloudMode says whether s is a cloud mode ("" is off).
func CheckCloudMode(s string) error {
	switch s {
	case "", CloudOff, CloudAuto, CloudNoCloud, CloudDigitalOcean, CloudAWS:
		return nil
	}
	return fmt.Errorf("cloud %q: want auto, nocloud, digitalocean, aws or off", s)
}

// cloudAcceptedFile holds the cloud inputs of the last valid document.
const cloudAcceptedFile = "cloud-accepted.json"

// A metadata service that fails to answer (cloud.Result.Unavailable), or,
// when the configuration names the cloud, is not there yet, is asked
// again, by default with waits from 1 s doubling to 15 s, for 2 minutes in
// all (cloud-init waits 120 s for EC2's); then the last answer stands.
// Nothing listening at all is not retried: that is a machine outside a
// cloud. Options.MetadataRetry changes the schedule.
var defaultRetry = Retry{Min: time.Second, Max: 15 * time.Second, For: 2 * time.Minute}

// Retry is a schedule of tries: waits from Min doubling to Max, for For
// in all.
type Retry struct {
	Min, Max, For time.Duration
}

// acceptedCloud is what the last valid document took from the cloud.
type acceptedCloud struct {
	Kind          cloud.Kind                      `json:"kind"`
	Where         string                          `json:"where"`
	InstanceID    string                          `json:"instance_id"`
	Hostname      string                          `json:"hostname,omitempty"`
	NetworkConfig map[string]nodeconfig.Interface `json:"network_config,omitempty"`
	UserData      []byte                          `json:"user_data,omitempty"` // may hold a join token: the file is 0600
}

func (a *acceptedCloud) result() *cloud.Result {
	return &cloud.Result{Kind: a.Kind, Where: a.Where, InstanceID: a.InstanceID, Hostname: a.Hostname, NetworkConfig: a.NetworkConfig, UserData: a.UserData}
}

func accept(r *cloud.Result) *acceptedCloud {
	return &acceptedCloud{Kind: r.Kind, Where: r.Where, InstanceID: r.InstanceID, Hostname: r.Hostname, NetworkConfig: r.NetworkConfig, UserData: r.UserData}
}

// cloudLayers parses the layers of a cloud result: the metadata's and
// the user-data's. Notes are what was ignored.
func cloudLayers(r *cloud.Result) (layers []*nodeconfig.Layer, notes []string, err error) {
	if l := r.MetadataLayer(); l != nil {
		layers = append(layers, l)
	}
	ud, err := r.ParseUserData()
	if err != nil {
		return nil, nil, err
	}
	notes = append(notes, ud.Notes...)
	if ud.Layer != nil {
		layers = append(layers, ud.Layer)
	}
	return layers, notes, nil
}

// detect finds the cloud source for mode. Local sources (a NoCloud seed)
// are looked at at once; the metadata service only once there is a route
// to it (Options.WaitMetadataRoute), so that an absent one costs one short
// connect timeout.
func (in *Intent) detect(ctx context.Context, mode string) (*cloud.Result, error) {
	det := cloud.Detector{Cmdline: in.opt.Cmdline, Logf: in.opt.Logf, MetadataURL: in.opt.MetadataURL}
	if mode == CloudAuto || mode == CloudNoCloud {
		r, err := det.Detect(ctx)
		if err != nil || r.Kind != cloud.None || mode == CloudNoCloud {
			return r, err
		}
	}
	det.Metadata, det.SysBlock = true, "-"
	if in.opt.WaitMetadataRoute != nil {
		in.opt.WaitMetadataRoute(ctx)
	}
	want := map[string]cloud.Kind{CloudDigitalOcean: cloud.DigitalOcean, CloudAWS: cloud.AWS}[mode]
	retry := in.opt.MetadataRetry
	if retry == (Retry{}) {
		retry = defaultRetry
	}
	deadline := time.Now().Add(retry.For)
	wait := retry.Min
	for {
		r, err := det.Detect(ctx)
		// Retried: a service that fails to answer, and, when the
		// configuration names the cloud, finding none. A service that
		// answers but is no cloud Gate knows (OpenStack's, say) is not:
		// auto finds none. Neither is finding something else (a ds= on
		// the kernel command line): that will not change.
		again := r.Unavailable || (want != "" && r.Kind == cloud.None)
		if err == nil && want != "" && r.Kind != want {
			err = fmt.Errorf("cloud %s: no %s metadata service at %s (found %s)", mode, want, cloud.MetadataURL, r.Kind)
		}
		if !again || ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return r, err
		}
		why := "it fails to answer"
		if err != nil {
			why = err.Error()
		}
		in.opt.Logf("config: metadata service: %s; asking again in %v", why, wait)
		select {
		case <-ctx.Done():
			return r, err
		case <-time.After(wait):
		}
		wait = min(2*wait, retry.Max)
	}
}

func describeSource(r *cloud.Result) string {
	if r == nil || r.Kind == cloud.None {
		return "none"
	}
	if r.Where == "" {
		return string(r.Kind)
	}
	return string(r.Kind) + ": " + r.Where
}
