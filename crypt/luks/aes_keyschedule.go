package luks

import (
	"encoding/binary"
	"sync"
)

// expandKey is the AES key expansion (FIPS-197 section 5.2) for 16- or
// 32-byte keys: nr+1 round keys of 16 bytes in FIPS byte order, as
// AES-NI's AESENC takes them. Only the AES-NI XTS path needs it; the
// standard library keeps its own schedule private.
func expandKey(key []byte) ([]byte, int) {
	nk := len(key) / 4
	nr := nk + 6
	w := make([]uint32, 4*(nr+1))
	for i := 0; i < nk; i++ {
		w[i] = binary.BigEndian.Uint32(key[4*i:])
	}
	sb := sbox()
	sub := func(x uint32) uint32 {
		return uint32(sb[x>>24])<<24 | uint32(sb[x>>16&0xff])<<16 | uint32(sb[x>>8&0xff])<<8 | uint32(sb[x&0xff])
	}
	rcon := uint32(1)
	for i := nk; i < len(w); i++ {
		t := w[i-1]
		switch {
		case i%nk == 0:
			t = sub(t<<8|t>>24) ^ rcon<<24
			rcon = uint32(gmul(byte(rcon), 2))
		case nk > 6 && i%nk == 4:
			t = sub(t)
		}
		w[i] = w[i-nk] ^ t
	}
	out := make([]byte, 4*len(w))
	for i, v := range w {
		binary.BigEndian.PutUint32(out[4*i:], v)
	}
	return out, nr
}

// gmul multiplies in GF(2^8) modulo x^8+x^4+x^3+x+1.
func gmul(a, b byte) byte {
	var p byte
	for b != 0 {
		if b&1 != 0 {
			p ^= a
		}
		hi := a & 0x80
		a <<= 1
		if hi != 0 {
			a ^= 0x1b
		}
		b >>= 1
	}
	return p
}

var (
	sboxOnce  sync.Once
	sboxTable [256]byte
)

// sbox computes the AES S-box: the multiplicative inverse in GF(2^8)
// followed by the affine map.
func sbox() *[256]byte {
	sboxOnce.Do(func() {
		for x := 0; x < 256; x++ {
			var inv byte
			for y := 1; y < 256 && x != 0; y++ {
				if gmul(byte(x), byte(y)) == 1 {
					inv = byte(y)
					break
				}
			}
			s := inv
			for r := 1; r <= 4; r++ {
				s ^= inv<<r | inv>>(8-r)
			}
			sboxTable[x] = s ^ 0x63
		}
	})
	return &sboxTable
}
