package nbd

import (
	"encoding/binary"
	"errors"
)

// maxOptionLen bounds the payload of one option during the handshake. The
// largest legitimate option is NBD_OPT_GO with a 4096-byte name and a few
// information requests; anything much larger is treated as an attack.
const maxOptionLen = 64 << 10

// maxOptions bounds how many options one client may send before it picks
// an export; a client that haggles for longer is disconnected.
const maxOptions = 1024

var errShortOption = errors.New("option payload too short")

// optionHeader is the fixed part of a client option: IHAVEOPT, the option
// code and the payload length.
type optionHeader struct {
	code   uint32
	length uint32
}

// parseOptionHeader decodes a 16-byte option header. It fails on a bad
// magic, which leaves the stream impossible to follow.
func parseOptionHeader(b []byte) (optionHeader, error) {
	if len(b) < optionHeaderSize {
		return optionHeader{}, errShortOption
	}
	if binary.BigEndian.Uint64(b) != magicOption {
		return optionHeader{}, protoErrorf("handshake", "bad option magic %#x", binary.BigEndian.Uint64(b))
	}
	return optionHeader{
		code:   binary.BigEndian.Uint32(b[8:]),
		length: binary.BigEndian.Uint32(b[12:]),
	}, nil
}

// appendOptionHeader encodes an option header (the client side; used by
// tests and by the fuzz seeds).
func appendOptionHeader(dst []byte, code uint32, length uint32) []byte {
	dst = binary.BigEndian.AppendUint64(dst, magicOption)
	dst = binary.BigEndian.AppendUint32(dst, code)
	return binary.BigEndian.AppendUint32(dst, length)
}

// infoRequest is the payload of NBD_OPT_INFO and NBD_OPT_GO: an export name
// and a list of information types. infos aliases the option payload and
// holds 2 bytes per type.
type infoRequest struct {
	name  string
	infos []byte
}

// parseInfoRequest decodes the payload of NBD_OPT_INFO / NBD_OPT_GO:
//
//	32 bits name length, name, 16 bits count, count × 16-bit info types.
//
// The lengths must add up exactly to len(b).
func parseInfoRequest(b []byte) (infoRequest, error) {
	if len(b) < 6 {
		return infoRequest{}, errShortOption
	}
	n := binary.BigEndian.Uint32(b)
	if n > maxStringLen {
		return infoRequest{}, errors.New("export name longer than 4096 bytes")
	}
	if uint64(len(b)) < 4+uint64(n)+2 {
		return infoRequest{}, errors.New("export name longer than the option")
	}
	name := b[4 : 4+n]
	rest := b[4+n:]
	count := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) != 2*count {
		return infoRequest{}, errors.New("information request count does not match the option length")
	}
	return infoRequest{name: string(name), infos: rest}, nil
}

// wants reports whether the client asked for information type t.
func (r infoRequest) wants(t uint16) bool {
	for i := 0; i+1 < len(r.infos); i += 2 {
		if binary.BigEndian.Uint16(r.infos[i:]) == t {
			return true
		}
	}
	return false
}

// appendInfoRequest encodes an NBD_OPT_INFO / NBD_OPT_GO payload.
func appendInfoRequest(dst []byte, name string, infos ...uint16) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(name)))
	dst = append(dst, name...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(infos)))
	for _, t := range infos {
		dst = binary.BigEndian.AppendUint16(dst, t)
	}
	return dst
}

// appendOptionReply encodes an option reply header followed by payload.
func appendOptionReply(dst []byte, code, typ uint32, payload ...[]byte) []byte {
	n := 0
	for _, p := range payload {
		n += len(p)
	}
	dst = binary.BigEndian.AppendUint64(dst, magicOptionReply)
	dst = binary.BigEndian.AppendUint32(dst, code)
	dst = binary.BigEndian.AppendUint32(dst, typ)
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	for _, p := range payload {
		dst = append(dst, p...)
	}
	return dst
}

// appendInfoExport encodes the payload of an NBD_INFO_EXPORT reply.
func appendInfoExport(dst []byte, size uint64, flags TransmissionFlags) []byte {
	dst = binary.BigEndian.AppendUint16(dst, infoExport)
	dst = binary.BigEndian.AppendUint64(dst, size)
	return binary.BigEndian.AppendUint16(dst, uint16(flags))
}

// appendInfoString encodes NBD_INFO_NAME or NBD_INFO_DESCRIPTION.
func appendInfoString(dst []byte, typ uint16, s string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, typ)
	return append(dst, s...)
}

// appendInfoBlockSize encodes NBD_INFO_BLOCK_SIZE.
func appendInfoBlockSize(dst []byte, min, pref, max uint32) []byte {
	dst = binary.BigEndian.AppendUint16(dst, infoBlockSize)
	dst = binary.BigEndian.AppendUint32(dst, min)
	dst = binary.BigEndian.AppendUint32(dst, pref)
	return binary.BigEndian.AppendUint32(dst, max)
}
