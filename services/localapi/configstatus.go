package localapi

import "time"

// States of ConfigStatus.
const (
	ConfigPending  = "pending"  // looking for the sources (the metadata service waits for the network)
	ConfigApplied  = "applied"  // the effective document is valid and in force
	ConfigRejected = "rejected" // the new document is invalid: nothing of it applied, the last good one stays
)

// ConfigStatus is the state of the node's configuration document (see
// services/nodeconfig): the source it was read from, the cloud instance,
// and what was wrong with it. Errors and warnings read as
// "networks[0].address: \"10.0.0.300\" is not an IP address (user-data
// (nocloud), line 7)".
type ConfigStatus struct {
	State      string    `json:"state"`                 // ConfigPending, ConfigApplied or ConfigRejected
	Source     string    `json:"source"`                // "nocloud: /dev/vdb (vfat CIDATA)", "digitalocean: http://169.254.169.254", "none"
	InstanceID string    `json:"instance_id,omitempty"` // the cloud's instance ID
	FirstBoot  bool      `json:"first_boot,omitempty"`  // this instance's user-data was applied on this start
	Checked    time.Time `json:"checked,omitzero"`      // when the sources were last read
	Errors     []string  `json:"errors,omitempty"`      // why the document was rejected
	Warnings   []string  `json:"warnings,omitempty"`    // unknown keys, ignored cloud-config keys, notes
	// Provenance says which layer set each part of the effective
	// document: "hostname: user-data (nocloud)".
	Provenance []string `json:"provenance,omitempty"`
}
