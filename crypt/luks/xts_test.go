package luks

import (
	"bytes"
	"crypto/aes"
	"encoding/hex"
	"math/rand/v2"
	"testing"

	"golang.org/x/crypto/xts"
)

// TestXTSMatchesReference: the own XTS equals golang.org/x/crypto/xts
// for random keys, sectors and lengths (the IEEE vectors run through
// Cipher in kat_test.go).
func TestXTSMatchesReference(t *testing.T) {
	t.Run("default", testXTSMatchesReference)
	if haveAESNI {
		t.Run("portable", func(t *testing.T) {
			useAESNI = false
			defer func() { useAESNI = true }()
			testXTSMatchesReference(t)
		})
	}
}

// TestKeyExpansion: FIPS-197 appendix A's last round keys.
func TestKeyExpansion(t *testing.T) {
	k128 := []byte{0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c}
	ks, nr := expandKey(k128)
	if nr != 10 || hex.EncodeToString(ks[160:]) != "d014f9a8c9ee2589e13f0cc8b6630ca6" {
		t.Fatalf("AES-128: nr %d, last round key %x", nr, ks[160:])
	}
	k256, _ := hex.DecodeString("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
	ks, nr = expandKey(k256)
	if nr != 14 || hex.EncodeToString(ks[224:]) != "fe4890d1e6188d0b046df344706c631e" {
		t.Fatalf("AES-256: nr %d, last round key %x", nr, ks[224:])
	}
}

func testXTSMatchesReference(t *testing.T) {
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
