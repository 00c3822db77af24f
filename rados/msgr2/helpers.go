package msgr2

// Small encoding helpers shared by the control frames.

import "github.com/csi-gorbd/csi-gorbd/rados/encoding"

// maxListLen bounds the u32 lists of auth frames (methods, modes).
const maxListLen = 64

func encodeU32s(e *encoding.Encoder, v []uint32) {
	e.U32(uint32(len(v)))
	for _, x := range v {
		e.U32(x)
	}
}

func decodeU32s(d *encoding.Decoder) []uint32 {
	n := d.Count(4)
	if n > maxListLen {
		d.Fail("u32 list", encoding.ErrBadLength)
		return nil
	}
	v := make([]uint32, 0, n)
	for i := 0; i < n; i++ {
		v = append(v, d.U32())
	}
	return v
}

func appendU64(dst []byte, v uint64) []byte {
	e := encoding.NewEncoder(dst)
	e.U64(v)
	return e.Bytes()
}

func decodeU64(t Tag, b []byte) (uint64, error) {
	d := encoding.NewDecoder(b)
	v := d.U64()
	return v, payloadErr(t, d.Err())
}
