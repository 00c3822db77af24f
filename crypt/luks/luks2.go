package luks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// decodeLUKS2 decodes both copies that b holds and keeps the valid one
// with the higher seqid, as cryptsetup does (it would also rewrite the
// bad copy; this package never writes on read).
func decodeLUKS2(b []byte) (*Header, error) {
	h1, m1, err1 := decodeLUKS2Copy(b, 0)
	var (
		h2   binHeader
		m2   *metadata
		err2 = ErrNotLUKS
	)
	if h1.hdrSize != 0 {
		// The primary's magic was there; its hdr_size places the
		// secondary (a primary with a wiped magic is not LUKS at all).
		h2, m2, err2 = decodeLUKS2Copy(b, h1.hdrSize)
	}
	switch {
	case err1 == nil && err2 == nil:
		if h2.seqID > h1.seqID {
			return newLUKS2Header(h2, m2, h1.salt)
		}
		return newLUKS2Header(h1, m1, h2.salt)
	case err1 == nil:
		return newLUKS2Header(h1, m1, [saltLen]byte{})
	case err2 == nil:
		return newLUKS2Header(h2, m2, h1.salt)
	}
	return nil, err1
}

// decodeLUKS2Copy decodes and checks the copy at off. On a bad checksum
// or JSON it still returns the binary header it read.
func decodeLUKS2Copy(b []byte, off uint64) (binHeader, *metadata, error) {
	if off > uint64(len(b)) || uint64(len(b))-off < binHeaderLen {
		return binHeader{}, nil, fmt.Errorf("%w: header copy at %d beyond the %d bytes read", ErrCorrupt, off, len(b))
	}
	secondary := off != 0
	bh, err := peekBinHeader(b[off:], secondary)
	if err != nil {
		return bh, nil, err
	}
	if bh.hdrOffset != off {
		return bh, nil, fmt.Errorf("%w: header copy at %d says hdr_offset %d", ErrCorrupt, off, bh.hdrOffset)
	}
	if secondary && bh.hdrSize != off {
		return bh, nil, fmt.Errorf("%w: secondary header at %d has hdr_size %d", ErrCorrupt, off, bh.hdrSize)
	}
	if uint64(len(b))-off < bh.hdrSize {
		return bh, nil, fmt.Errorf("%w: header copy at %d needs %d bytes, have %d", ErrCorrupt, off, bh.hdrSize, uint64(len(b))-off)
	}
	area := b[off : off+bh.hdrSize]
	if err := verifyChecksum(&bh, area); err != nil {
		return bh, nil, err
	}
	js := area[binHeaderLen:]
	if len(js) == 0 || js[0] != '{' {
		return bh, nil, fmt.Errorf("%w: JSON area does not start with '{'", ErrCorrupt)
	}
	end := bytes.IndexByte(js, 0)
	if end < 0 {
		return bh, nil, fmt.Errorf("%w: JSON area has no terminating NUL", ErrCorrupt)
	}
	for _, c := range js[end:] {
		if c != 0 {
			return bh, nil, fmt.Errorf("%w: bytes after the JSON text", ErrCorrupt)
		}
	}
	var m metadata
	dec := json.NewDecoder(bytes.NewReader(js[:end]))
	if err := dec.Decode(&m); err != nil {
		return bh, nil, fmt.Errorf("%w: JSON: %v", ErrCorrupt, err)
	}
	if dec.More() {
		return bh, nil, fmt.Errorf("%w: JSON: trailing data", ErrCorrupt)
	}
	if err := m.validate(bh.hdrSize); err != nil {
		return bh, nil, err
	}
	return bh, &m, nil
}

func newLUKS2Header(bh binHeader, m *metadata, otherSalt [saltLen]byte) (*Header, error) {
	h := &Header{
		version: 2, uuid: bh.uuid, label: bh.label, subsystem: bh.subsystem,
		hdrSize: bh.hdrSize, seqID: bh.seqID, csumAlg: bh.csumAlg, meta: m,
	}
	h.salts[0], h.salts[1] = bh.salt, otherSalt
	if bh.hdrOffset != 0 {
		h.salts[0], h.salts[1] = otherSalt, bh.salt
	}
	// The data segment: exactly one crypt segment (several mean an
	// interrupted reencryption, which cryptsetup flags as a requirement
	// already; refuse anything else this package cannot map).
	if len(m.Segments) != 1 {
		return nil, fmt.Errorf("%w: %d segments (reencryption?)", ErrUnsupported, len(m.Segments))
	}
	for id, s := range m.Segments {
		if s.Type != "crypt" {
			return nil, fmt.Errorf("%w: segment type %q", ErrUnsupported, s.Type)
		}
		if len(s.Integrity) > 0 {
			return nil, fmt.Errorf("%w: segment with integrity", ErrUnsupported)
		}
		if !validSectorSize(s.SectorSize) {
			return nil, fmt.Errorf("%w: sector size %d", ErrUnsupported, s.SectorSize)
		}
		h.segID = id
	}
	d := h.segmentDigest()
	if d == nil {
		return nil, fmt.Errorf("%w: no digest for segment %s", ErrCorrupt, h.segID)
	}
	return h, nil
}

// encodeLUKS2 returns both metadata copies (2*hdr_size bytes) with
// seqid as given.
func (h *Header) encodeLUKS2() ([]byte, error) {
	js, err := json.Marshal(h.meta)
	if err != nil {
		return nil, fmt.Errorf("luks: JSON: %w", err)
	}
	if uint64(len(js)) >= h.hdrSize-binHeaderLen {
		return nil, fmt.Errorf("%w: JSON metadata of %d bytes does not fit the %d-byte area", ErrNoSpace, len(js), h.hdrSize-binHeaderLen)
	}
	out := make([]byte, 2*h.hdrSize)
	for i := range 2 {
		area := out[uint64(i)*h.hdrSize : uint64(i+1)*h.hdrSize]
		copy(area[binHeaderLen:], js)
		bh := binHeader{version: 2, hdrSize: h.hdrSize, seqID: h.seqID, label: h.label,
			csumAlg: h.csumAlg, salt: h.salts[i], uuid: h.uuid, subsystem: h.subsystem,
			hdrOffset: uint64(i) * h.hdrSize}
		if err := encodeBinHeader(area, &bh, i == 1); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// luks2Unlock tries one LUKS2 keyslot.
func (h *Header) luks2Unlock(r readerAt, id int, passphrase []byte, lim Limits) ([]byte, error) {
	sid := strconv.Itoa(id)
	ks := h.meta.Keyslots[sid]
	if ks == nil {
		return nil, fmt.Errorf("%w: keyslot %d does not exist", ErrInvalid, id)
	}
	if ks.Type != "luks2" {
		return nil, fmt.Errorf("%w: keyslot %d type %q", ErrUnsupported, id, ks.Type)
	}
	if ks.AF == nil || ks.AF.Type != "luks1" || ks.AF.Stripes != afStripes {
		return nil, fmt.Errorf("%w: keyslot %d anti-forensic splitter", ErrUnsupported, id)
	}
	afHash, err := hashByName(ks.AF.Hash)
	if err != nil {
		return nil, err
	}
	a := ks.Area
	if a.Type != "raw" {
		return nil, fmt.Errorf("%w: keyslot %d area type %q", ErrUnsupported, id, a.Type)
	}
	if ks.KeySize <= 0 || ks.KeySize > 512 {
		return nil, fmt.Errorf("%w: keyslot %d key size %d", ErrCorrupt, id, ks.KeySize)
	}
	n := afSize(ks.KeySize, afStripes)
	if uint64(n) > uint64(a.Size) {
		return nil, fmt.Errorf("%w: keyslot %d area of %d bytes holds no %d-byte key", ErrCorrupt, id, a.Size, ks.KeySize)
	}
	if ks.KDF == nil {
		return nil, fmt.Errorf("%w: keyslot %d has no kdf", ErrCorrupt, id)
	}
	kdf := KDF{Type: ks.KDF.Type, Hash: ks.KDF.Hash, Iterations: ks.KDF.Iterations,
		Time: ks.KDF.Time, MemoryKiB: ks.KDF.Memory, Threads: ks.KDF.CPUs}
	if err := kdf.check(lim); err != nil {
		return nil, fmt.Errorf("keyslot %d: %w", id, err)
	}
	if a.Encryption != CipherXTSPlain64 || (a.KeySize != 32 && a.KeySize != 64) {
		return nil, fmt.Errorf("%w: keyslot %d area cipher %q with a %d-byte key", ErrUnsupported, id, a.Encryption, a.KeySize)
	}
	if len(ks.KDF.Salt) != 32 {
		return nil, fmt.Errorf("%w: keyslot %d salt of %d bytes", ErrCorrupt, id, len(ks.KDF.Salt))
	}
	material := make([]byte, n)
	defer clear(material)
	if _, err := r.ReadAt(material, int64(a.Offset)); err != nil {
		return nil, fmt.Errorf("luks: reading keyslot %d area: %w", id, err)
	}
	dk, err := kdf.derive(passphrase, ks.KDF.Salt, a.KeySize)
	if err != nil {
		return nil, err
	}
	defer clear(dk)
	c, err := NewCipher(a.Encryption, dk, 512, 0)
	if err != nil {
		return nil, fmt.Errorf("keyslot %d: %w", id, err)
	}
	c.Decrypt(material, material, 0)
	key := make([]byte, ks.KeySize)
	if err := afMerge(key, material, afStripes, afHash); err != nil {
		return nil, err
	}
	var d *jsonDigest
	for _, did := range sortedIDs(h.meta.Digests) {
		dd := h.meta.Digests[strconv.Itoa(did)]
		if contains(dd.Keyslots, sid) && contains(dd.Segments, h.segID) {
			d = dd
			break
		}
	}
	if d == nil {
		clear(key)
		return nil, fmt.Errorf("%w: keyslot %d has no digest", ErrCorrupt, id)
	}
	return acceptKey(d, key, lim)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
