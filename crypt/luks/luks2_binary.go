package luks

import (
	"bytes"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
)

// LUKS2 binary header (docs/on-disk-format-luks2 of cryptsetup), 4096
// bytes, big-endian, followed by the JSON area; hdr_size covers both.
// The secondary copy starts at hdr_size with magic "SKUL\xba\xbe".
//
//	off  len  field
//	0    6    magic
//	6    2    version (2)
//	8    8    hdr_size (binary header + JSON area)
//	16   8    seqid
//	24   48   label
//	72   32   checksum_alg
//	104  64   salt
//	168  40   uuid
//	208  48   subsystem
//	256  8    hdr_offset
//	264  184  padding
//	448  64   csum (over the whole hdr_size with csum zeroed)
//	512  3584 padding
const (
	binHeaderLen  = 4096
	magicLen      = 6
	offVersion    = 6
	offHdrSize    = 8
	offSeqID      = 16
	offLabel      = 24
	offCsumAlg    = 72
	offSalt       = 104
	offUUID       = 168
	offSubsystem  = 208
	offHdrOffset  = 256
	offCsum       = 448
	labelLen      = 48
	csumAlgLen    = 32
	saltLen       = 64
	uuidLen       = 40
	csumLen       = 64
	maxHdrSize    = 4 << 20
	minHdrSize    = 16 << 10
	maxKeyslotsSz = 128 << 20
)

var (
	magic1 = []byte("LUKS\xba\xbe")
	magic2 = []byte("SKUL\xba\xbe")
)

// validMetadataSize reports whether n is one of the nine metadata sizes
// LUKS2 allows (16 KiB ... 4 MiB, powers of two).
func validMetadataSize(n uint64) bool {
	return n >= minHdrSize && n <= maxHdrSize && n&(n-1) == 0
}

// binHeader is one decoded copy of the LUKS2 binary header.
type binHeader struct {
	version   uint16
	hdrSize   uint64
	seqID     uint64
	label     string
	csumAlg   string
	salt      [saltLen]byte
	uuid      string
	subsystem string
	hdrOffset uint64
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// peekBinHeader decodes the fixed fields of the copy at b (at least
// binHeaderLen bytes) without the checksum, for the caller to learn
// hdr_size.
func peekBinHeader(b []byte, secondary bool) (binHeader, error) {
	var h binHeader
	if len(b) < binHeaderLen {
		return h, fmt.Errorf("%w: %d bytes, binary header needs %d", ErrInvalid, len(b), binHeaderLen)
	}
	want := magic1
	if secondary {
		want = magic2
	}
	if !bytes.Equal(b[:magicLen], want) {
		return h, ErrNotLUKS
	}
	h.version = binary.BigEndian.Uint16(b[offVersion:])
	if h.version != 2 {
		return h, fmt.Errorf("%w: binary header version %d", ErrCorrupt, h.version)
	}
	h.hdrSize = binary.BigEndian.Uint64(b[offHdrSize:])
	if !validMetadataSize(h.hdrSize) {
		return h, fmt.Errorf("%w: hdr_size %d", ErrCorrupt, h.hdrSize)
	}
	h.seqID = binary.BigEndian.Uint64(b[offSeqID:])
	h.label = cString(b[offLabel : offLabel+labelLen])
	h.csumAlg = cString(b[offCsumAlg : offCsumAlg+csumAlgLen])
	copy(h.salt[:], b[offSalt:offSalt+saltLen])
	h.uuid = cString(b[offUUID : offUUID+uuidLen])
	h.subsystem = cString(b[offSubsystem : offSubsystem+labelLen])
	h.hdrOffset = binary.BigEndian.Uint64(b[offHdrOffset:])
	return h, nil
}

// verifyChecksum checks the copy at area (exactly hdr_size bytes).
func verifyChecksum(h *binHeader, area []byte) error {
	newHash, err := hashByName(h.csumAlg)
	if err != nil {
		return fmt.Errorf("%w: checksum algorithm %q", ErrCorrupt, h.csumAlg)
	}
	d := newHash()
	if d.Size() > csumLen {
		return fmt.Errorf("%w: checksum algorithm %q", ErrCorrupt, h.csumAlg)
	}
	var zero [csumLen]byte
	d.Write(area[:offCsum])
	d.Write(zero[:])
	d.Write(area[offCsum+csumLen:])
	sum := d.Sum(nil)
	if subtle.ConstantTimeCompare(sum, area[offCsum:offCsum+len(sum)]) != 1 {
		return fmt.Errorf("%w: checksum mismatch (header at %d)", ErrCorrupt, h.hdrOffset)
	}
	return nil
}

// encodeBinHeader fills area (hdr_size bytes, JSON already in place
// after the first 4096) with the binary header and its checksum.
func encodeBinHeader(area []byte, h *binHeader, secondary bool) error {
	b := area[:binHeaderLen]
	clear(b)
	if secondary {
		copy(b, magic2)
	} else {
		copy(b, magic1)
	}
	binary.BigEndian.PutUint16(b[offVersion:], 2)
	binary.BigEndian.PutUint64(b[offHdrSize:], h.hdrSize)
	binary.BigEndian.PutUint64(b[offSeqID:], h.seqID)
	if len(h.label) >= labelLen || len(h.subsystem) >= labelLen || len(h.uuid) >= uuidLen || len(h.csumAlg) >= csumAlgLen {
		return fmt.Errorf("%w: label, subsystem, uuid or checksum name too long", ErrInvalid)
	}
	copy(b[offLabel:], h.label)
	copy(b[offCsumAlg:], h.csumAlg)
	copy(b[offSalt:], h.salt[:])
	copy(b[offUUID:], h.uuid)
	copy(b[offSubsystem:], h.subsystem)
	binary.BigEndian.PutUint64(b[offHdrOffset:], h.hdrOffset)
	newHash, err := hashByName(h.csumAlg)
	if err != nil {
		return err
	}
	d := newHash()
	d.Write(area)
	copy(b[offCsum:], d.Sum(nil))
	return nil
}
