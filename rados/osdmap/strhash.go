package osdmap

import "github.com/csi-gorbd/csi-gorbd/rados/crush"

// Object hash types (pg_pool_t object_hash, CEPH_STR_HASH_*).
const (
	HashLinux    = 1
	HashRjenkins = 2
)

// le32 reads up to four bytes little-endian (missing bytes are zero).
func le32(k []byte) uint32 {
	var v uint32
	for i := len(k) - 1; i >= 0; i-- {
		v = v<<8 | uint32(k[i])
	}
	return v
}

// rjenkinsString is ceph_str_hash_rjenkins (Bob Jenkins' lookup2 hash).
func rjenkinsString(k []byte) uint32 {
	length := uint32(len(k))
	a, b, c := uint32(0x9e3779b9), uint32(0x9e3779b9), uint32(0)
	for len(k) >= 12 {
		a += le32(k[0:4])
		b += le32(k[4:8])
		c += le32(k[8:12])
		a, b, c = crush.JenkinsMix(a, b, c)
		k = k[12:]
	}
	c += length
	// The last 11 bytes: a gets bytes 0-3, b 4-7, c 8-10 shifted up one byte
	// (its low byte holds the length).
	switch n := len(k); {
	case n > 8:
		c += le32(k[8:]) << 8
		b += le32(k[4:8])
		a += le32(k[0:4])
	case n > 4:
		b += le32(k[4:])
		a += le32(k[0:4])
	default:
		a += le32(k)
	}
	_, _, c = crush.JenkinsMix(a, b, c)
	return c
}

// linuxString is ceph_str_hash_linux, the Linux dcache hash.
func linuxString(k []byte) uint32 {
	var h uint32
	for _, c := range k {
		h = (h + uint32(c)<<4 + uint32(c)>>4) * 11
	}
	return h
}

// StrHash is ceph_str_hash: the object name hash of the given type, or
// 0xffffffff for an unknown type, as Ceph returns.
func StrHash(typ uint8, k []byte) uint32 {
	switch typ {
	case HashLinux:
		return linuxString(k)
	case HashRjenkins:
		return rjenkinsString(k)
	}
	return 0xffffffff
}
