package luks

import (
	"bytes"
	"crypto/aes"
	"math/rand/v2"
	"testing"

	"golang.org/x/crypto/xts"
)

// TestXTSMatchesReference: the own XTS equals golang.org/x/crypto/xts
// for random keys, sectors and lengths (the IEEE vectors run through
// Cipher in kat_test.go).
func TestXTSMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 200; i++ {
		key := make([]byte, []int{32, 64}[i%2])
		for j := range key {
			key[j] = byte(r.Uint32())
		}
		n := 16 * (1 + r.IntN(300))
		pt := make([]byte, n)
		for j := range pt {
			pt[j] = byte(r.Uint32())
		}
		sector := r.Uint64()
		ref, _ := xts.NewCipher(aes.NewCipher, key)
		own, err := newXTS(key)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]byte, n)
		ref.Encrypt(want, pt, sector)
		got := make([]byte, n)
		own.encrypt(got, pt, sector)
		if !bytes.Equal(got, want) {
			t.Fatalf("encrypt differs (key %d bytes, %d bytes)", len(key), n)
		}
		own.decrypt(got, got, sector)
		if !bytes.Equal(got, pt) {
			t.Fatalf("decrypt differs (key %d bytes, %d bytes)", len(key), n)
		}
	}
}
