package msgr2

import (
	"encoding/binary"
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// Frame layout constants (msgr2.1).
const (
	PreambleLen       = 32 // tag, count, 4 × (u32 len, u16 align), flags, reserved, crc
	MaxSegments       = 4
	CRCLen            = 4
	EpilogueCRCLen    = 1 + 3*CRCLen // late_status + crcs of segments 1..3
	InlineLen         = 48           // segment 0 bytes sealed with the preamble in secure mode
	GCMTagLen         = 16
	GCMBlockLen       = 16
	SecurePreambleLen = PreambleLen + InlineLen + GCMTagLen // 96
	EpilogueSecureLen = GCMBlockLen + GCMTagLen             // 32
)

// Late status values of the epilogue.
const (
	LateStatusAborted  = 0x01
	LateStatusComplete = 0x0e
	lateStatusMask     = 0x0f
)

// Preamble flags.
const FlagCompressed = 0x01

// Segment alignments we announce (they are hints; the kernel uses the same).
const (
	alignDefault = 8
	alignData    = 4096
)

// Limits bound the segment lengths a peer may announce. A zero field means
// the default: 16 MiB for control, front and middle, 64 MiB for data (the
// kernel client's limits).
type Limits struct {
	Control uint32
	Front   uint32
	Middle  uint32
	Data    uint32
}

// Default limits.
const (
	DefaultMaxControl = 16 << 20
	DefaultMaxFront   = 16 << 20
	DefaultMaxMiddle  = 16 << 20
	DefaultMaxData    = 64 << 20
)

func (l Limits) withDefaults() Limits {
	if l.Control == 0 {
		l.Control = DefaultMaxControl
	}
	if l.Front == 0 {
		l.Front = DefaultMaxFront
	}
	if l.Middle == 0 {
		l.Middle = DefaultMaxMiddle
	}
	if l.Data == 0 {
		l.Data = DefaultMaxData
	}
	return l
}

func (l Limits) max(i int) uint32 {
	switch i {
	case 0:
		return l.Control
	case 1:
		return l.Front
	case 2:
		return l.Middle
	default:
		return l.Data
	}
}

// Segment describes one segment in the preamble.
type Segment struct {
	Len   uint32
	Align uint16
}

// Preamble is the decoded 32-byte frame preamble.
type Preamble struct {
	Tag         Tag
	NumSegments int
	Segments    [MaxSegments]Segment
	Flags       uint8
}

// Len returns the length of segment i (0 past NumSegments).
func (p *Preamble) Len(i int) int {
	if i >= p.NumSegments {
		return 0
	}
	return int(p.Segments[i].Len)
}

// newPreamble describes a frame with the given segment lengths, dropping
// trailing empty segments but keeping at least one.
func newPreamble(tag Tag, lens [MaxSegments]int) Preamble {
	p := Preamble{Tag: tag, NumSegments: 1}
	for i := MaxSegments - 1; i >= 0; i-- {
		if lens[i] != 0 {
			p.NumSegments = i + 1
			break
		}
	}
	for i := 0; i < p.NumSegments; i++ {
		a := uint16(alignDefault)
		if i == 3 {
			a = alignData
		}
		p.Segments[i] = Segment{Len: uint32(lens[i]), Align: a}
	}
	return p
}

// Encode writes the preamble, including its crc32c (seed 0 over the first
// 28 bytes), into b[:32].
func (p *Preamble) Encode(b []byte) {
	_ = b[PreambleLen-1]
	b[0] = byte(p.Tag)
	b[1] = byte(p.NumSegments)
	for i := 0; i < MaxSegments; i++ {
		s := p.Segments[i]
		if i >= p.NumSegments {
			s = Segment{}
		}
		binary.LittleEndian.PutUint32(b[2+6*i:], s.Len)
		binary.LittleEndian.PutUint16(b[6+6*i:], s.Align)
	}
	b[26] = p.Flags
	b[27] = 0
	binary.LittleEndian.PutUint32(b[28:], encoding.CRC32C(0, b[:28]))
}

// DecodePreamble checks the crc and the fields of a 32-byte preamble and
// bounds every segment length by lim.
func DecodePreamble(b []byte, lim Limits) (Preamble, error) {
	var p Preamble
	if len(b) < PreambleLen {
		return p, fmt.Errorf("%w: %d bytes", ErrBadPreamble, len(b))
	}
	if got, want := encoding.CRC32C(0, b[:28]), binary.LittleEndian.Uint32(b[28:]); got != want {
		return p, fmt.Errorf("%w: preamble crc %#08x, expected %#08x", ErrBadCRC, got, want)
	}
	p.Tag = Tag(b[0])
	p.NumSegments = int(b[1])
	if p.NumSegments < 1 || p.NumSegments > MaxSegments {
		return p, fmt.Errorf("%w: %d segments", ErrBadPreamble, p.NumSegments)
	}
	lim = lim.withDefaults()
	for i := 0; i < p.NumSegments; i++ {
		p.Segments[i].Len = binary.LittleEndian.Uint32(b[2+6*i:])
		p.Segments[i].Align = binary.LittleEndian.Uint16(b[6+6*i:])
		if p.Segments[i].Len > lim.max(i) {
			return p, fmt.Errorf("%w: %s segment %d is %d bytes, limit %d", ErrTooLarge, p.Tag, i, p.Segments[i].Len, lim.max(i))
		}
	}
	if p.NumSegments > 1 && p.Segments[p.NumSegments-1].Len == 0 {
		return p, fmt.Errorf("%w: last of %d segments is empty", ErrBadPreamble, p.NumSegments)
	}
	p.Flags = b[26]
	if p.Flags&FlagCompressed != 0 {
		return p, ErrCompressed
	}
	return p, nil
}

func padded(n int) int { return (n + GCMBlockLen - 1) &^ (GCMBlockLen - 1) }

// segCRC is the crc of a used segment: crc32c with seed -1.
func segCRC(b []byte) uint32 { return encoding.CRC32C(0xffffffff, b) }
