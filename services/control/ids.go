package control

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// NewNetworkID returns a fresh random network ID: 16 lower-case hex digits.
func NewNetworkID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// CheckNetworkID reports whether s is a well-formed network ID.
func CheckNetworkID(s string) error {
	if len(s) != 16 || !isLowerHex(s) {
		return fmt.Errorf("network ID %q: want 16 hex digits", s)
	}
	return nil
}

// NodeIDFromKey derives a node ID (10 hex digits) from a node's identity
// public key. It is a name, not a secret: anyone can compute it.
func NodeIDFromKey(pub []byte) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:5])
}

// NodeIDOfPin returns the node ID of the key whose pin (as ParsePin
// returns it) is pin: its first 10 hex digits.
func NodeIDOfPin(pin string) string {
	return strings.TrimPrefix(pin, "sha256:")[:10]
}

// CheckNodeID reports whether s is a well-formed node ID.
func CheckNodeID(s string) error {
	if len(s) != 10 || !isLowerHex(s) {
		return fmt.Errorf("node ID %q: want 10 hex digits", s)
	}
	return nil
}

// NormalizeID lower-cases an ID typed by a person.
func NormalizeID(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func isLowerHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("90s", "24h"); it also accepts a number of seconds.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("duration: want a string like \"90s\" or a number of seconds, got %s", b)
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}
