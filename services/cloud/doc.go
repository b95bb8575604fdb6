// Package cloud finds where a node's user-data and metadata come from, as
// each cloud really serves them, and turns them into nodeconfig layers:
//
//   - NoCloud (cloud-init's): a vfat or ISO 9660 volume labelled cidata
//     (any case) holding meta-data, user-data and an optional
//     network-config; a seed directory named by the kernel command line
//     (ds=nocloud;s=/path/); or, with ds=nocloud-net;s=http://.../, the same
//     three files over HTTP. The volume is read in place, without mounting
//     it: PID 1 needs no filesystem module for it and leaves no mount behind.
//   - DigitalOcean's metadata service at 169.254.169.254: /metadata/v1.json
//     (droplet_id, hostname, region, interfaces, dns, public_keys) and
//     /metadata/v1/user-data.
//   - AWS's instance metadata service, IMDSv2 only: a session token from
//     PUT /latest/api/token, then every GET carries it. The token's reply
//     leaves with the IP TTL set to the instance's metadata option
//     HttpPutResponseHopLimit (1 unless the AMI or the launch sets it,
//     e.g. to 2): Gate as PID 1 or on the host is within one hop, but a
//     gate in a container behind a bridge never gets the reply and sees
//     AWS as absent (raise the limit to 2 for that). IMDSv1 (GET without
//     a token) is never used.
//   - A preseed file on the image's partition (ReadPreseed).
//
// Detection is explicit and fast: nothing here runs at package init, and
// no packet goes to 169.254.169.254 unless a caller builds a Detector with
// Metadata set and calls Detect. A node that is not in a cloud answers
// "none" within about ConnectTimeout (300 ms by default).
//
// User-data is parsed by ParseUserData (#cloud-config with a gate: key, a
// plain Gate document, or MIME multipart); NoCloud's network-config by
// ParseNetworkConfig. Instance records which instance's user-data was last
// applied, so that user-data is applied once per instance.
//
// This package reads block devices, files and the metadata service; it
// must not change the system: no mounts, no addresses, no routes (the
// reconciler owns those), no hostname.
package cloud
