package cloud

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/gatenet/gate/services/state"
)

// InstanceFile is the state file that records the last applied instance.
const InstanceFile = "cloud-instance.json"

// Instance is what a node remembers of the user-data it applied: whose it
// was. User-data is applied once per instance, as cloud-init's
// per-instance modules are: a reboot of the same instance does not apply
// it again (so a single-use join token is not spent twice, and changes made
// on the console since stay), a new instance (an image copied, a snapshot
// launched) does.
type Instance struct {
	Kind           Kind      `json:"kind"`
	InstanceID     string    `json:"instance_id"`
	UserDataSHA256 string    `json:"user_data_sha256,omitempty"`
	Applied        time.Time `json:"applied"`
}

// Boot says what this boot is to the detected instance.
type Boot struct {
	First bool // no record, or a different instance: apply the user-data
	// UserDataChanged: same instance, but its user-data is not what was
	// applied (AWS lets an operator edit it while the instance is
	// stopped). The caller decides; the default is to report it and keep
	// what was applied.
	UserDataChanged bool
	Last            *Instance // the record, nil if none
}

// CheckInstance compares a detection result with the record in dir. It
// changes nothing; call MarkApplied once the user-data was applied.
// Without an instance ID (Kind None) it is never a first boot.
func CheckInstance(dir *state.Dir, r *Result) (Boot, error) {
	var last Instance
	ok, err := dir.LoadJSON(InstanceFile, &last)
	if err != nil {
		return Boot{}, fmt.Errorf("reading the applied instance: %w", err)
	}
	var b Boot
	if ok {
		b.Last = &last
	}
	if r == nil || r.Kind == None || r.InstanceID == "" {
		return b, nil
	}
	if !ok || last.Kind != r.Kind || last.InstanceID != r.InstanceID {
		b.First = true
		return b, nil
	}
	b.UserDataChanged = last.UserDataSHA256 != digest(r.UserData)
	return b, nil
}

// MarkApplied records, atomically and durably, that r's user-data was
// applied at now. Marking the same instance again is harmless.
func MarkApplied(dir *state.Dir, r *Result, now time.Time) error {
	if r == nil || r.InstanceID == "" {
		return errors.New("marking user-data applied: no instance ID")
	}
	in := Instance{Kind: r.Kind, InstanceID: r.InstanceID, UserDataSHA256: digest(r.UserData), Applied: now.UTC()}
	if err := dir.SaveJSON(InstanceFile, in); err != nil {
		return fmt.Errorf("recording the applied instance: %w", err)
	}
	return nil
}

func digest(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
