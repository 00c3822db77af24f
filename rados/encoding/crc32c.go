package encoding

import "hash/crc32"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC32C returns Ceph's raw crc32c of p starting from seed: the value
// ceph_crc32c(seed, p, len) and the Linux kernel's crc32c(seed, p, len)
// return. Unlike hash/crc32 it applies no inversion on entry or exit, so
// chaining is CRC32C(CRC32C(seed, a), b) == CRC32C(seed, a||b).
func CRC32C(seed uint32, p []byte) uint32 {
	return ^crc32.Update(^seed, castagnoli, p)
}
