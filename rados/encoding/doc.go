// Package encoding holds Ceph's little-endian wire primitives: fixed-width
// integers, length-prefixed strings and buffers, ceph_timespec, fsids and the
// versioned struct envelope (struct_v, struct_compat, struct_len) that lets a
// decoder skip fields it does not know.
//
// It is the bottom layer of the client: it imports only the standard library
// and knows nothing of sockets, messages or protocols.
//
// # Decoding
//
// A [Decoder] reads from a byte slice with a sticky error: after the first
// short read or bound violation every further call returns a zero value and
// [Decoder.Err] reports the first failure. Callers decode a whole structure
// and check the error once. Every length read from the wire is checked against
// the bytes that remain before anything is allocated.
//
//	d := encoding.NewDecoder(b)
//	s := d.Struct(1)          // versioned envelope, bounded sub-decoder
//	epoch := s.U32()
//	name := s.String()
//	if err := d.Err(); err != nil { ... }
//
// # Encoding
//
// An [Encoder] appends to a byte slice. [Encoder.StructBegin] writes a
// placeholder envelope and [Encoder.StructEnd] fills its length in.
//
// # CRC32C
//
// [CRC32C] computes Ceph's raw crc32c (no pre- or post-inversion), which is
// what ceph_crc32c and the kernel's crc32c return for a given seed.
package encoding
