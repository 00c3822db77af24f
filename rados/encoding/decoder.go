package encoding

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// ErrShort is wrapped by decoding errors caused by input that ends too early.
var ErrShort = errors.New("encoding: short buffer")

// ErrBadLength is wrapped by decoding errors caused by a length or count that
// cannot be satisfied by the remaining input or exceeds a sanity bound.
var ErrBadLength = errors.New("encoding: bad length")

// ErrIncompatible is wrapped when a versioned struct's compat version is newer
// than the decoder understands.
var ErrIncompatible = errors.New("encoding: incompatible struct version")

// DecodeError describes where decoding failed.
type DecodeError struct {
	Offset int    // offset within the top-level buffer
	What   string // what was being decoded
	Err    error  // ErrShort, ErrBadLength, ErrIncompatible or a caller error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("decode %s at offset %d: %v", e.What, e.Offset, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Decoder reads Ceph little-endian encodings from a byte slice. The first
// error sticks: later reads return zero values. Decoders returned by Struct
// and Sub share the error with their parent.
type Decoder struct {
	b    []byte
	off  int // read position within b
	base int // offset of b[0] within the top-level buffer
	err  *error
}

// NewDecoder returns a decoder over b. It does not copy b; slices returned by
// Bytes and Raw alias it.
func NewDecoder(b []byte) *Decoder {
	var err error
	return &Decoder{b: b, err: &err}
}

// Err returns the first error met by this decoder or any decoder derived from it.
func (d *Decoder) Err() error { return *d.err }

// Fail records err (wrapped with the current offset) unless an error is already set.
func (d *Decoder) Fail(what string, err error) {
	if *d.err == nil {
		*d.err = &DecodeError{Offset: d.base + d.off, What: what, Err: err}
	}
}

// Len returns the number of unread bytes.
func (d *Decoder) Len() int {
	if *d.err != nil {
		return 0
	}
	return len(d.b) - d.off
}

// Offset returns the read position relative to the top-level buffer.
func (d *Decoder) Offset() int { return d.base + d.off }

// Rest returns all unread bytes and consumes them.
func (d *Decoder) Rest() []byte {
	if *d.err != nil {
		return nil
	}
	r := d.b[d.off:]
	d.off = len(d.b)
	return r
}

func (d *Decoder) take(n int, what string) []byte {
	if *d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b)-d.off {
		d.Fail(what, ErrShort)
		return nil
	}
	r := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return r
}

// Peek returns the next n bytes without consuming them, or nil when fewer remain.
func (d *Decoder) Peek(n int) []byte {
	if *d.err != nil || n < 0 || n > len(d.b)-d.off {
		return nil
	}
	return d.b[d.off : d.off+n : d.off+n]
}

// Skip discards n bytes.
func (d *Decoder) Skip(n int) { d.take(n, "skip") }

// Raw returns the next n bytes without copying.
func (d *Decoder) Raw(n int) []byte { return d.take(n, "raw bytes") }

// U8 reads one byte.
func (d *Decoder) U8() uint8 {
	b := d.take(1, "u8")
	if b == nil {
		return 0
	}
	return b[0]
}

// Bool reads a one-byte boolean.
func (d *Decoder) Bool() bool { return d.U8() != 0 }

// U16 reads a little-endian uint16.
func (d *Decoder) U16() uint16 {
	b := d.take(2, "u16")
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(b)
}

// U32 reads a little-endian uint32.
func (d *Decoder) U32() uint32 {
	b := d.take(4, "u32")
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

// U64 reads a little-endian uint64.
func (d *Decoder) U64() uint64 {
	b := d.take(8, "u64")
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

// I16 reads a little-endian int16.
func (d *Decoder) I16() int16 { return int16(d.U16()) }

// I32 reads a little-endian int32.
func (d *Decoder) I32() int32 { return int32(d.U32()) }

// I64 reads a little-endian int64.
func (d *Decoder) I64() int64 { return int64(d.U64()) }

// Count reads a u32 element count and checks that at least minElemSize*count
// bytes remain, so callers can allocate count elements safely. minElemSize
// must be the smallest possible encoded size of one element (at least 1 for
// anything but empty elements).
func (d *Decoder) Count(minElemSize int) int {
	n := d.U32()
	if *d.err != nil {
		return 0
	}
	if minElemSize < 1 {
		minElemSize = 1
	}
	if uint64(n)*uint64(minElemSize) > uint64(len(d.b)-d.off) {
		d.Fail("count", fmt.Errorf("%w: %d elements of at least %d bytes, %d bytes left", ErrBadLength, n, minElemSize, len(d.b)-d.off))
		return 0
	}
	return int(n)
}

// Bytes reads a u32 length and that many bytes (a Ceph bufferlist or
// string). The result aliases the input.
func (d *Decoder) Bytes() []byte {
	n := d.U32()
	if *d.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(d.b)-d.off) {
		d.Fail("length-prefixed bytes", fmt.Errorf("%w: %d bytes, %d left", ErrBadLength, n, len(d.b)-d.off))
		return nil
	}
	return d.take(int(n), "bytes")
}

// BytesCopy is Bytes with a copy of the result.
func (d *Decoder) BytesCopy() []byte {
	b := d.Bytes()
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// String reads a u32-length-prefixed string.
func (d *Decoder) String() string { return string(d.Bytes()) }

// Strings reads a u32 count and that many strings.
func (d *Decoder) Strings() []string {
	n := d.Count(4)
	out := make([]string, 0, n)
	for i := 0; i < n && *d.err == nil; i++ {
		out = append(out, d.String())
	}
	return out
}

// Sub reads a u32 length and returns a decoder bounded to that many bytes.
// The parent continues after them.
func (d *Decoder) Sub() *Decoder {
	b := d.Bytes()
	return &Decoder{b: b, base: d.base + d.off - len(b), err: d.err}
}

// Bounded returns a decoder over the next n bytes; the parent skips them.
func (d *Decoder) Bounded(n int) *Decoder {
	start := d.off
	b := d.take(n, "bounded")
	return &Decoder{b: b, base: d.base + start, err: d.err}
}

// StructHeader is a decoded versioned-struct envelope.
type StructHeader struct {
	Version uint8
	Compat  uint8
	Len     uint32
}

// Struct reads a versioned envelope (u8 struct_v, u8 struct_compat,
// u32 struct_len) and returns a decoder bounded to the struct body, so
// unknown trailing fields are skipped when the caller stops reading. It fails
// with ErrIncompatible when struct_compat > maxCompat (pass 255 to accept any).
func (d *Decoder) Struct(maxCompat uint8) (*Decoder, StructHeader) {
	var h StructHeader
	h.Version = d.U8()
	h.Compat = d.U8()
	h.Len = d.U32()
	if *d.err != nil {
		return &Decoder{err: d.err}, h
	}
	if h.Compat > maxCompat {
		d.Fail("struct", fmt.Errorf("%w: compat %d > supported %d (v%d)", ErrIncompatible, h.Compat, maxCompat, h.Version))
		return &Decoder{err: d.err}, h
	}
	if uint64(h.Len) > uint64(len(d.b)-d.off) {
		d.Fail("struct", fmt.Errorf("%w: struct_len %d, %d left", ErrBadLength, h.Len, len(d.b)-d.off))
		return &Decoder{err: d.err}, h
	}
	return d.Bounded(int(h.Len)), h
}

// Timespec reads a ceph_timespec / utime_t (u32 sec, u32 nsec).
func (d *Decoder) Timespec() time.Time {
	sec := d.U32()
	nsec := d.U32()
	if *d.err != nil {
		return time.Time{}
	}
	return time.Unix(int64(sec), int64(nsec)).UTC()
}

// Duration reads a relative utime_t (u32 sec, u32 nsec) as a duration.
func (d *Decoder) Duration() time.Duration {
	sec := d.U32()
	nsec := d.U32()
	return time.Duration(sec)*time.Second + time.Duration(nsec)
}

// UUID reads 16 raw bytes (an fsid or uuid_d).
func (d *Decoder) UUID() (u [16]byte) {
	copy(u[:], d.take(16, "uuid"))
	return u
}
