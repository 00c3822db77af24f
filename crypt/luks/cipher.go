package luks

import "fmt"

// CipherXTSPlain64 is the only data and keyslot cipher this package
// implements: AES in XTS mode (IEEE 1619, xts.go) with the "plain64" IV, the
// 64-bit little-endian number of the 512-byte sector counted from the
// start of the segment (plus the segment's iv_tweak), whatever the
// segment's sector size (dm-crypt without iv_large_sectors, and librbd).
const CipherXTSPlain64 = "aes-xts-plain64"

// Cipher encrypts and decrypts a segment's sectors. It is safe for
// concurrent use.
type Cipher struct {
	x          *xtsCipher
	sectorSize int
	ivTweak    uint64
}

// NewCipher returns the sector cipher for spec (only "aes-xts-plain64")
// with a 32-byte (AES-128) or 64-byte (AES-256) key. sectorSize is the
// encryption unit: 512, 1024, 2048 or 4096 bytes.
func NewCipher(spec string, key []byte, sectorSize int, ivTweak uint64) (*Cipher, error) {
	if spec != CipherXTSPlain64 {
		return nil, fmt.Errorf("%w: cipher %q", ErrUnsupported, spec)
	}
	if len(key) != 32 && len(key) != 64 {
		return nil, fmt.Errorf("%w: %s key of %d bytes", ErrUnsupported, spec, len(key))
	}
	if !validSectorSize(sectorSize) {
		return nil, fmt.Errorf("%w: sector size %d", ErrInvalid, sectorSize)
	}
	x, err := newXTS(key)
	if err != nil {
		return nil, err
	}
	return &Cipher{x: x, sectorSize: sectorSize, ivTweak: ivTweak}, nil
}

func validSectorSize(n int) bool {
	return n == 512 || n == 1024 || n == 2048 || n == 4096
}

// SectorSize is the encryption unit in bytes.
func (c *Cipher) SectorSize() int { return c.sectorSize }

// Encrypt encrypts src into dst (they may be the same slice). off is
// the byte offset of src within the segment; off and len(src) must be
// multiples of the sector size.
func (c *Cipher) Encrypt(dst, src []byte, off uint64) {
	c.check(dst, src, off)
	ss := c.sectorSize
	sector := off/512 + c.ivTweak
	for i := 0; i < len(src); i += ss {
		c.x.encrypt(dst[i:i+ss], src[i:i+ss], sector)
		sector += uint64(ss / 512)
	}
}

// Decrypt is the inverse of Encrypt.
func (c *Cipher) Decrypt(dst, src []byte, off uint64) {
	c.check(dst, src, off)
	ss := c.sectorSize
	sector := off/512 + c.ivTweak
	for i := 0; i < len(src); i += ss {
		c.x.decrypt(dst[i:i+ss], src[i:i+ss], sector)
		sector += uint64(ss / 512)
	}
}

// check panics on misuse by the caller (never on device data): the
// lengths are the caller's own buffers.
func (c *Cipher) check(dst, src []byte, off uint64) {
	ss := uint64(c.sectorSize)
	if off%ss != 0 || uint64(len(src))%ss != 0 || len(dst) < len(src) {
		panic(fmt.Sprintf("luks: unaligned crypt: off %d len %d dst %d sector %d", off, len(src), len(dst), ss))
	}
}
