package cloud

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gatenet/gate/services/nodeconfig"
)

// FuzzUserData: ParseUserData never panics, and a layer it returns merges
// or is refused with a *nodeconfig.Error.
func FuzzUserData(f *testing.F) {
	f.Add([]byte(cloudConfigDoc))
	f.Add([]byte("version: 1\nhostname: x\n"))
	f.Add([]byte(`{"version": 1, "interfaces": {"eth0": {"dhcp": true}}}`))
	f.Add(gz(cloudConfigDoc))
	f.Add([]byte(multipartDoc("Content-Type: text/cloud-config\nContent-Transfer-Encoding: quoted-printable\n\ngate: {hostname: a=3Db}", "Content-Type: text/x-shellscript\n\n#!/bin/sh")))
	f.Add([]byte("#!/bin/sh\n"))
	f.Add([]byte("#cloud-config\ngate:\n  networks: [{join: " + netID + ", controller: \"gate://h:1?pin=" + pin + "\"}]\n"))
	f.Add(gzipBomb(8))
	f.Add(nestedBomb(2))
	f.Add([]byte(mimeOf("b", "Content-Type: multipart/mixed; boundary=c\n\n--c\nContent-Type: text/cloud-config\n\ngate: {hostname: n}\n--c--", "Content-Type: text/x-shellscript\nContent-Disposition: attachment; filename=\"\x1b[2J\"\n\n#!")))
	f.Add([]byte("#cloud-config\n\"\\e[2J\": 1\ngate: {hostname: x}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := &udParse{src: nodeconfig.SourceUserData}
		u, err := p.run("fuzz", data)
		// The whole parse stays within its budget and limits.
		if p.unpacked > MaxUnpacked+1 || p.parts > maxParts+1 {
			t.Fatalf("%d bytes unpacked, %d parts", p.unpacked, p.parts)
		}
		if err != nil {
			if hasControl(err.Error()) || len(err.Error()) > maxErrLen+16 && !isNodeconfigError(err) {
				t.Fatalf("error not clean or too long: %.200q", err.Error())
			}
			return
		}
		checkNotes(t, u.Notes)
		if u.Layer == nil {
			return
		}
		for _, w := range u.Layer.Warnings {
			if hasControl(w.String()) {
				t.Fatalf("warning with control characters: %q", w.String())
			}
		}
		if _, err := nodeconfig.Merge(u.Layer); err != nil {
			var e *nodeconfig.Error
			if !errors.As(err, &e) {
				t.Fatalf("merge error is not a *nodeconfig.Error: %v", err)
			}
		}
	})
}

// FuzzNetworkConfig: ParseNetworkConfig never panics, and what it returns
// is a valid set of nodeconfig interfaces.
func FuzzNetworkConfig(f *testing.F) {
	f.Add([]byte("version: 1\nconfig:\n  - {type: physical, name: eth0, mac_address: \"52:54:00:12:34:00\", subnets: [{type: static, address: 192.168.1.10, netmask: 255.255.255.0, gateway: 192.168.1.254}]}\n  - {type: nameserver, address: 1.1.1.1}\n"))
	f.Add([]byte("version: 2\nethernets:\n  e:\n    match: {macaddress: \"52:54:00:12:34:00\"}\n    set-name: eth0\n    addresses: [192.168.1.10/255.255.255.0]\n    gateway4: 192.168.1.254\n"))
	f.Add([]byte("network:\n  version: 2\n  ethernets: {eth0: {dhcp4: yes, routes: [{to: default, via: 10.0.0.1}]}}\n"))
	f.Add([]byte("version: 2\nethernets:\n  \"\\e[2J\": {dhcp4: true, routes: [{to: \"\\r\\n\", via: 1.1.1.1}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		nics, notes, err := ParseNetworkConfig(data)
		if err != nil {
			if hasControl(err.Error()) {
				t.Fatalf("error with control characters: %q", err.Error())
			}
			return
		}
		checkNotes(t, notes)
		if len(nics) > maxNICs {
			t.Fatalf("%d NICs", len(nics))
		}
		for name := range nics {
			if hasControl(name) {
				t.Fatalf("NIC name %q", name)
			}
		}
		c := &nodeconfig.Config{Version: nodeconfig.Version, Interfaces: nics}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted invalid interfaces: %v", err)
		}
	})
}

// FuzzVolume: the FAT and ISO 9660 readers never panic or run away on a
// corrupt or hostile device.
func FuzzVolume(f *testing.F) {
	fat := make([]byte, 4096)
	copy(fat, []byte{0xEB, 0x3C, 0x90})
	fat[11], fat[12], fat[13], fat[14], fat[16], fat[17], fat[19], fat[22] = 0, 2, 1, 1, 2, 16, 8, 1
	fat[510], fat[511] = 0x55, 0xAA
	f.Add(fat)
	iso := make([]byte, 18*isoSector)
	copy(iso[16*isoSector:], append([]byte{1}, "CD001"...))
	copy(iso[17*isoSector:], append([]byte{255}, "CD001"...))
	f.Add(iso)
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := openVolume("fuzz", bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, name := range nocloudFiles { // what Detect reads
			v.readFile(name)
		}
	})
}

func isNodeconfigError(err error) bool {
	var e *nodeconfig.Error
	return errors.As(err, &e)
}

// serveBytes is an HTTP client whose every answer is 200 with body, from
// memory: no packet leaves the process.
func serveBytes(body func(path string) []byte) *http.Client {
	return &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		b := body(r.URL.Path)
		if b == nil {
			return &http.Response{StatusCode: 404, Status: "404 Not Found", Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
		}
		return &http.Response{StatusCode: 200, Status: "200 OK", Body: io.NopCloser(bytes.NewReader(b)), Request: r}, nil
	})}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzDigitalOcean: whatever /metadata/v1.json a service serves, the
// Result that passes the boundary is typed, bounded and clean.
func FuzzDigitalOcean(f *testing.F) {
	f.Add([]byte(`{"droplet_id": 2756294, "hostname": "sample-droplet", "region": "nyc3", "public_keys": ["ssh-ed25519 AAAA x"],
 "interfaces": {"public": [{"mac": "04:01:57:d1:9e:01", "ipv4": {"ip_address": "192.0.2.20", "netmask": "255.255.255.0", "gateway": "192.0.2.1"}}]},
 "dns": {"nameservers": ["8.8.8.8"]}}`))
	f.Add([]byte(`[{"droplet_id": "12", "hostname": "a\u001b[2J", "public_keys": "ssh-rsa AAAA\nx"}]`))
	f.Add([]byte(`{"droplet_id": "1e5", "region": "\r\n"}`))
	f.Add([]byte(`{"droplet_id": 1, "interfaces": {"private": [{"mac": "\u001b", "ipv4": {"ip_address": "1.2.3.4\u202e"}}]}}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		m := &metadataClient{base: "http://fuzz", http: serveBytes(func(p string) []byte {
			if p == "/metadata/v1.json" {
				return doc
			}
			return nil
		})}
		r, err := m.digitalOcean(context.Background())
		if r == nil {
			return
		}
		if berr := r.bound(); err == nil {
			err = berr
		}
		checkResult(t, r, cleanErr(err))
	})
}

// FuzzMetadataBound: the boundary checks on single values (host name,
// instance ID, region, key, note) pass only what they promise.
func FuzzMetadataBound(f *testing.F) {
	f.Add("i-0123456789abcdef0", "ip-172-16-1-10.eu-north-1.compute.internal", "eu-north-1", "ssh-ed25519 AAAA x", "a note")
	f.Add("iid\x1b", "a_b.", "nyc3\n", "ssh-rsa A\nB", "\x1b[2J\u202e")
	f.Add("2756294", "-a.b", "", "", "\xff\xfe")
	f.Fuzz(func(t *testing.T, id, host, region, key, note string) {
		r := &Result{Kind: NoCloud, InstanceID: id, Hostname: host, Region: region, PublicKeys: []string{key, key}, Notes: []string{note, note}}
		err := r.bound()
		checkResult(t, r, cleanErr(err))
		if r.InstanceID != "" && r.InstanceID != id || r.Hostname != "" && r.Hostname != host || r.Region != "" && r.Region != region {
			t.Fatalf("a value changed instead of being kept or left out: %+v", r)
		}
		if (r.InstanceID == "") != (err != nil || id == "") {
			t.Fatalf("instance ID %q left out without an error, or an error with it kept: %v", id, err)
		}
		if r.Hostname != "" && (len(r.Hostname) > 253 || strings.ContainsAny(r.Hostname, " _\x00")) {
			t.Fatalf("host name %q", r.Hostname)
		}
		if s := show(note); hasControl(s) || len(s) > 4*maxShown+8 { // \xNN at most per byte, quotes, "..."
			t.Fatalf("show(%q) = %q", note, s)
		}
		if c := clean(note, maxNoteLen); hasControl(c) || len(c) > maxNoteLen+16 {
			t.Fatalf("clean(%q) = %q", note, c)
		}
	})
}
