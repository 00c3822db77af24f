package rbd

import (
	"encoding/binary"
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// Object map states, two bits per data object (include/rbd/object_map_types.h).
const (
	ObjectNonexistent uint8 = 0
	ObjectExists      uint8 = 1
	ObjectPending     uint8 = 2
	ObjectExistsClean uint8 = 3
)

// bitVectorBlock is BitVector::BLOCK_SIZE: data CRCs cover 4 KiB blocks.
const bitVectorBlock = 4096

// maxObjectMapObjects is cls::rbd::MAX_OBJECT_MAP_OBJECT_COUNT.
const maxObjectMapObjects = 256000000

// ObjectMap is a decoded BitVector<2>: the state of each data object.
// Element i lives in byte i/4, most significant bits first.
type ObjectMap struct {
	n    uint64
	data []byte
}

// NewObjectMap returns a map of n objects, all NONEXISTENT.
func NewObjectMap(n uint64) *ObjectMap {
	return &ObjectMap{n: n, data: make([]byte, (n+3)/4)}
}

// Len is the number of objects.
func (m *ObjectMap) Len() uint64 { return m.n }

// Get returns object i's state; out of range reads NONEXISTENT.
func (m *ObjectMap) Get(i uint64) uint8 {
	if i >= m.n {
		return ObjectNonexistent
	}
	return m.data[i/4] >> ((3 - i%4) * 2) & 3
}

// Set sets object i's state (ignored out of range).
func (m *ObjectMap) Set(i uint64, s uint8) {
	if i >= m.n {
		return
	}
	sh := (3 - i%4) * 2
	m.data[i/4] = m.data[i/4]&^(3<<sh) | (s&3)<<sh
}

// Encode appends the BitVector encoding with CRCs, as cls_rbd stores it in
// rbd_object_map.<id> and object_map_load returns it:
//
//	bufferlist header { struct v1/c1 { u64 size } }
//	data bytes (ceil(size/4))
//	bufferlist footer { u32 crc32c(header bufferlist), u32 n, n × u32 crc32c(4 KiB block) }
//
// The CRCs are raw crc32c with seed 0 (Ceph's bufferlist::crc32c(0)).
func (m *ObjectMap) Encode(e *encoding.Encoder) {
	var h encoding.Encoder
	mk := h.StructBegin(1, 1)
	h.U64(m.n)
	h.StructEnd(mk)
	e.Bytes32(h.B)
	e.Raw(m.data)
	fm := e.LenBegin()
	e.U32(encoding.CRC32C(0, h.B))
	blocks := (uint64(len(m.data)) + bitVectorBlock - 1) / bitVectorBlock
	e.U32(uint32(blocks))
	for b := uint64(0); b < blocks; b++ {
		end := min((b+1)*bitVectorBlock, uint64(len(m.data)))
		e.U32(encoding.CRC32C(0, m.data[b*bitVectorBlock:end]))
	}
	e.LenEnd(fm)
}

// DecodeObjectMap parses a BitVector<2> and checks its CRCs when the
// footer carries them (an empty footer means CRCs disabled).
func DecodeObjectMap(b []byte) (*ObjectMap, error) {
	d := encoding.NewDecoder(b)
	hb := d.Bytes()
	hd := encoding.NewDecoder(hb)
	body, _ := hd.Struct(1)
	n := body.U64()
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("%w: object map header: %v", ErrMalformed, err)
	}
	if err := hd.Err(); err != nil {
		return nil, fmt.Errorf("%w: object map header: %v", ErrMalformed, err)
	}
	if n > maxObjectMapObjects {
		return nil, fmt.Errorf("%w: object map of %d objects", ErrMalformed, n)
	}
	dlen := (n + 3) / 4
	if dlen > uint64(d.Len()) {
		return nil, fmt.Errorf("%w: object map of %d objects needs %d data bytes, %d left", ErrMalformed, n, dlen, d.Len())
	}
	data := append([]byte(nil), d.Raw(int(dlen))...)
	footer := d.Bytes()
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("%w: object map footer: %v", ErrMalformed, err)
	}
	if len(footer) > 0 {
		if len(footer) < 8 {
			return nil, fmt.Errorf("%w: object map footer of %d bytes", ErrMalformed, len(footer))
		}
		if got, want := binary.LittleEndian.Uint32(footer), encoding.CRC32C(0, hb); got != want {
			return nil, fmt.Errorf("%w: object map header crc %#x, computed %#x", ErrMalformed, got, want)
		}
		crcs := footer[8:]
		blocks := (dlen + bitVectorBlock - 1) / bitVectorBlock
		if uint64(len(crcs)) != blocks*4 {
			return nil, fmt.Errorf("%w: object map has %d data crcs for %d blocks", ErrMalformed, len(crcs)/4, blocks)
		}
		for i := uint64(0); i < blocks; i++ {
			end := min((i+1)*bitVectorBlock, dlen)
			if got, want := binary.LittleEndian.Uint32(crcs[i*4:]), encoding.CRC32C(0, data[i*bitVectorBlock:end]); got != want {
				return nil, fmt.Errorf("%w: object map block %d crc %#x, computed %#x", ErrMalformed, i, got, want)
			}
		}
	}
	return &ObjectMap{n: n, data: data}, nil
}
