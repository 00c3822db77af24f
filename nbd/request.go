package nbd

import "encoding/binary"

// requestHeader is a transmission-phase request as sent by the client:
//
//	32 bits magic, 16 bits command flags, 16 bits type, 64 bits cookie,
//	64 bits offset, 32 bits length, then length bytes for NBD_CMD_WRITE.
type requestHeader struct {
	flags  uint16
	typ    uint16
	cookie uint64
	offset uint64
	length uint32
}

// parseRequest decodes a 28-byte request header. A bad magic is fatal to
// the connection: the stream cannot be resynchronised.
func parseRequest(b []byte) (requestHeader, error) {
	if len(b) < requestSize {
		return requestHeader{}, protoErrorf("transmission", "short request header (%d bytes)", len(b))
	}
	if m := binary.BigEndian.Uint32(b); m != magicRequest {
		return requestHeader{}, protoErrorf("transmission", "bad request magic %#x", m)
	}
	return requestHeader{
		flags:  binary.BigEndian.Uint16(b[4:]),
		typ:    binary.BigEndian.Uint16(b[6:]),
		cookie: binary.BigEndian.Uint64(b[8:]),
		offset: binary.BigEndian.Uint64(b[16:]),
		length: binary.BigEndian.Uint32(b[24:]),
	}, nil
}

// appendRequest encodes a request header (the client side; for tests).
func appendRequest(dst []byte, h requestHeader) []byte {
	dst = binary.BigEndian.AppendUint32(dst, magicRequest)
	dst = binary.BigEndian.AppendUint16(dst, h.flags)
	dst = binary.BigEndian.AppendUint16(dst, h.typ)
	dst = binary.BigEndian.AppendUint64(dst, h.cookie)
	dst = binary.BigEndian.AppendUint64(dst, h.offset)
	return binary.BigEndian.AppendUint32(dst, h.length)
}

// putSimpleReply encodes a simple reply header into b (16 bytes).
func putSimpleReply(b []byte, errno Errno, cookie uint64) []byte {
	binary.BigEndian.PutUint32(b, magicSimpleReply)
	binary.BigEndian.PutUint32(b[4:], uint32(errno))
	binary.BigEndian.PutUint64(b[8:], cookie)
	return b[:simpleReplySize]
}

// putChunkHeader encodes a structured reply chunk header into b (20 bytes).
func putChunkHeader(b []byte, flags, typ uint16, cookie uint64, length uint32) []byte {
	binary.BigEndian.PutUint32(b, magicStructReply)
	binary.BigEndian.PutUint16(b[4:], flags)
	binary.BigEndian.PutUint16(b[6:], typ)
	binary.BigEndian.PutUint64(b[8:], cookie)
	binary.BigEndian.PutUint32(b[16:], length)
	return b[:chunkHeaderSize]
}

// putOffsetDataHeader encodes the header of an NBD_REPLY_TYPE_OFFSET_DATA
// chunk carrying n bytes at offset (28 bytes; the data follows).
func putOffsetDataHeader(b []byte, flags uint16, cookie, offset uint64, n uint32) []byte {
	putChunkHeader(b, flags, replyOffsetData, cookie, 8+n)
	binary.BigEndian.PutUint64(b[20:], offset)
	return b[:28]
}

// putErrorChunk encodes a complete NBD_REPLY_TYPE_ERROR chunk with no
// message (26 bytes).
func putErrorChunk(b []byte, flags uint16, cookie uint64, errno Errno) []byte {
	putChunkHeader(b, flags, replyError, cookie, 6)
	binary.BigEndian.PutUint32(b[20:], uint32(errno))
	binary.BigEndian.PutUint16(b[24:], 0)
	return b[:26]
}
