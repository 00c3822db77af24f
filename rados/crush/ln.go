package crush

import "math/bits"

// crushLn returns 2^44*log2(xin+1) in fixed point, bit-exact with Ceph's
// crush_ln (straw2 depends on every bit of it).
func crushLn(xin uint32) uint64 {
	x := xin + 1
	iexpon := 15
	if x&0x18000 == 0 {
		b := bits.LeadingZeros32(x&0x1ffff) - 16
		x <<= uint(b)
		iexpon = 15 - b
	}
	index1 := int((x >> 8) << 1)
	rh := rhLHTable[index1-256]
	lh := rhLHTable[index1+1-256]
	xl64 := uint64(x) * rh
	xl64 >>= 48
	result := uint64(iexpon) << (12 + 32)
	index2 := xl64 & 0xff
	lh += llTable[index2]
	lh >>= 48 - 12 - 32
	return result + lh
}
