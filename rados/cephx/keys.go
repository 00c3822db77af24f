package cephx

// CryptoKey: the encoded form of a Ceph secret (keyring "key = ..." values
// and the session keys carried inside tickets) and the two ciphers behind it.

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/config"
	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// KeyType is a CryptoKey type (CEPH_CRYPTO_*).
type KeyType uint16

// Key types.
const (
	KeyNone       KeyType = 0
	KeyAES        KeyType = 1 // AES-128-CBC, fixed IV ("aes")
	KeyAES256KRB5 KeyType = 2 // RFC 8009 aes256-cts-hmac-sha384-192 ("aes256k")
)

func (t KeyType) String() string {
	switch t {
	case KeyNone:
		return "none"
	case KeyAES:
		return "aes"
	case KeyAES256KRB5:
		return "aes256k"
	}
	return fmt.Sprintf("keytype%d", uint16(t))
}

// KeyUsage numbers select the per-usage derived keys of an aes256k key
// (CEPHX_KEY_USAGE_* in Ceph's CephxProtocol.h and the kernel's
// auth_x_protocol.h). AES keys ignore them.
type KeyUsage uint32

// Key usages used by a client.
const (
	UsageNone                 KeyUsage = 0x00 // challenge hashing, plain encrypt()
	UsageAuthConnectionSecret KeyUsage = 0x03 // mon connection secret, AUTH session key
	UsageTicketSessionKey     KeyUsage = 0x04 // "blob for me" of a ticket
	UsageTicketBlob           KeyUsage = 0x05 // encrypted ticket blob, old AUTH session key
	UsageAuthorize            KeyUsage = 0x10 // authorizer part B, ticket session key
	UsageAuthorizeChallenge   KeyUsage = 0x11 // service's challenge
	UsageAuthorizeReply       KeyUsage = 0x12 // service's reply
)

const (
	aesKeyLen       = 16
	maxKeyLen       = 64 // more than any Ceph key type uses; bounds wire input
	cephAESIV       = "cephsageyudagreg"
	cryptoKeyHeader = 2 + 8 + 2
)

// CryptoKey is a Ceph secret: type, creation time and secret bytes. Use
// ParseKey or DecodeCryptoKey to make one; the zero value is unusable.
//
// It never prints its secret: every fmt verb (%v, %+v, %#v, %s, %q, %x,
// ...) gives a redacted form naming only the type (see Format), and the
// secret bytes sit two pointers below the key, deeper than fmt follows
// when it prints a key nested in another value whose methods it cannot
// call (an unexported field). Base64 and Secret give the secret when it is
// really wanted.
type CryptoKey struct {
	Type    KeyType
	Created time.Time // utime_t; informational
	m       *keyMaterial
}

// keyMaterial is the secret and the ciphers derived from it.
type keyMaterial struct {
	secret *[]byte

	mu   sync.Mutex // guards aes and krb5
	aes  cipher.Block
	krb5 map[KeyUsage]*krb5Keys
}

// Redacted is what a CryptoKey (and any other value that holds a secret)
// prints instead of the secret.
const Redacted = config.Redacted

// NewCryptoKey builds a key from its type and secret bytes (copied).
func NewCryptoKey(t KeyType, secret []byte, created time.Time) (*CryptoKey, error) {
	switch t {
	case KeyAES:
		if len(secret) < aesKeyLen {
			return nil, fmt.Errorf("%w: aes secret of %d bytes, need %d", ErrBadKey, len(secret), aesKeyLen)
		}
	case KeyAES256KRB5:
		if len(secret) < krb5KeyLen {
			return nil, fmt.Errorf("%w: aes256k secret of %d bytes, need %d", ErrBadKey, len(secret), krb5KeyLen)
		}
	default:
		return nil, fmt.Errorf("%w: unsupported key type %d", ErrBadKey, uint16(t))
	}
	if len(secret) > maxKeyLen {
		return nil, fmt.Errorf("%w: secret of %d bytes is too long", ErrBadKey, len(secret))
	}
	b := append([]byte(nil), secret...)
	return &CryptoKey{Type: t, Created: created, m: &keyMaterial{secret: &b}}, nil
}

// secret is the raw secret (nil for the zero value).
func (k *CryptoKey) secret() []byte {
	if k.m == nil {
		return nil
	}
	return *k.m.secret
}

// Secret returns a copy of the raw secret bytes. For session keys these are
// the bytes msgr2 keys its HMAC-SHA256 with.
func (k *CryptoKey) Secret() []byte { return append([]byte(nil), k.secret()...) }

// Equal reports whether two keys have the same type and secret.
func (k *CryptoKey) Equal(o *CryptoKey) bool {
	return k != nil && o != nil && k.Type == o.Type && hmac.Equal(k.secret(), o.secret())
}

// DecodeCryptoKey reads an encoded CryptoKey (u16 type, utime created,
// u16 len, secret) from d.
func DecodeCryptoKey(d *encoding.Decoder) (*CryptoKey, error) {
	t := KeyType(d.U16())
	created := d.Timespec()
	n := int(d.U16())
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	if n > maxKeyLen {
		return nil, fmt.Errorf("%w: secret length %d", ErrBadKey, n)
	}
	secret := d.Raw(n)
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return NewCryptoKey(t, secret, created)
}

// Encode appends the CryptoKey encoding.
func (k *CryptoKey) Encode(e *encoding.Encoder) {
	e.U16(uint16(k.Type))
	if k.Created.IsZero() {
		e.U32(0)
		e.U32(0)
	} else {
		e.Timespec(k.Created)
	}
	e.U16(uint16(len(k.secret())))
	e.Raw(k.secret())
}

// ParseKey decodes a base64 keyring secret ("AQ..." for aes, "Ag..." for
// aes256k).
func ParseKey(s string) (*CryptoKey, error) {
	s = strings.TrimSpace(s)
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: base64: %v", ErrBadKey, err)
	}
	d := encoding.NewDecoder(raw)
	k, err := DecodeCryptoKey(d)
	if err != nil {
		return nil, err
	}
	if d.Len() != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after secret", ErrBadKey, d.Len())
	}
	return k, nil
}

// Base64 returns the key in the base64 form keyrings and ceph-csi's
// userKey use (the secret itself: handle it as such).
func (k *CryptoKey) Base64() string {
	e := encoding.NewEncoder(nil)
	k.Encode(e)
	return base64.StdEncoding.EncodeToString(e.Bytes())
}

// String is the redacted form: the key type only.
func (k CryptoKey) String() string { return k.Type.String() + " key " + Redacted }

// GoString is the redacted form for %#v.
func (k CryptoKey) GoString() string {
	return "cephx.CryptoKey{Type: " + k.Type.String() + ", " + Redacted + "}"
}

// Format prints the redacted form for every verb (%#v: GoString), so no
// format string can print the secret. Its receiver is a value, so a key
// printed by value is redacted too.
func (k CryptoKey) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, k.GoString())
		return
	}
	fmt.Fprint(f, k.String())
}

// Encrypt encrypts plaintext with the given usage (ignored for aes). The
// result is the bare ciphertext, without a length prefix or envelope.
func (k *CryptoKey) Encrypt(usage KeyUsage, plaintext []byte) ([]byte, error) {
	return k.encrypt(usage, plaintext, nil)
}

func (k *CryptoKey) encrypt(usage KeyUsage, plaintext, confounder []byte) ([]byte, error) {
	switch k.Type {
	case KeyAES:
		b, err := k.aesBlock()
		if err != nil {
			return nil, err
		}
		pad := aes.BlockSize - len(plaintext)%aes.BlockSize
		out := make([]byte, len(plaintext)+pad)
		copy(out, plaintext)
		for i := len(plaintext); i < len(out); i++ {
			out[i] = byte(pad)
		}
		cipher.NewCBCEncrypter(b, []byte(cephAESIV)).CryptBlocks(out, out)
		return out, nil
	case KeyAES256KRB5:
		kk, err := k.krb5Keys(usage)
		if err != nil {
			return nil, err
		}
		return kk.encrypt(plaintext, confounder)
	}
	return nil, fmt.Errorf("%w: cannot encrypt with key type %v", ErrBadKey, k.Type)
}

// Decrypt reverses Encrypt.
func (k *CryptoKey) Decrypt(usage KeyUsage, ciphertext []byte) ([]byte, error) {
	switch k.Type {
	case KeyAES:
		if len(ciphertext) == 0 || len(ciphertext)%aes.BlockSize != 0 {
			return nil, fmt.Errorf("%w: aes ciphertext of %d bytes", ErrDecrypt, len(ciphertext))
		}
		b, err := k.aesBlock()
		if err != nil {
			return nil, err
		}
		out := make([]byte, len(ciphertext))
		cipher.NewCBCDecrypter(b, []byte(cephAESIV)).CryptBlocks(out, ciphertext)
		pad := int(out[len(out)-1])
		if pad == 0 || pad > aes.BlockSize {
			return nil, fmt.Errorf("%w: bad padding", ErrDecrypt)
		}
		return out[:len(out)-pad], nil
	case KeyAES256KRB5:
		kk, err := k.krb5Keys(usage)
		if err != nil {
			return nil, err
		}
		return kk.decrypt(ciphertext)
	}
	return nil, fmt.Errorf("%w: cannot decrypt with key type %v", ErrBadKey, k.Type)
}

// HMACSHA256 is Ceph's CryptoKeyHandler::hmac_sha256: HMAC-SHA256 keyed
// with the raw secret.
func (k *CryptoKey) HMACSHA256(data []byte) []byte {
	m := hmac.New(sha256.New, k.secret())
	m.Write(data)
	return m.Sum(nil)
}

func (k *CryptoKey) aesBlock() (cipher.Block, error) {
	if k.m == nil {
		return nil, fmt.Errorf("%w: no secret", ErrBadKey)
	}
	m := k.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.aes == nil {
		b, err := aes.NewCipher((*m.secret)[:aesKeyLen])
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
		}
		m.aes = b
	}
	return m.aes, nil
}

func (k *CryptoKey) krb5Keys(u KeyUsage) (*krb5Keys, error) {
	if k.m == nil {
		return nil, fmt.Errorf("%w: no secret", ErrBadKey)
	}
	m := k.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if kk := m.krb5[u]; kk != nil {
		return kk, nil
	}
	kk, err := newKRB5Keys(*m.secret, uint32(u))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	if m.krb5 == nil {
		m.krb5 = map[KeyUsage]*krb5Keys{}
	}
	m.krb5[u] = kk
	return kk, nil
}
