package luks

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"sync"
)

// xtsCipher is AES-XTS (IEEE 1619) for whole data units (sectors) of a
// multiple of 16 bytes, with the data unit number as the tweak
// (little-endian, as plain64 wants). It computes what
// golang.org/x/crypto/xts computes (xts_test.go checks it against it),
// about four times faster for 4 KiB sectors: the tweaks of a sector are
// computed once into a buffer (doubling in GF(2^128) on two uint64
// halves) and XORed in over the whole sector with crypto/subtle.XORBytes
// (vectorised) around the per-block AES calls, instead of per block
// through byte loops. (Decrypting all blocks in one AES-CBC call and
// undoing the chaining measured no faster than per-block calls.)
//
// It is safe for concurrent use (scratch buffers come from a pool).
type xtsCipher struct {
	k1, k2  cipher.Block // data key, tweak key
	scratch sync.Pool    // *xtsScratch
}

const xtsBlock = 16

type xtsScratch struct {
	t []byte // tweaks of one sector
}

func newXTS(key []byte) (*xtsCipher, error) {
	if len(key) != 32 && len(key) != 64 {
		return nil, fmt.Errorf("%w: XTS key of %d bytes", ErrInvalid, len(key))
	}
	k1, err := aes.NewCipher(key[:len(key)/2])
	if err != nil {
		return nil, err
	}
	k2, err := aes.NewCipher(key[len(key)/2:])
	if err != nil {
		return nil, err
	}
	return &xtsCipher{k1: k1, k2: k2}, nil
}

func (c *xtsCipher) getScratch(n int) *xtsScratch {
	s, _ := c.scratch.Get().(*xtsScratch)
	if s == nil {
		s = &xtsScratch{}
	}
	if cap(s.t) < n {
		s.t = make([]byte, n)
	}
	s.t = s.t[:n]
	return s
}

// tweaks fills t with the tweaks of data unit sector: E2(sector) times
// alpha^i for block i.
func (c *xtsCipher) tweaks(t []byte, sector uint64) {
	var t0 [xtsBlock]byte
	binary.LittleEndian.PutUint64(t0[:8], sector)
	c.k2.Encrypt(t0[:], t0[:])
	lo := binary.LittleEndian.Uint64(t0[:8])
	hi := binary.LittleEndian.Uint64(t0[8:])
	for i := 0; i < len(t); i += xtsBlock {
		binary.LittleEndian.PutUint64(t[i:], lo)
		binary.LittleEndian.PutUint64(t[i+8:], hi)
		carry := hi >> 63
		hi = hi<<1 | lo>>63
		lo = lo<<1 ^ carry*0x87
	}
}

// encrypt encrypts one data unit src into dst (same length, a multiple
// of 16; they may be the same slice).
func (c *xtsCipher) encrypt(dst, src []byte, sector uint64) {
	s := c.getScratch(len(src))
	defer c.scratch.Put(s)
	c.tweaks(s.t, sector)
	subtle.XORBytes(dst, src, s.t)
	for i := 0; i < len(dst); i += xtsBlock {
		c.k1.Encrypt(dst[i:i+xtsBlock], dst[i:i+xtsBlock])
	}
	subtle.XORBytes(dst, dst, s.t)
}

// decrypt decrypts one data unit src into dst.
func (c *xtsCipher) decrypt(dst, src []byte, sector uint64) {
	s := c.getScratch(len(src))
	defer c.scratch.Put(s)
	c.tweaks(s.t, sector)
	subtle.XORBytes(dst, src, s.t)
	for i := 0; i < len(dst); i += xtsBlock {
		c.k1.Decrypt(dst[i:i+xtsBlock], dst[i:i+xtsBlock])
	}
	subtle.XORBytes(dst, dst, s.t)
}
