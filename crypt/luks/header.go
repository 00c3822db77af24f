package luks

import (
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"strconv"
)

// Header is a decoded LUKS1 or LUKS2 header. It is read-only except
// through a Volume (AddKeyslot, RemoveKeyslot), which owns the key.
type Header struct {
	version   int
	uuid      string
	label     string
	subsystem string

	// LUKS2
	hdrSize uint64
	seqID   uint64
	csumAlg string
	salts   [2][saltLen]byte
	meta    *metadata
	segID   string // the crypt segment in use

	// LUKS1
	l1 *luks1Header
}

// Version is 1 or 2.
func (h *Header) Version() int { return h.version }

// UUID is the header's UUID string.
func (h *Header) UUID() string { return h.uuid }

// Label and Subsystem are LUKS2's labels ("" for LUKS1).
func (h *Header) Label() string     { return h.label }
func (h *Header) Subsystem() string { return h.subsystem }

// MetadataSize is LUKS2's hdr_size (binary header plus JSON area of one
// copy); for LUKS1 it is the 4096-byte block holding the header.
func (h *Header) MetadataSize() uint64 {
	if h.version == 1 {
		return luks1HeaderBlock
	}
	return h.hdrSize
}

// MetadataEnd is where both metadata copies end: what a reader needs to
// decode the header (2*hdr_size for LUKS2, 4096 for LUKS1).
func (h *Header) MetadataEnd() uint64 {
	if h.version == 1 {
		return luks1HeaderBlock
	}
	return 2 * h.hdrSize
}

// AreasEnd is where the keyslots area ends (LUKS2: 2*hdr_size plus
// keyslots_size; LUKS1: after the last key material, 4 KiB aligned).
func (h *Header) AreasEnd() uint64 {
	if h.version == 1 {
		return h.l1.areasEnd()
	}
	return 2*h.hdrSize + uint64(h.meta.Config.KeyslotsSize)
}

// DataOffset is the byte offset of the encrypted data.
func (h *Header) DataOffset() uint64 {
	if h.version == 1 {
		return uint64(h.l1.payloadOffset) * 512
	}
	return uint64(h.meta.Segments[h.segID].Offset)
}

// DataSize is the fixed size of the data segment, or 0 when it extends
// to the end of the device ("dynamic").
func (h *Header) DataSize() uint64 {
	if h.version == 1 {
		return 0
	}
	return uint64(h.meta.Segments[h.segID].Size)
}

// SectorSize is the data encryption unit.
func (h *Header) SectorSize() int {
	if h.version == 1 {
		return 512
	}
	return h.meta.Segments[h.segID].SectorSize
}

// CipherSpec is the data cipher, e.g. "aes-xts-plain64".
func (h *Header) CipherSpec() string {
	if h.version == 1 {
		return h.l1.cipherName + "-" + h.l1.cipherMode
	}
	return h.meta.Segments[h.segID].Encryption
}

// IVTweak is added to every data sector number (LUKS2 iv_tweak).
func (h *Header) IVTweak() uint64 {
	if h.version == 1 {
		return 0
	}
	return uint64(h.meta.Segments[h.segID].IVTweak)
}

// KeySize is the volume key length in bytes.
func (h *Header) KeySize() int {
	if h.version == 1 {
		return int(h.l1.keyBytes)
	}
	d := h.segmentDigest()
	for _, id := range d.Keyslots {
		return h.meta.Keyslots[id].KeySize
	}
	return 0
}

// KeyslotInfo describes one active keyslot.
type KeyslotInfo struct {
	ID       int
	KDF      KDF
	Priority int // LUKS2: 0 ignore, 1 normal, 2 prefer; LUKS1: 1
	Offset   uint64
	Size     uint64
}

// Keyslots lists the active keyslots that unlock the data segment, in
// the order Unlock tries them (higher priority first, then by id).
func (h *Header) Keyslots() []KeyslotInfo {
	var out []KeyslotInfo
	if h.version == 1 {
		for i, ks := range h.l1.keys {
			if ks.active != luks1KeyEnabled {
				continue
			}
			out = append(out, KeyslotInfo{ID: i, Priority: 1,
				KDF:    KDF{Type: KDFPBKDF2, Hash: h.l1.hashSpec, Iterations: int(ks.iterations)},
				Offset: uint64(ks.kmOffset) * 512, Size: uint64(afSize(int(h.l1.keyBytes), int(ks.stripes)))})
		}
		return out
	}
	d := h.segmentDigest()
	for _, id := range d.Keyslots {
		ks := h.meta.Keyslots[id]
		n, _ := strconv.Atoi(id)
		info := KeyslotInfo{ID: n, Priority: 1, Offset: uint64(ks.Area.Offset), Size: uint64(ks.Area.Size)}
		if ks.Priority != nil {
			info.Priority = *ks.Priority
		}
		if ks.KDF != nil {
			info.KDF = KDF{Type: ks.KDF.Type, Hash: ks.KDF.Hash, Iterations: ks.KDF.Iterations,
				Time: ks.KDF.Time, MemoryKiB: ks.KDF.Memory, Threads: ks.KDF.CPUs}
		}
		out = append(out, info)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Priority != out[j].Priority {
			return out[i].Priority > out[j].Priority
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func (h *Header) segmentDigest() *jsonDigest {
	for _, id := range sortedIDs(h.meta.Digests) {
		d := h.meta.Digests[strconv.Itoa(id)]
		for _, s := range d.Segments {
			if s == h.segID {
				return d
			}
		}
	}
	return nil
}

// PeekVersion reads the magic and version from the first bytes of a
// device: 1 or 2, or ErrNotLUKS.
func PeekVersion(b []byte) (int, error) {
	if len(b) < 8 || string(b[:magicLen]) != string(magic1) {
		return 0, ErrNotLUKS
	}
	switch v := binary.BigEndian.Uint16(b[offVersion:]); v {
	case 1, 2:
		return int(v), nil
	default:
		return 0, fmt.Errorf("%w: LUKS version %d", ErrUnsupported, v)
	}
}

// MetadataLen tells, from the first 4096 bytes of a device, how many
// bytes DecodeHeader needs: both LUKS2 metadata copies, or the LUKS1
// header block.
func MetadataLen(first []byte) (uint64, error) {
	v, err := PeekVersion(first)
	if err != nil {
		return 0, err
	}
	if v == 1 {
		return luks1HeaderBlock, nil
	}
	bh, err := peekBinHeader(first, false)
	if err != nil {
		return 0, err
	}
	return 2 * bh.hdrSize, nil
}

// DecodeHeader decodes the header at the start of b (MetadataLen bytes;
// for LUKS2 a b holding only the primary copy also works, without the
// fallback to the secondary). The result is validated: offsets lie
// inside the areas, the crypt segment is usable by this package.
func DecodeHeader(b []byte) (*Header, error) {
	v, err := PeekVersion(b)
	if err != nil {
		return nil, err
	}
	if v == 1 {
		return decodeLUKS1(b)
	}
	return decodeLUKS2(b)
}

// ReadHeader reads and decodes the header of a device.
func ReadHeader(r io.ReaderAt) (*Header, error) {
	first := make([]byte, binHeaderLen)
	if _, err := r.ReadAt(first, 0); err != nil {
		return nil, fmt.Errorf("luks: reading header: %w", err)
	}
	n, err := MetadataLen(first)
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("luks: reading metadata (%d bytes): %w", n, err)
	}
	return DecodeHeader(b)
}
