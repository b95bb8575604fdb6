package cloud

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatenet/gate/services/cloud/cloudtest"
)

const esc = "\x1b[2J\x1b[31mPWNED\r\n\u202e"

// doDocument is DigitalOcean's sample document with fields replaced.
func doDocument(t *testing.T, set map[string]any) string {
	t.Helper()
	doc := map[string]any{
		"droplet_id":  2756294,
		"hostname":    "sample-droplet",
		"region":      "nyc3",
		"public_keys": []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample test@do"},
		"interfaces": map[string]any{"public": []any{map[string]any{
			"mac": "04:01:57:d1:9e:01", "type": "public",
			"ipv4": map[string]string{"ip_address": "192.0.2.20", "netmask": "255.255.255.0", "gateway": "192.0.2.1"},
		}}},
		"dns": map[string]any{"nameservers": []string{"8.8.8.8"}},
	}
	for k, v := range set {
		doc[k] = v
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A hostile DigitalOcean metadata service: a host name, region, keys and
// interface fields with newlines and terminal escapes, and lists far
// longer than any droplet's. What Gate keeps is typed, bounded and clean;
// a host name that is not a DNS name is left out with a note.
func TestAttackMetadataDigitalOcean(t *testing.T) {
	many := make([]any, 2000)
	dns := make([]string, 5000)
	keys := make([]string, 5000)
	for i := range many {
		many[i] = map[string]any{"mac": fmt.Sprintf("04:01:57:d1:%02x:%02x", i>>8, i&0xff), "ipv4": map[string]string{"ip_address": "10.0.0.300", "netmask": "x" + esc}}
		dns[i] = "8.8.8.8"
		keys[i] = "ssh-ed25519 AAAA" + fmt.Sprint(i)
	}
	for _, tc := range []struct {
		name string
		set  map[string]any
		err  string // "" = detected, with bad values left out
	}{
		{name: "escapes", set: map[string]any{
			"hostname":    "evil" + esc,
			"region":      "nyc3" + esc,
			"public_keys": []string{"ssh-ed25519 AAAA a\nssh-rsa AAAA injected", "ssh-ed25519 AAAA" + esc, strings.Repeat("A", 100<<10)},
			"interfaces": map[string]any{"public": []any{map[string]any{
				"mac": esc, "ipv4": map[string]string{"ip_address": "192.0.2.20" + esc, "netmask": "255.255.255.0"},
			}}},
		}},
		{name: "long hostname", set: map[string]any{"hostname": strings.Repeat("a.", 200) + "b"}},
		{name: "hostname underscore", set: map[string]any{"hostname": "a_b"}},
		{name: "many", set: map[string]any{"interfaces": map[string]any{"public": many, "private": many}, "dns": map[string]any{"nameservers": dns}, "public_keys": keys}},
		{name: "droplet_id escape", set: map[string]any{"droplet_id": "27\x1b[2J"}, err: "droplet_id"},
		{name: "droplet_id object", set: map[string]any{"droplet_id": map[string]any{"a": 1}}, err: "droplet_id"},
		{name: "droplet_id long", set: map[string]any{"droplet_id": strings.Repeat("1", 1000)}, err: "droplet_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cloudtest.Serve(t, &cloudtest.DigitalOcean{Document: doDocument(t, tc.set)})
			r, err := metadataDetector(t).Detect(context.Background())
			checkResult(t, r, err)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %+v, %v; want an error about %s", r, err, tc.err)
				}
				t.Log(err)
				return
			}
			if err != nil || r.Kind != DigitalOcean {
				t.Fatalf("got %+v, %v", r, err)
			}
			if h, ok := tc.set["hostname"]; ok && r.Hostname != "" {
				t.Errorf("hostname %q kept (served %q)", r.Hostname, h)
			}
			if l := r.MetadataLayer(); l != nil && l.Config.Hostname != "" && l.Config.Hostname != "sample-droplet" {
				t.Errorf("metadata layer hostname %q", l.Config.Hostname)
			}
			t.Logf("notes %q", r.Notes)
		})
	}
}

// A hostile AWS IMDSv2: escapes in the host name, region and instance
// ID, an instance ID or item far larger than AWS's, a token that would go
// into every request's header at 64 KiB, and lists of interfaces and keys
// that would each cost requests without end.
func TestAttackMetadataAWS(t *testing.T) {
	macs, keys := make([]string, 3000), make([]string, 3000)
	for i := range macs {
		macs[i] = fmt.Sprintf("0e:49:61:0f:%02x:%02x/", i>>8, i&0xff)
		keys[i] = fmt.Sprintf("%d=k%d", i, i)
	}
	for _, tc := range []struct {
		name   string
		imds   *cloudtest.IMDSv2
		err    string // "" = detected, with bad values left out
		notAWS bool
	}{
		{name: "escapes", imds: &cloudtest.IMDSv2{Items: map[string]string{
			"local-hostname": "ip-172-16-1-10" + esc, "placement/region": "eu" + esc,
			"public-keys/0/openssh-key": "ssh-ed25519 AAAA x\nssh-rsa AAAA injected",
		}}},
		{name: "mac escape", imds: &cloudtest.IMDSv2{Items: map[string]string{"network/interfaces/macs/": "0e:49:61:0f:c3:11/\n" + esc + "/"}}, err: "is not a MAC address"},
		{name: "instance-id escape", imds: &cloudtest.IMDSv2{InstanceID: "i-0123" + esc}, err: "instance ID"},
		{name: "instance-id huge", imds: &cloudtest.IMDSv2{InstanceID: "i-" + strings.Repeat("0", 200<<10)}, err: "larger than"},
		{name: "item huge", imds: &cloudtest.IMDSv2{Items: map[string]string{"placement/region": strings.Repeat("a", 200<<10)}}, err: "larger than"},
		{name: "many", imds: &cloudtest.IMDSv2{Items: map[string]string{"network/interfaces/macs/": strings.Join(macs, "\n"), "public-keys/": strings.Join(keys, "\n")}}},
		{name: "token huge", imds: &cloudtest.IMDSv2{Token: strings.Repeat("A", 64<<10)}, notAWS: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cloudtest.Serve(t, tc.imds)
			r, err := metadataDetector(t).Detect(context.Background())
			checkResult(t, r, err)
			t.Logf("%d requests", tc.imds.Requests())
			if n := tc.imds.Requests(); n > 3*maxNICs+maxKeys+16 {
				t.Errorf("%d requests to the metadata service", n)
			}
			switch {
			case tc.notAWS:
				if err != nil || r.Kind == AWS {
					t.Fatalf("got %+v, %v; want it not taken for AWS", r, err)
				}
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %+v, %v; want an error containing %q", r, err, tc.err)
				}
				t.Log(err)
			default:
				if err != nil || r.Kind != AWS {
					t.Fatalf("got %+v, %v", r, err)
				}
				t.Logf("notes %q", r.Notes)
			}
		})
	}
}

// A hostile NoCloud seed: meta-data whose host name and instance ID hold
// escapes, a key list far longer than any, a user-data larger than the
// limit (a seed directory's files were read whole, whatever their size),
// and a network-config whose NIC names are terminal escapes.
func TestAttackNoCloudSeed(t *testing.T) {
	keys := strings.Repeat("  - ssh-ed25519 AAAA k\n", 5000)
	for _, tc := range []struct {
		name  string
		files map[string]string
		err   string
	}{
		{name: "hostname", files: map[string]string{"meta-data": "instance-id: iid-1\nlocal-hostname: \"gate\\e[2J\\r\\nx\"\npublic-keys:\n" + keys}},
		{name: "instance-id", files: map[string]string{"meta-data": "instance-id: \"iid\\e]0;x\\a\\n\"\n"}, err: "instance ID"},
		{name: "instance-id long", files: map[string]string{"meta-data": "instance-id: " + strings.Repeat("i", 4096) + "\n"}, err: "instance ID"},
		{name: "user-data huge", files: map[string]string{"meta-data": "instance-id: iid-1\n", "user-data": "#cloud-config\n#" + strings.Repeat(" ", 2<<20)}, err: "user-data"},
		{name: "network-config names", files: map[string]string{"meta-data": "instance-id: iid-1\n", "network-config": "version: 2\nethernets:\n  \"\\e[2J\": {dhcp4: true}\n"}, err: "interface name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, c := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			r, err := (&Detector{Cmdline: "ds=nocloud;s=" + dir + "/", SysBlock: "-"}).Detect(context.Background())
			checkResult(t, r, err)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %+v, %v; want an error containing %q", r, err, tc.err)
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Hostname != "" {
				t.Errorf("hostname %q kept", r.Hostname)
			}
			if len(r.UserData) > 1<<20 {
				t.Errorf("user-data of %d bytes", len(r.UserData))
			}
			t.Logf("notes %q", r.Notes)
		})
	}
}
