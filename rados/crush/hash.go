package crush

// HashRjenkins1 is the only hash CRUSH defines (bucket hash 0).
const HashRjenkins1 = 0

const hashSeed = 1315423911

// JenkinsMix is Robert Jenkins' 96-bit mix, shared by CRUSH's hashes and
// Ceph's rjenkins object-name hash (package osdmap).
func JenkinsMix(a, b, c uint32) (uint32, uint32, uint32) {
	a -= b
	a -= c
	a ^= c >> 13
	b -= c
	b -= a
	b ^= a << 8
	c -= a
	c -= b
	c ^= b >> 13
	a -= b
	a -= c
	a ^= c >> 12
	b -= c
	b -= a
	b ^= a << 16
	c -= a
	c -= b
	c ^= b >> 5
	a -= b
	a -= c
	a ^= c >> 3
	b -= c
	b -= a
	b ^= a << 10
	c -= a
	c -= b
	c ^= b >> 15
	return a, b, c
}

// Hash2 is crush_hash32_2: a hash of two 32-bit values. Unknown hash types
// give 0, as in Ceph.
func Hash2(typ uint8, a, b uint32) uint32 {
	if typ != HashRjenkins1 {
		return 0
	}
	h := hashSeed ^ a ^ b
	x, y := uint32(231232), uint32(1232)
	a, b, h = JenkinsMix(a, b, h)
	x, a, h = JenkinsMix(x, a, h)
	b, y, h = JenkinsMix(b, y, h)
	_, _ = x, y
	return h
}

// Hash3 is crush_hash32_3.
func Hash3(typ uint8, a, b, c uint32) uint32 {
	if typ != HashRjenkins1 {
		return 0
	}
	h := hashSeed ^ a ^ b ^ c
	x, y := uint32(231232), uint32(1232)
	a, b, h = JenkinsMix(a, b, h)
	c, x, h = JenkinsMix(c, x, h)
	y, a, h = JenkinsMix(y, a, h)
	b, x, h = JenkinsMix(b, x, h)
	y, c, h = JenkinsMix(y, c, h)
	_, _, _, _, _ = a, b, c, x, y
	return h
}

// Hash4 is crush_hash32_4.
func Hash4(typ uint8, a, b, c, d uint32) uint32 {
	if typ != HashRjenkins1 {
		return 0
	}
	h := hashSeed ^ a ^ b ^ c ^ d
	x, y := uint32(231232), uint32(1232)
	a, b, h = JenkinsMix(a, b, h)
	c, d, h = JenkinsMix(c, d, h)
	a, x, h = JenkinsMix(a, x, h)
	y, b, h = JenkinsMix(y, b, h)
	c, x, h = JenkinsMix(c, x, h)
	y, d, h = JenkinsMix(y, d, h)
	_, _, _, _, _, _ = a, b, c, d, x, y
	return h
}
