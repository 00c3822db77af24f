package luks

import (
	"encoding/binary"
	"fmt"
	"hash"
	"io"
)

// The anti-forensic splitter of LUKS (Fruhwirth, "TKS1"; the "luks1" AF
// type of LUKS2): a key of n bytes is stored as stripes*n bytes, all but
// the last stripe random, so that destroying any part of the stored
// material destroys the key. Stripe i (i < stripes-1) is folded into an
// accumulator d as d = H(d XOR s_i); the last stripe is d XOR key.
//
// H ("diffuse") hashes the block in digest-sized pieces, each prefixed
// with its big-endian 32-bit index; a short final piece gets the first
// bytes of its digest.

// afStripes is the only stripe count cryptsetup writes or reads for
// LUKS1 and LUKS2 keyslots.
const afStripes = 4000

// afSize is the stored size of split material: stripes*keyLen rounded
// up to 512-byte sectors.
func afSize(keyLen, stripes int) int {
	n := keyLen * stripes
	return (n + 511) &^ 511
}

// diffuse replaces b with its diffusion under h.
func diffuse(h hash.Hash, b []byte) {
	ds := h.Size()
	var idx [4]byte
	var sum [64]byte
	for i := 0; i*ds < len(b); i++ {
		piece := b[i*ds : min(len(b), (i+1)*ds)]
		h.Reset()
		binary.BigEndian.PutUint32(idx[:], uint32(i))
		h.Write(idx[:])
		h.Write(piece)
		copy(piece, h.Sum(sum[:0]))
	}
}

// afSplit writes the split form of key (len(key)*stripes bytes) into dst,
// drawing the random stripes from rnd.
func afSplit(dst, key []byte, stripes int, newHash func() hash.Hash, rnd io.Reader) error {
	n := len(key)
	if len(dst) < n*stripes {
		return fmt.Errorf("%w: AF buffer %d < %d", ErrInvalid, len(dst), n*stripes)
	}
	h := newHash()
	d := make([]byte, n)
	defer clear(d)
	for i := 0; i < stripes-1; i++ {
		s := dst[i*n : (i+1)*n]
		if _, err := io.ReadFull(rnd, s); err != nil {
			return fmt.Errorf("luks: random stripes: %w", err)
		}
		xorInto(d, s)
		diffuse(h, d)
	}
	last := dst[(stripes-1)*n : stripes*n]
	for j := range last {
		last[j] = d[j] ^ key[j]
	}
	return nil
}

// afMerge recovers a key of len(key) bytes from split material src.
func afMerge(key, src []byte, stripes int, newHash func() hash.Hash) error {
	n := len(key)
	if len(src) < n*stripes {
		return fmt.Errorf("%w: AF material %d < %d", ErrCorrupt, len(src), n*stripes)
	}
	h := newHash()
	d := make([]byte, n)
	defer clear(d)
	for i := 0; i < stripes-1; i++ {
		xorInto(d, src[i*n:(i+1)*n])
		diffuse(h, d)
	}
	last := src[(stripes-1)*n : stripes*n]
	for j := range key {
		key[j] = d[j] ^ last[j]
	}
	return nil
}

func xorInto(dst, src []byte) {
	for i := range dst {
		dst[i] ^= src[i]
	}
}
