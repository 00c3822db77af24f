package msgr2

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
)

// Connection secret layout for AES-128-GCM (CEPH_CON_MODE_SECURE).
const (
	GCMKeyLen   = 16
	GCMNonceLen = 12
	// ConSecretLen is the minimum connection secret length: the key and the
	// two nonces.
	ConSecretLen = GCMKeyLen + 2*GCMNonceLen
)

// Nonce is a 12-byte GCM nonce: le32 fixed, le64 counter.
type Nonce [GCMNonceLen]byte

// Counter returns the nonce's 64-bit counter.
func (n Nonce) Counter() uint64 { return binary.LittleEndian.Uint64(n[4:]) }

func (n *Nonce) inc() {
	binary.LittleEndian.PutUint64(n[4:], n.Counter()+1)
}

// ClientSecret splits a client's connection secret into the AES key, the
// nonce for frames it receives and the nonce for frames it sends:
// [0:16) key, [16:28) rx nonce, [28:40) tx nonce (the server uses the
// nonces the other way round).
func ClientSecret(secret []byte) (key []byte, rx, tx Nonce, err error) {
	if len(secret) < ConSecretLen {
		return nil, rx, tx, fmt.Errorf("%w: %d bytes, need %d", ErrBadSecret, len(secret), ConSecretLen)
	}
	key = secret[:GCMKeyLen:GCMKeyLen]
	copy(rx[:], secret[GCMKeyLen:])
	copy(tx[:], secret[GCMKeyLen+GCMNonceLen:])
	return key, rx, tx, nil
}

// gcm is one direction of a secure-mode stream.
type gcm struct {
	aead  cipher.AEAD
	nonce Nonce
}

func newGCM(key []byte, nonce Nonce) (*gcm, error) {
	if len(key) != GCMKeyLen {
		return nil, fmt.Errorf("%w: key of %d bytes", ErrBadSecret, len(key))
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	a, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, err
	}
	return &gcm{aead: a, nonce: nonce}, nil
}

// seal encrypts b[:n] in place and writes the tag to b[n:n+16]; b must have
// room for the tag. It advances the nonce.
func (g *gcm) seal(b []byte, n int) {
	g.aead.Seal(b[:0], g.nonce[:], b[:n], nil)
	g.nonce.inc()
}

// open decrypts b (ciphertext followed by the tag) in place and returns the
// plaintext. It advances the nonce whether or not the tag verifies; a
// failure is fatal for the connection anyway.
func (g *gcm) open(b []byte) ([]byte, error) {
	pt, err := g.aead.Open(b[:0], g.nonce[:], b, nil)
	g.nonce.inc()
	if err != nil {
		return nil, ErrAuthTag
	}
	return pt, nil
}
