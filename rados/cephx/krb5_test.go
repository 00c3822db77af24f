package cephx

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func counting(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// RFC 8009 Appendix A, aes256-cts-hmac-sha384-192, key usage 2.
const rfc8009Key = "6d404d37faf79f9df0d33568d320669800eb4836472ea8a026d16b7182460c52"

func TestRFC8009KeyDerivation(t *testing.T) {
	base := unhex(t, rfc8009Key)
	for _, tc := range []struct {
		kind byte
		n    int
		want string
	}{
		{0x99, 24, "ef5718be86cc84963d8bbb5031e9f5c4ba41f28faf69e73d"},
		{0xaa, 32, "56ab22bee63d82d7bc5227f6773f8ea7a5eb1c825160c38312980c442e5c7e49"},
		{0x55, 24, "69b16514e3cd8e56b82010d5c73012b622c4d00ffc23ed1f"},
	} {
		if got := krb5KDF(base, 2, tc.kind, tc.n); !bytes.Equal(got, unhex(t, tc.want)) {
			t.Errorf("kind %#x: derived %x, want %s", tc.kind, got, tc.want)
		}
	}
}

func TestRFC8009Encryption(t *testing.T) {
	k, err := NewCryptoKey(KeyAES256KRB5, unhex(t, rfc8009Key), zeroTime)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		n          int
		conf, want string
	}{
		{0, "f764e9fa15c276478b2c7d0c4e5f58e4", "41f53fa5bfe7026d91faf9be959195a058707273a96a40f0a01960621ac612748b9bbfbe7eb4ce3c"},
		{6, "b80d3251c1f6471494256ffe712d0b9a", "4ed7b37c2bcac8f74f23c1cf07e62bc7b75fb3f637b9f559c7f664f69eab7b6092237526ea0d1f61cb20d69d10f2"},
		{16, "53bf8a0d105265d4e276428624ce5e63", "bc47ffec7998eb91e8115cf8d19dac4bbbe2e163e87dd37f49beca92027764f68cf51f14d798c2273f35df574d1f932e40c4ff255b36a266"},
		{21, "763e65367e864f02f55153c7e3b58af1", "40013e2df58e8751957d2878bcd2d6fe101ccfd556cb1eae79db3c3ee86429f2b2a602ac86fef6ecb647d6295fae077a1feb517508d2c16b4192e01f62"},
	} {
		got, err := k.encrypt(2, counting(tc.n), unhex(t, tc.conf))
		if err != nil {
			t.Fatal(err)
		}
		if want := unhex(t, tc.want); !bytes.Equal(got, want) {
			t.Errorf("len %d: encrypt = %x, want %x", tc.n, got, want)
		}
		p, err := k.Decrypt(2, unhex(t, tc.want))
		if err != nil {
			t.Fatalf("len %d: decrypt: %v", tc.n, err)
		}
		if !bytes.Equal(p, counting(tc.n)) {
			t.Errorf("len %d: decrypt = %x", tc.n, p)
		}
		if _, err := k.Decrypt(3, unhex(t, tc.want)); !errors.Is(err, ErrDecrypt) {
			t.Errorf("len %d: wrong usage decrypted: %v", tc.n, err)
		}
		bad := unhex(t, tc.want)
		bad[len(bad)/2] ^= 1
		if _, err := k.Decrypt(2, bad); !errors.Is(err, ErrDecrypt) {
			t.Errorf("len %d: tampered ciphertext decrypted: %v", tc.n, err)
		}
	}
}

func TestCTSRoundTripAllLengths(t *testing.T) {
	k, err := NewCryptoKey(KeyAES256KRB5, unhex(t, rfc8009Key), zeroTime)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n <= 80; n++ {
		c, err := k.Encrypt(UsageAuthorize, counting(n))
		if err != nil {
			t.Fatal(err)
		}
		if len(c) != 16+n+24 {
			t.Fatalf("len %d: ciphertext %d bytes", n, len(c))
		}
		p, err := k.Decrypt(UsageAuthorize, c)
		if err != nil || !bytes.Equal(p, counting(n)) {
			t.Fatalf("len %d: round trip %x, %v", n, p, err)
		}
	}
}
