package tunnel

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
)

// Key is a Curve25519 key, private or public, as WireGuard uses them. Its
// text form is standard base64 (44 characters), as in wg(8) and wg-quick;
// the UAPI speaks hex, which this package converts at its edge.
type Key [32]byte

// GeneratePrivateKey returns a new private key from the system's random
// source, clamped as RFC 7748 and wg genkey do.
func GeneratePrivateKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		return Key{}, fmt.Errorf("generating private key: %w", err)
	}
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
	return k, nil
}

// ParseKey parses the base64 form of a key. The error says what is wrong
// without repeating the input: it may be a private key.
func ParseKey(s string) (Key, error) {
	if len(s) != base64.StdEncoding.EncodedLen(len(Key{})) {
		return Key{}, fmt.Errorf("key is %d characters long, want 44 characters of standard base64", len(s))
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		var ce base64.CorruptInputError
		if errors.As(err, &ce) {
			return Key{}, fmt.Errorf("key is not standard base64: bad character at offset %d", int64(ce))
		}
		return Key{}, errors.New("key is not standard base64")
	}
	if len(b) != len(Key{}) {
		return Key{}, fmt.Errorf("key decodes to %d bytes, want 32", len(b))
	}
	return Key(b), nil
}

// String returns the key in standard base64.
func (k Key) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// MarshalText implements encoding.TextMarshaler (base64).
func (k Key) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (base64).
func (k *Key) UnmarshalText(b []byte) error {
	p, err := ParseKey(string(b))
	if err != nil {
		return err
	}
	*k = p
	return nil
}

// Public returns the public key of private key k (X25519 with the base
// point; k is clamped first, so an unclamped key gives the same result as
// its clamped form, as in WireGuard). The public key of the zero key is the
// zero key, which stands for "no key".
func (k Key) Public() Key {
	if k.IsZero() {
		return Key{}
	}
	priv, err := ecdh.X25519().NewPrivateKey(k[:])
	if err != nil {
		// NewPrivateKey accepts any 32 bytes.
		panic(fmt.Sprintf("tunnel: X25519 private key: %v", err))
	}
	return Key(priv.PublicKey().Bytes())
}

// IsZero reports whether k is all zeros (no key).
func (k Key) IsZero() bool { return k == Key{} }

// hex returns the key as the UAPI writes it.
func (k Key) hex() string { return hex.EncodeToString(k[:]) }

// parseHexKey parses a key as the UAPI writes it.
func parseHexKey(s string) (Key, error) {
	if len(s) != 64 {
		return Key{}, fmt.Errorf("hex key is %d characters long, want 64", len(s))
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return Key{}, errors.New("key is not hex")
	}
	return Key(b), nil
}
