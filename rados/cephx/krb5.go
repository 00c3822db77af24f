package cephx

// RFC 8009 aes256-cts-hmac-sha384-192 (Kerberos enctype 20), the cipher
// behind Ceph's CEPH_CRYPTO_AES256KRB5 ("aes256k") key type. Ceph derives a
// fresh Ke/Ki pair per key usage number (see the KeyUsage constants) and
// otherwise follows the RFC exactly: zero IV, a 16-byte random confounder,
// AES-256-CBC with ciphertext stealing (CS3, as Kerberos swaps the last two
// blocks) and an HMAC-SHA-384 truncated to 192 bits over IV | ciphertext.

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
)

const (
	krb5KeyLen  = 32 // AES-256 key and Ke length
	krb5MACLen  = 24 // HMAC-SHA-384-192 and Ki length
	krb5Block   = aes.BlockSize
	krb5MinCiph = krb5Block + krb5MACLen // confounder + MAC
)

// krb5KDF is KDF-HMAC-SHA2 from RFC 8009 §3 with an empty context:
// the first n bytes of HMAC-SHA-384(key, 00000001 | usage(BE32) | kind | 00 | n*8(BE32)).
func krb5KDF(key []byte, usage uint32, kind byte, n int) []byte {
	var in [14]byte
	binary.BigEndian.PutUint32(in[0:], 1)
	binary.BigEndian.PutUint32(in[4:], usage)
	in[8] = kind
	in[9] = 0
	binary.BigEndian.PutUint32(in[10:], uint32(n*8))
	m := hmac.New(sha512.New384, key)
	m.Write(in[:])
	return m.Sum(nil)[:n]
}

// krb5Keys holds the per-usage derived keys.
type krb5Keys struct {
	ke cipher.Block
	ki []byte
}

func newKRB5Keys(base []byte, usage uint32) (*krb5Keys, error) {
	ke, err := aes.NewCipher(krb5KDF(base, usage, 0xAA, krb5KeyLen))
	if err != nil {
		return nil, err
	}
	return &krb5Keys{ke: ke, ki: krb5KDF(base, usage, 0x55, krb5MACLen)}, nil
}

func (k *krb5Keys) mac(c []byte) []byte {
	m := hmac.New(sha512.New384, k.ki)
	var iv [krb5Block]byte
	m.Write(iv[:])
	m.Write(c)
	return m.Sum(nil)[:krb5MACLen]
}

// encrypt returns E(Ke, confounder | plaintext) | HMAC(Ki, IV | C)[:24].
// A nil confounder is drawn from crypto/rand.
func (k *krb5Keys) encrypt(plaintext, confounder []byte) ([]byte, error) {
	in := make([]byte, 0, krb5Block+len(plaintext))
	if confounder == nil {
		var c [krb5Block]byte
		if _, err := rand.Read(c[:]); err != nil {
			return nil, err
		}
		in = append(in, c[:]...)
	} else {
		if len(confounder) != krb5Block {
			return nil, fmt.Errorf("cephx: confounder must be %d bytes", krb5Block)
		}
		in = append(in, confounder...)
	}
	in = append(in, plaintext...)
	c := ctsEncrypt(k.ke, in)
	return append(c, k.mac(c)...), nil
}

// decrypt checks the MAC and returns the plaintext without the confounder.
func (k *krb5Keys) decrypt(ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < krb5MinCiph {
		return nil, fmt.Errorf("%w: aes256k ciphertext of %d bytes is shorter than %d", ErrDecrypt, len(ciphertext), krb5MinCiph)
	}
	c := ciphertext[:len(ciphertext)-krb5MACLen]
	if !hmac.Equal(k.mac(c), ciphertext[len(c):]) {
		return nil, fmt.Errorf("%w: aes256k integrity check failed", ErrDecrypt)
	}
	p := ctsDecrypt(k.ke, c)
	return p[krb5Block:], nil
}

// ctsEncrypt is CBC with ciphertext stealing, zero IV, in the Kerberos
// variant (CS3): the last two blocks are always swapped and the final one is
// truncated to the length of the last plaintext block. len(p) must be >= 16.
func ctsEncrypt(b cipher.Block, p []byte) []byte {
	n := len(p)
	if n == krb5Block {
		out := make([]byte, krb5Block)
		b.Encrypt(out, p)
		return out
	}
	nb := (n + krb5Block - 1) / krb5Block
	padded := make([]byte, nb*krb5Block)
	copy(padded, p)
	var iv [krb5Block]byte
	cipher.NewCBCEncrypter(b, iv[:]).CryptBlocks(padded, padded)
	d := n - (nb-1)*krb5Block // bytes in the last block, 1..16
	out := make([]byte, n)
	copy(out, padded[:(nb-2)*krb5Block])
	copy(out[(nb-2)*krb5Block:], padded[(nb-1)*krb5Block:])
	copy(out[(nb-1)*krb5Block:], padded[(nb-2)*krb5Block:(nb-2)*krb5Block+d])
	return out
}

// ctsDecrypt inverts ctsEncrypt. len(c) must be >= 16.
func ctsDecrypt(b cipher.Block, c []byte) []byte {
	n := len(c)
	out := make([]byte, n)
	if n == krb5Block {
		b.Decrypt(out, c)
		return out
	}
	nb := (n + krb5Block - 1) / krb5Block
	d := n - (nb-1)*krb5Block
	head := (nb - 2) * krb5Block
	// The block at position nb-2 on the wire is the CBC output of the last
	// (padded) plaintext block; the trailing d bytes are a prefix of the
	// CBC output of the block before it.
	var x [krb5Block]byte
	b.Decrypt(x[:], c[head:head+krb5Block])
	tail := c[head+krb5Block:]
	var prev [krb5Block]byte // C(n-1) reconstructed
	copy(prev[:], tail)
	copy(prev[d:], x[d:])
	for i := 0; i < d; i++ {
		out[head+krb5Block+i] = x[i] ^ tail[i]
	}
	// CBC-decrypt the head blocks followed by the reconstructed C(n-1).
	buf := make([]byte, head+krb5Block)
	copy(buf, c[:head])
	copy(buf[head:], prev[:])
	var iv [krb5Block]byte
	cipher.NewCBCDecrypter(b, iv[:]).CryptBlocks(buf, buf)
	copy(out, buf)
	return out
}
