package cephx

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

var zeroTime time.Time

func TestAESKnownCiphertext(t *testing.T) {
	// Ceph CBC with IV "cephsageyudagreg", key "1234567890123456", "abc".
	k, err := NewCryptoKey(KeyAES, []byte("1234567890123456"), zeroTime)
	if err != nil {
		t.Fatal(err)
	}
	c, err := k.Encrypt(UsageNone, []byte("abc"))
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, "0ba3d1290cc47bb370aa355b24a7d152"); !bytes.Equal(c, want) {
		t.Fatalf("ciphertext %x, want %x", c, want)
	}
	p, err := k.Decrypt(UsageNone, c)
	if err != nil || string(p) != "abc" {
		t.Fatalf("decrypt %q %v", p, err)
	}
	for n := 0; n < 40; n++ {
		c, _ := k.Encrypt(UsageNone, counting(n))
		if len(c) != (n/16+1)*16 {
			t.Fatalf("len %d: ciphertext %d", n, len(c))
		}
		p, err := k.Decrypt(UsageNone, c)
		if err != nil || !bytes.Equal(p, counting(n)) {
			t.Fatalf("len %d: %x %v", n, p, err)
		}
	}
}

func TestEnvelope(t *testing.T) {
	for _, k := range testKeys(t) {
		c, err := Seal(k, UsageTicketBlob, []byte("hello"))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Open(k, UsageTicketBlob, c)
		if err != nil || string(p) != "hello" {
			t.Fatalf("%v: open %q %v", k.Type, p, err)
		}
		// Encrypt without the envelope: Open must reject the magic.
		raw, _ := k.Encrypt(UsageTicketBlob, []byte("0123456789abcdef"))
		if _, err := Open(k, UsageTicketBlob, raw); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("%v: missing magic accepted: %v", k.Type, err)
		}
	}
}

func testKeys(t testing.TB) []*CryptoKey {
	a, err := NewCryptoKey(KeyAES, []byte("1234567890123456"), zeroTime)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewCryptoKey(KeyAES256KRB5, unhex(t, rfc8009Key), zeroTime)
	if err != nil {
		t.Fatal(err)
	}
	return []*CryptoKey{a, b}
}

func TestParseKey(t *testing.T) {
	// CryptoKey test instance from ceph-dencoder: type 1, created 123.456, "1234567890123456".
	raw := unhex(t, "01007b000000c8010000100031323334353637383930313233343536")
	k, err := ParseKey(b64(raw))
	if err != nil {
		t.Fatal(err)
	}
	if k.Type != KeyAES || string(k.Secret()) != "1234567890123456" || k.Created.Unix() != 123 {
		t.Fatalf("decoded %+v", k)
	}
	if got := k.Base64(); got != b64(raw) {
		t.Fatalf("re-encoded %s", got)
	}
	for _, bad := range []string{"", "!!!", b64(raw[:20]), b64(append(raw, 0)),
		b64(unhex(t, "03007b000000c8010000100031323334353637383930313233343536"))} {
		if _, err := ParseKey(bad); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParseKey(%q) = %v", bad, err)
		}
	}
}

func TestChallengeKeyAES256(t *testing.T) {
	// Cross-check value published with an independent implementation
	// (HMAC-SHA256 of the blob under the raw secret, folded).
	k, err := NewCryptoKey(KeyAES256KRB5, counting(32), zeroTime)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ChallengeKey(k, 0x1122334455667788, 0x0102030405060708)
	if err != nil {
		t.Fatal(err)
	}
	if got != 0xff603040e5eb4b04 {
		t.Fatalf("challenge key %#x", got)
	}
}

// TestCryptoKeyRedacted: no fmt verb prints a key's secret, whether the
// key is printed alone, by value, or inside structs, slices and maps;
// Base64 (and Secret) give it explicitly.
func TestCryptoKeyRedacted(t *testing.T) {
	for _, k := range testKeys(t) {
		b := k.Base64()
		if back, err := ParseKey(b); err != nil || !back.Equal(k) {
			t.Fatalf("Base64 does not round-trip: %v", err)
		}
		secret := k.Secret()
		leaks := []string{b, base64.StdEncoding.EncodeToString(secret), hex.EncodeToString(secret),
			fmt.Sprint(secret), fmt.Sprintf("%x", secret), string(secret)}
		type holder struct {
			Key         *CryptoKey
			hidden      *CryptoKey
			hiddenValue CryptoKey
			Keys        []*CryptoKey
			Values      []CryptoKey
			ByName      map[string]*CryptoKey
		}
		h := holder{Key: k, hidden: k, hiddenValue: *k, Keys: []*CryptoKey{k}, Values: []CryptoKey{*k},
			ByName: map[string]*CryptoKey{"client.admin": k}}
		kr := Keyring{"client.admin": k}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
			for what, v := range map[string]any{"key": k, "value": *k, "holder": h, "holder pointer": &h, "keyring": kr} {
				out := fmt.Sprintf(verb, v)
				for _, leak := range leaks {
					if strings.Contains(out, leak) {
						t.Errorf("%s of %s %s prints the secret: %s", verb, k.Type, what, out)
					}
				}
			}
		}
		want := k.Type.String() + " key " + Redacted
		for _, verb := range []string{"%v", "%s", "%+v"} {
			if got := fmt.Sprintf(verb, k); got != want {
				t.Errorf("%s: %q, want %q", verb, got, want)
			}
		}
		if got := fmt.Sprintf("%#v", k); !strings.Contains(got, Redacted) || !strings.Contains(got, k.Type.String()) {
			t.Errorf("%%#v: %q", got)
		}
	}
}
