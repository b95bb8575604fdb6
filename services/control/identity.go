package control

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Identity is a long-lived Ed25519 key pair: a node's identity towards the
// controller, or the controller's identity towards everyone.
type Identity struct {
	Private ed25519.PrivateKey
}

// NewIdentity makes a fresh identity from the system's random source.
func NewIdentity() (Identity, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Identity{}, fmt.Errorf("generating identity key: %w", err)
	}
	return Identity{Private: priv}, nil
}

// Public returns the identity's public key.
func (id Identity) Public() ed25519.PublicKey { return id.Private.Public().(ed25519.PublicKey) }

// NodeID is the node ID derived from the identity's public key.
func (id Identity) NodeID() string { return NodeIDFromKey(id.Public()) }

// Pin is the fingerprint of the identity's public key, as put in join strings.
func (id Identity) Pin() string { return PinOf(id.Public()) }

// MarshalPEM encodes the private key as PKCS#8 PEM.
func (id Identity) MarshalPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(id.Private)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseIdentityPEM decodes a key written by MarshalPEM.
func ParseIdentityPEM(b []byte) (Identity, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return Identity{}, errors.New("identity key: no PEM PRIVATE KEY block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return Identity{}, fmt.Errorf("identity key: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return Identity{}, fmt.Errorf("identity key: want Ed25519, got %T", k)
	}
	return Identity{Private: priv}, nil
}

// Certificate returns a self-signed TLS certificate for the identity. Peers
// never check its names or dates, only its key (through the pin or the node
// ID), so it is long-lived and carries the node ID as its common name only
// for people reading packet captures.
func (id Identity) Certificate() (tls.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "gate " + id.NodeID()},
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{"gate"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, id.Public(), id.Private)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signing certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: id.Private}, nil
}

// PinOf returns "sha256:" and the hex SHA-256 of an Ed25519 public key.
func PinOf(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParsePin checks and normalises a pin.
func ParsePin(s string) (string, error) {
	h, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(s)), "sha256:")
	if !ok || len(h) != 64 || !isLowerHex(h) {
		return "", fmt.Errorf("pin %q: want sha256: followed by 64 hex digits", s)
	}
	return "sha256:" + h, nil
}

// peerKey extracts the Ed25519 key of the leaf certificate a peer presented.
func peerKey(certs []*x509.Certificate) (ed25519.PublicKey, error) {
	if len(certs) == 0 {
		return nil, errors.New("no certificate presented")
	}
	k, ok := certs[0].PublicKey.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("certificate key is %T, want Ed25519", certs[0].PublicKey)
	}
	return k, nil
}

// PeerNodeID returns the node ID proven by a TLS connection's client
// certificate, or an error if the client presented none.
func PeerNodeID(cs *tls.ConnectionState) (string, error) {
	if cs == nil {
		return "", errors.New("not a TLS connection")
	}
	k, err := peerKey(cs.PeerCertificates)
	if err != nil {
		return "", err
	}
	return NodeIDFromKey(k), nil
}

// ServerTLS is the controller's TLS configuration: its own certificate, and
// a request (not a demand) for a client certificate, which member calls need
// and admin calls do not. Client certificates are self-signed; the handler
// derives identity from the key, so no chain is verified here.
func ServerTLS(id Identity) (*tls.Config, error) {
	cert, err := id.Certificate()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequestClientCert,
		MinVersion:   tls.VersionTLS13,
		// Small first records help browsers render early; members read
		// whole answers, and a large network's full configuration would
		// go out in thousands of 1 kB records, a syscall each.
		DynamicRecordSizingDisabled: true,
	}, nil
}

// ClientTLS is a client's TLS configuration: it accepts the server only if
// the server's key matches pin, and presents the client's identity, if any.
func ClientTLS(pin string, client *Identity) (*tls.Config, error) {
	pin, err := ParsePin(pin)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		// The chain is self-signed: verification is the pin check below,
		// which runs on every handshake, including resumed ones.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			k, err := peerKey(cs.PeerCertificates)
			if err != nil {
				return fmt.Errorf("controller: %w", err)
			}
			if got := PinOf(k); got != pin {
				return fmt.Errorf("controller key %s does not match pin %s", got, pin)
			}
			return nil
		},
	}
	if client != nil {
		cert, err := client.Certificate()
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
