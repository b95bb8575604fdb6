package cloud

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatenet/gate/services/nodeconfig"
	"github.com/google/go-cmp/cmp"
)

const (
	pin     = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	netID   = "d363b4e9bd3d6aa8"
	joinStr = "gate://203.0.113.5:8443/" + netID + "?pin=" + pin + "&token=tok_0123456789abcdef"
)

// cloudConfig is what an operator pastes into DigitalOcean or AWS.
const cloudConfigDoc = `#cloud-config
packages: [htop]
gate:
  hostname: aws-gate-1
  networks:
    - join: "` + joinStr + `"
      address: 192.168.254.11
      gateway:
        serve: [172.16.0.0/16]
        masquerade: {to_internet: true}
runcmd:
  - echo hello
`

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

func multipartDoc(parts ...string) string {
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=\"===b==\"\nMIME-Version: 1.0\n\n")
	for _, p := range parts {
		b.WriteString("--===b==\n" + p + "\n")
	}
	b.WriteString("--===b==--\n")
	return b.String()
}

func TestParseUserData(t *testing.T) {
	for _, tc := range []struct {
		name     string
		data     []byte
		format   string
		hostname string // of the layer; "" = no layer
		notes    []string
		err      string
	}{
		{name: "empty", data: []byte("  \n"), format: FormatEmpty},
		{name: "cloud-config", data: []byte(cloudConfigDoc), format: FormatCloudConfig, hostname: "aws-gate-1",
			notes: []string{"user-data (test): cloud-config keys ignored (Gate reads only gate:): packages, runcmd"}},
		{name: "cloud-config, CRLF", data: []byte(strings.ReplaceAll(cloudConfigDoc, "\n", "\r\n")), format: FormatCloudConfig, hostname: "aws-gate-1",
			notes: []string{"user-data (test): cloud-config keys ignored (Gate reads only gate:): packages, runcmd"}},
		{name: "cloud-config without gate", data: []byte("#cloud-config\npackages: [x]\n"), format: FormatCloudConfig,
			notes: []string{"user-data (test): cloud-config keys ignored (Gate reads only gate:): packages", "user-data (test): #cloud-config without a gate: key: nothing for Gate"}},
		{name: "gzipped cloud-config", data: gz(cloudConfigDoc), format: FormatCloudConfig, hostname: "aws-gate-1",
			notes: []string{"user-data (test): cloud-config keys ignored (Gate reads only gate:): packages, runcmd"}},
		{name: "gate YAML", data: []byte("# my gate\nversion: 1\nhostname: plain\n"), format: FormatGate, hostname: "plain"},
		{name: "gate JSON", data: []byte(`{"version": 1, "hostname": "json"}`), format: FormatGate, hostname: "json"},
		{name: "multipart", format: FormatMultipart, hostname: "aws-gate-1", data: []byte(multipartDoc(
			"Content-Type: text/x-shellscript; charset=\"us-ascii\"\nContent-Disposition: attachment; filename=\"setup.sh\"\n\n#!/bin/sh\necho hi",
			"Content-Type: text/cloud-config; charset=\"us-ascii\"\nContent-Transfer-Encoding: base64\n\n"+base64.StdEncoding.EncodeToString([]byte(cloudConfigDoc)),
		)), notes: []string{
			"user-data (test) part 1 (setup.sh): text/x-shellscript ignored: Gate reads only cloud-config",
			"user-data (test) part 2: cloud-config keys ignored (Gate reads only gate:): packages, runcmd",
		}},
		{name: "multipart, text/plain cloud-config", format: FormatMultipart, hostname: "p", data: []byte(multipartDoc(
			"Content-Type: text/plain\n\n#cloud-config\ngate: {hostname: p}",
		))},
		{name: "multipart, two gate parts", data: []byte(multipartDoc(
			"Content-Type: text/cloud-config\n\ngate: {hostname: a}", "Content-Type: text/cloud-config\n\ngate: {hostname: b}",
		)), err: "user-data (test) part 2: more than one MIME part holds a Gate document"},
		{name: "multipart, bad boundary", data: []byte("Content-Type: multipart/mixed\n\nxx"), err: "MIME part 1"},
		{name: "shell script", data: []byte("#!/bin/bash\ncurl x | sh\n"), err: "user-data (test): user-data is a script (#!/bin/bash): a Gate node runs no scripts"},
		{name: "include", data: []byte("#include\nhttp://x/\n"), err: `"#include" user-data is not supported`},
		{name: "cloud-config-archive", data: []byte("#cloud-config-archive\n- x\n"), err: `"#cloud-config-archive" user-data is not supported`},
		{name: "not gate", data: []byte("hostname: x\n"), err: "user-data is neither #cloud-config nor a Gate document"},
		{name: "bad gate value", data: []byte("#cloud-config\ngate:\n  interfaces:\n    eth0: {address: 10.0.0.300/24}\n"),
			err: `invalid user-data (test): gate.interfaces.eth0.address: "10.0.0.300/24" is not a CIDR (line 4)`},
		{name: "bad YAML", data: []byte("#cloud-config\ngate: [\n"), err: "not valid YAML"},
		{name: "bad gzip", data: []byte{0x1f, 0x8b, 0, 1}, err: "gzipped user-data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := ParseUserData("user-data (test)", tc.data)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.Format != tc.format {
				t.Errorf("format %q, want %q", u.Format, tc.format)
			}
			got := ""
			if u.Layer != nil {
				got = u.Layer.Config.Hostname
				if u.Layer.Source != nodeconfig.SourceUserData {
					t.Errorf("source %v", u.Layer.Source)
				}
			}
			if got != tc.hostname {
				t.Errorf("hostname %q, want %q", got, tc.hostname)
			}
			if diff := cmp.Diff(tc.notes, u.Notes); diff != "" {
				t.Errorf("notes (-want +got)\n%s", diff)
			}
		})
	}
}

// The cloud-config's document merges and validates like any layer, and
// an invalid one names the gate: key path.
func TestUserDataMerges(t *testing.T) {
	u, err := ParseUserData("user-data", []byte(cloudConfigDoc))
	if err != nil {
		t.Fatal(err)
	}
	e, err := nodeconfig.Merge(u.Layer)
	if err != nil {
		t.Fatal(err)
	}
	if e.Config.Networks[0].NetworkID() != netID {
		t.Errorf("network %q", e.Config.Networks[0].NetworkID())
	}
	_, err = ParseUserData("user-data", []byte("#cloud-config\ngate:\n  networks: [{join: x, gatway: {}}]\n"))
	if err != nil {
		t.Fatal(err) // a bad join is the merge's to refuse; the unknown key a warning
	}
	u, _ = ParseUserData("user-data", []byte("#cloud-config\ngate:\n  networks: [{join: x, gatway: {}}]\n"))
	if w := u.Layer.Warnings; len(w) != 1 || w[0].String() != "gate.networks[0].gatway: unknown key (line 3)" {
		t.Errorf("warnings %v", w)
	}
	_, err = nodeconfig.Merge(u.Layer)
	var ne *nodeconfig.Error
	if !errors.As(err, &ne) || !strings.Contains(err.Error(), `networks[0].join: "x" is neither a join string`) {
		t.Errorf("got %v", err)
	}
}

func TestReadPreseed(t *testing.T) {
	dir := t.TempDir()
	u, err := ReadPreseed(filepath.Join(dir, "absent.yaml"))
	if u != nil || err != nil {
		t.Errorf("absent: %v, %v", u, err)
	}
	p := filepath.Join(dir, "preseed.yaml")
	os.WriteFile(p, []byte("version: 1\nhostname: preseeded\n"), 0o600)
	u, err = ReadPreseed(p)
	if err != nil {
		t.Fatal(err)
	}
	if u.Layer.Source != nodeconfig.SourcePreseed || u.Layer.Config.Hostname != "preseeded" || u.Layer.Name != p {
		t.Errorf("layer %+v", u.Layer)
	}
}
