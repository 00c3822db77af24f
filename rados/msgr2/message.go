package msgr2

import (
	"encoding/binary"
	"fmt"
)

// MessageHeaderLen is the size of ceph_msg_header2.
const MessageHeaderLen = 41

// Default message priority (CEPH_MSG_PRIO_DEFAULT).
const PriorityDefault = 127

// MessageHeader is ceph_msg_header2, segment 0 of a MESSAGE frame. The
// front, middle and data lengths are the lengths of segments 1..3.
type MessageHeader struct {
	Seq               uint64
	Tid               uint64
	Type              uint16
	Priority          uint16
	Version           uint16
	DataPrePaddingLen uint32
	DataOff           uint16
	AckSeq            uint64
	Flags             uint8
	CompatVersion     uint16
	Reserved          uint16
}

// Put writes the header into b[:41].
func (h *MessageHeader) Put(b []byte) {
	_ = b[MessageHeaderLen-1]
	binary.LittleEndian.PutUint64(b[0:], h.Seq)
	binary.LittleEndian.PutUint64(b[8:], h.Tid)
	binary.LittleEndian.PutUint16(b[16:], h.Type)
	binary.LittleEndian.PutUint16(b[18:], h.Priority)
	binary.LittleEndian.PutUint16(b[20:], h.Version)
	binary.LittleEndian.PutUint32(b[22:], h.DataPrePaddingLen)
	binary.LittleEndian.PutUint16(b[26:], h.DataOff)
	binary.LittleEndian.PutUint64(b[28:], h.AckSeq)
	b[36] = h.Flags
	binary.LittleEndian.PutUint16(b[37:], h.CompatVersion)
	binary.LittleEndian.PutUint16(b[39:], h.Reserved)
}

// Encode appends the header to dst.
func (h *MessageHeader) Encode(dst []byte) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, MessageHeaderLen)...)
	h.Put(dst[n:])
	return dst
}

// Decode decodes a header; trailing bytes are ignored.
func (h *MessageHeader) Decode(b []byte) error {
	if len(b) < MessageHeaderLen {
		return payloadErr(TagMessage, fmt.Errorf("header of %d bytes, need %d", len(b), MessageHeaderLen))
	}
	h.Seq = binary.LittleEndian.Uint64(b[0:])
	h.Tid = binary.LittleEndian.Uint64(b[8:])
	h.Type = binary.LittleEndian.Uint16(b[16:])
	h.Priority = binary.LittleEndian.Uint16(b[18:])
	h.Version = binary.LittleEndian.Uint16(b[20:])
	h.DataPrePaddingLen = binary.LittleEndian.Uint32(b[22:])
	h.DataOff = binary.LittleEndian.Uint16(b[26:])
	h.AckSeq = binary.LittleEndian.Uint64(b[28:])
	h.Flags = b[36]
	h.CompatVersion = binary.LittleEndian.Uint16(b[37:])
	h.Reserved = binary.LittleEndian.Uint16(b[39:])
	return nil
}
