package tunnel

import (
	"crypto/rand"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// The crypto-bound limit of the dataplane: WireGuard seals and opens each
// packet once with ChaCha20-Poly1305. `make bench` reports these per core
// next to the tunnel's throughput, so the rest of the per-packet cost
// (syscalls, copies, scheduling, GC) can be read off as the difference.
const benchPacket = 1420 // a full packet at Gate's default MTU

func benchAEAD(b *testing.B, open bool) {
	key := make([]byte, chacha20poly1305.KeySize)
	rand.Read(key)
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		b.Fatal(err)
	}
	nonce := make([]byte, aead.NonceSize())
	plain := make([]byte, benchPacket)
	sealed := aead.Seal(nil, nonce, plain, nil)
	buf := make([]byte, 0, len(sealed))
	b.SetBytes(benchPacket)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if open {
			if _, err := aead.Open(buf[:0], nonce, sealed, nil); err != nil {
				b.Fatal(err)
			}
		} else {
			aead.Seal(buf[:0], nonce, plain, nil)
		}
	}
}

func BenchmarkChaCha20Poly1305Seal(b *testing.B) { benchAEAD(b, false) }
func BenchmarkChaCha20Poly1305Open(b *testing.B) { benchAEAD(b, true) }
