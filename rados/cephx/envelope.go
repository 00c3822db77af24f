package cephx

// The ceph_x_encrypt envelope. Everything cephx encrypts is
// u8 struct_v (1) | le64 magic 0xff009cad8826aa55 | payload; on the wire the
// ciphertext is usually preceded by a u32 length (encode_encrypt), sometimes
// not (encode_encrypt_enc_bl, used for the authorizer challenge).

import (
	"encoding/binary"
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// EnvelopeMagic is CEPHX_ENC_MAGIC / AUTH_ENC_MAGIC.
const EnvelopeMagic uint64 = 0xff009cad8826aa55

const envelopeHeader = 1 + 8

// Seal encrypts payload inside the envelope and returns the bare ciphertext.
func Seal(k *CryptoKey, usage KeyUsage, payload []byte) ([]byte, error) {
	return seal(k, usage, payload, nil)
}

func seal(k *CryptoKey, usage KeyUsage, payload, confounder []byte) ([]byte, error) {
	p := make([]byte, envelopeHeader, envelopeHeader+len(payload))
	p[0] = 1
	binary.LittleEndian.PutUint64(p[1:], EnvelopeMagic)
	p = append(p, payload...)
	return k.encrypt(usage, p, confounder)
}

// Open decrypts a bare ciphertext and checks the envelope; it returns the payload.
func Open(k *CryptoKey, usage KeyUsage, ciphertext []byte) ([]byte, error) {
	p, err := k.Decrypt(usage, ciphertext)
	if err != nil {
		return nil, err
	}
	if len(p) < envelopeHeader {
		return nil, fmt.Errorf("%w: envelope of %d bytes", ErrDecrypt, len(p))
	}
	if p[0] != 1 || binary.LittleEndian.Uint64(p[1:]) != EnvelopeMagic {
		return nil, fmt.Errorf("%w: bad envelope magic", ErrDecrypt)
	}
	return p[envelopeHeader:], nil
}

// SealLen is Seal with the u32 length prefix (Ceph's encode_encrypt), appended to e.
func SealLen(e *encoding.Encoder, k *CryptoKey, usage KeyUsage, payload []byte) error {
	c, err := Seal(k, usage, payload)
	if err != nil {
		return err
	}
	e.Bytes32(c)
	return nil
}

// OpenLen reads a u32 length + ciphertext from d and opens it (decode_decrypt).
func OpenLen(d *encoding.Decoder, k *CryptoKey, usage KeyUsage) ([]byte, error) {
	c := d.Bytes()
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return Open(k, usage, c)
}

// ChallengeKey computes the "key" field of CephXAuthenticate
// (cephx_calc_client_server_challenge): the blob is
// le64 server_challenge | le64 client_challenge.
//
//   - aes: encode_encrypt the blob (u32 length + ciphertext of the
//     envelope, 4+32 bytes) and XOR the complete little-endian 8-byte words,
//     starting at the length prefix (the last 4 bytes are ignored).
//   - aes256k: the confounder makes ciphertext random, so Ceph instead takes
//     HMAC-SHA256 of the bare blob keyed with the raw secret and XOR-folds
//     its four words.
func ChallengeKey(k *CryptoKey, serverChallenge, clientChallenge uint64) (uint64, error) {
	var blob [16]byte
	binary.LittleEndian.PutUint64(blob[0:], serverChallenge)
	binary.LittleEndian.PutUint64(blob[8:], clientChallenge)
	var folded []byte
	switch k.Type {
	case KeyAES:
		e := encoding.NewEncoder(nil)
		if err := SealLen(e, k, UsageNone, blob[:]); err != nil {
			return 0, err
		}
		folded = e.Bytes()
	case KeyAES256KRB5:
		folded = k.HMACSHA256(blob[:])
	default:
		return 0, fmt.Errorf("%w: key type %v", ErrBadKey, k.Type)
	}
	var x uint64
	for i := 0; i+8 <= len(folded); i += 8 {
		x ^= binary.LittleEndian.Uint64(folded[i:])
	}
	return x, nil
}
