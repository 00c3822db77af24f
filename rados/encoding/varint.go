package encoding

import "errors"

// errVarint: a varint longer than 10 bytes (more than 64 bits).
var errVarint = errors.New("encoding: varint overflows 64 bits")

// Varint reads a denc_varint: an unsigned integer in 7-bit groups, lowest
// group first, the high bit of each byte set when another byte follows
// (src/include/denc.h).
func (d *Decoder) Varint() uint64 {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		if shift >= 70 {
			d.Fail("varint", errVarint)
			return 0
		}
		b := d.U8()
		if d.Err() != nil {
			return 0
		}
		if shift == 63 && b > 1 {
			d.Fail("varint", errVarint)
			return 0
		}
		v |= uint64(b&0x7f) << shift
		if b&0x80 == 0 {
			return v
		}
	}
}
