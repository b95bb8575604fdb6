package cloud

import (
	"bytes"
	"errors"
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
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := ParseUserData("fuzz", data)
		if err != nil || u.Layer == nil {
			return
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
	f.Fuzz(func(t *testing.T, data []byte) {
		nics, _, err := ParseNetworkConfig(data)
		if err != nil {
			return
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
