package encoding

import (
	"encoding/binary"
	"time"
)

// Encoder appends Ceph little-endian encodings to a byte slice.
// The zero value is ready to use.
type Encoder struct {
	B []byte
}

// NewEncoder returns an encoder that appends to buf (which may be nil).
func NewEncoder(buf []byte) *Encoder { return &Encoder{B: buf} }

// Bytes returns the encoded bytes.
func (e *Encoder) Bytes() []byte { return e.B }

// Len returns the number of bytes encoded so far.
func (e *Encoder) Len() int { return len(e.B) }

// U8 appends one byte.
func (e *Encoder) U8(v uint8) { e.B = append(e.B, v) }

// Bool appends a one-byte boolean.
func (e *Encoder) Bool(v bool) {
	if v {
		e.U8(1)
	} else {
		e.U8(0)
	}
}

// U16 appends a little-endian uint16.
func (e *Encoder) U16(v uint16) { e.B = binary.LittleEndian.AppendUint16(e.B, v) }

// U32 appends a little-endian uint32.
func (e *Encoder) U32(v uint32) { e.B = binary.LittleEndian.AppendUint32(e.B, v) }

// U64 appends a little-endian uint64.
func (e *Encoder) U64(v uint64) { e.B = binary.LittleEndian.AppendUint64(e.B, v) }

// I16 appends a little-endian int16.
func (e *Encoder) I16(v int16) { e.U16(uint16(v)) }

// I32 appends a little-endian int32.
func (e *Encoder) I32(v int32) { e.U32(uint32(v)) }

// I64 appends a little-endian int64.
func (e *Encoder) I64(v int64) { e.U64(uint64(v)) }

// Raw appends b as is.
func (e *Encoder) Raw(b []byte) { e.B = append(e.B, b...) }

// Bytes32 appends a u32 length and b (a Ceph bufferlist).
func (e *Encoder) Bytes32(b []byte) {
	e.U32(uint32(len(b)))
	e.B = append(e.B, b...)
}

// String appends a u32 length and s.
func (e *Encoder) String(s string) {
	e.U32(uint32(len(s)))
	e.B = append(e.B, s...)
}

// Strings appends a u32 count and each string.
func (e *Encoder) Strings(ss []string) {
	e.U32(uint32(len(ss)))
	for _, s := range ss {
		e.String(s)
	}
}

// Timespec appends a ceph_timespec (u32 sec, u32 nsec).
func (e *Encoder) Timespec(t time.Time) {
	if t.IsZero() {
		e.U32(0)
		e.U32(0)
		return
	}
	e.U32(uint32(t.Unix()))
	e.U32(uint32(t.Nanosecond()))
}

// UUID appends 16 raw bytes.
func (e *Encoder) UUID(u [16]byte) { e.B = append(e.B, u[:]...) }

// StructBegin appends a versioned envelope with a placeholder length and
// returns a mark to pass to StructEnd.
func (e *Encoder) StructBegin(version, compat uint8) int {
	e.U8(version)
	e.U8(compat)
	e.U32(0)
	return len(e.B)
}

// StructEnd fills in the length of the struct started at mark.
func (e *Encoder) StructEnd(mark int) {
	binary.LittleEndian.PutUint32(e.B[mark-4:mark], uint32(len(e.B)-mark))
}

// LenBegin appends a u32 length placeholder and returns a mark for LenEnd.
func (e *Encoder) LenBegin() int {
	e.U32(0)
	return len(e.B)
}

// LenEnd fills in the length of the bytes appended since mark.
func (e *Encoder) LenEnd(mark int) {
	binary.LittleEndian.PutUint32(e.B[mark-4:mark], uint32(len(e.B)-mark))
}
