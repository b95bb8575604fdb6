package cloud

import (
	"errors"
	"fmt"

	"github.com/gatenet/gate/services/names"
	"github.com/gatenet/gate/services/nodeconfig"
)

// Bounds on what a metadata service or a NoCloud seed can make Gate take.
// They are far above what the clouds serve (a droplet has two NICs and a
// few keys; AWS tokens are about 60 bytes, its items a few hundred).
const (
	maxItem       = 64 << 10 // bytes of one AWS meta-data item
	maxToken      = 1 << 10  // bytes of an IMDSv2 session token
	maxNICs       = 64       // NICs taken from the metadata (AWS: 3 requests each)
	maxDNS        = 16       // DNS servers taken from the metadata
	maxKeys       = 100      // public keys (AWS: a request each)
	maxKeyLen     = 16 << 10 // bytes of one public key (RSA 16384 is under 3 KB)
	maxInstanceID = 128      // bytes of an instance ID
	maxRegion     = 64       // bytes of a region name
)

// checkHostname accepts what can be the node's host name (names.Hostname:
// an RFC 1123 name of at most 64 bytes, the kernel's limit).
func checkHostname(s string) error {
	if !names.Hostname(s) {
		return fmt.Errorf("not a host name (at most %d bytes of labels of 1-63 letters, digits and inner '-', separated by '.')", names.MaxHostname)
	}
	return nil
}

// checkInstanceID accepts 1-128 printable ASCII characters without
// spaces: what DigitalOcean (a number), AWS (i-0123...) and NoCloud seeds
// (iid-local01, a UUID) use. It is logged, shown and stored.
func checkInstanceID(s string) error {
	if s == "" || len(s) > maxInstanceID {
		return fmt.Errorf("not an instance ID (1-%d characters)", maxInstanceID)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return errors.New("not an instance ID (printable ASCII without spaces)")
		}
	}
	return nil
}

// checkRegion accepts region names such as nyc3 and eu-north-1.
func checkRegion(s string) error {
	if len(s) > maxRegion {
		return fmt.Errorf("not a region name (at most %d characters)", maxRegion)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return errors.New("not a region name (letters, digits, '-' and '_')")
		}
	}
	return nil
}

// checkPublicKey accepts one line of an authorized_keys file: printable
// ASCII, no line breaks (a newline in a key would be a second key).
func checkPublicKey(s string) error {
	if s == "" || len(s) > maxKeyLen {
		return fmt.Errorf("not a public key (1-%d bytes)", maxKeyLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return errors.New("not a public key (one line of printable ASCII)")
		}
	}
	return nil
}

// bound is the boundary every Result passes before Detect returns it,
// whatever its source: the instance ID must be one (else an error: the
// user-data cannot be applied once per instance without it), a host name
// or region that is not one is left out with a note, and keys, NICs, DNS
// servers and notes are bounded in number and size and clean.
func (r *Result) bound() error {
	var n notes
	for _, s := range r.Notes {
		n.addf("%s", s)
	}
	var err error
	if r.InstanceID != "" {
		if e := checkInstanceID(r.InstanceID); e != nil {
			err = fmt.Errorf("%s instance ID %s: %v", r.Kind, show(r.InstanceID), e)
			r.InstanceID = ""
		}
	}
	if r.Hostname != "" {
		if e := checkHostname(r.Hostname); e != nil {
			n.addf("%s metadata: host name %s ignored: %v", r.Kind, show(r.Hostname), e)
			r.Hostname = ""
		}
	}
	if r.Region != "" {
		if e := checkRegion(r.Region); e != nil {
			n.addf("%s metadata: region %s ignored: %v", r.Kind, show(r.Region), e)
			r.Region = ""
		}
	}
	var keys []string
	for i, k := range r.PublicKeys {
		if len(keys) == maxKeys {
			n.addf("%s metadata: public keys after the first %d ignored", r.Kind, maxKeys)
			break
		}
		if e := checkPublicKey(k); e != nil {
			n.addf("%s metadata: public key %d ignored: %v", r.Kind, i+1, e)
			continue
		}
		keys = append(keys, k)
	}
	r.PublicKeys = keys
	if len(r.NICs) > maxNICs {
		n.addf("%s metadata: NICs after the first %d ignored", r.Kind, maxNICs)
		r.NICs = r.NICs[:maxNICs]
	}
	if len(r.DNS) > maxDNS {
		n.addf("%s metadata: DNS servers after the first %d ignored", r.Kind, maxDNS)
		r.DNS = r.DNS[:maxDNS]
	}
	if len(r.UserData) > nodeconfig.MaxSize && err == nil {
		err = fmt.Errorf("%s user-data is %d bytes; the limit is %d", r.Kind, len(r.UserData), nodeconfig.MaxSize)
		r.UserData = nil
	}
	r.Notes = n.result()
	return err
}
