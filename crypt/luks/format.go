package luks

import (
	"crypto/rand"
	"fmt"
	"io"
	"strconv"
)

// FormatOptions shape a new header. Zero values take the defaults in
// brackets, which are cryptsetup's except where noted.
type FormatOptions struct {
	Version    int // 1 or 2 [2]
	KeySize    int // volume key bytes: 32 (AES-128-XTS) or 64 [64, AES-256-XTS]
	SectorSize int // LUKS2 data sector: 512..4096 [4096; LUKS1: always 512]
	// DataOffset places the data explicitly (bytes, 512-aligned); else
	// the header and keyslots area (16 MiB for LUKS2) is rounded up to
	// Alignment [1 MiB].
	DataOffset uint64
	Alignment  uint64
	// MetadataSize is LUKS2's hdr_size [16 KiB]; KeyslotsSize its
	// keyslots area [what fits below the data offset, at most 16 MiB -
	// 2*MetadataSize unless DataOffset asks for more, at most 128 MiB].
	MetadataSize uint64
	KeyslotsSize uint64
	// KDF of the first keyslot [DefaultKDF for LUKS2; LUKS1 allows only
	// PBKDF2: sha256, 2^19 iterations].
	KDF KDF
	// Hash for the digest, the AF splitter and LUKS1's PBKDF2 [sha256].
	Hash             string
	DigestIterations int // [2^14]
	UUID             string
	Label, Subsystem string // LUKS2 only
	// VolumeKey, when set, is used instead of a random key (a clone that
	// must decrypt its parent's data).
	VolumeKey []byte
	Rand      io.Reader // [crypto/rand]
}

const (
	defaultMetadataSize  = 16 << 10
	defaultLUKS2HdrArea  = 16 << 20 // cryptsetup's LUKS2_DEFAULT_HDR_SIZE
	defaultAlignment     = 1 << 20
	defaultDigestIters   = 1 << 14
	defaultLUKS1KDFIters = 1 << 19
)

// Format creates a header with one keyslot (id 0) for passphrase and a
// new volume key. Nothing is written: Commit or HeaderBytes produce the
// bytes; the caller must also make sure no old keyslot areas of a
// previous header survive if that matters to it.
func Format(opts FormatOptions, passphrase []byte) (*Volume, error) {
	o := opts
	if o.Version == 0 {
		o.Version = 2
	}
	if o.KeySize == 0 {
		o.KeySize = 64
	}
	if o.KeySize != 32 && o.KeySize != 64 {
		return nil, fmt.Errorf("%w: key size %d (32 or 64)", ErrInvalid, o.KeySize)
	}
	if o.Hash == "" {
		o.Hash = "sha256"
	}
	if _, err := hashByName(o.Hash); err != nil {
		return nil, err
	}
	if o.DigestIterations == 0 {
		o.DigestIterations = defaultDigestIters
	}
	if o.Alignment == 0 {
		o.Alignment = defaultAlignment
	}
	if o.Alignment%512 != 0 || o.DataOffset%512 != 0 {
		return nil, fmt.Errorf("%w: alignment %d / data offset %d not 512-aligned", ErrInvalid, o.Alignment, o.DataOffset)
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.UUID == "" {
		u, err := newUUID(o.Rand)
		if err != nil {
			return nil, err
		}
		o.UUID = u
	}
	if len(o.UUID) >= uuidLen {
		return nil, fmt.Errorf("%w: uuid %q", ErrInvalid, o.UUID)
	}
	key := make([]byte, o.KeySize)
	if o.VolumeKey != nil {
		if len(o.VolumeKey) != o.KeySize {
			return nil, fmt.Errorf("%w: volume key of %d bytes, key size %d", ErrInvalid, len(o.VolumeKey), o.KeySize)
		}
		copy(key, o.VolumeKey)
	} else if _, err := io.ReadFull(o.Rand, key); err != nil {
		return nil, fmt.Errorf("luks: random volume key: %w", err)
	}
	var (
		v   *Volume
		err error
	)
	if o.Version == 1 {
		v, err = formatLUKS1(&o, key)
	} else if o.Version == 2 {
		v, err = formatLUKS2(&o, key)
	} else {
		err = fmt.Errorf("%w: LUKS version %d", ErrInvalid, o.Version)
	}
	if err != nil {
		clear(key)
		return nil, err
	}
	kdf := o.KDF
	if kdf.Type == "" {
		kdf = DefaultKDF()
		if o.Version == 1 {
			kdf = KDF{Type: KDFPBKDF2, Hash: o.Hash, Iterations: defaultLUKS1KDFIters}
		}
	}
	slot, err := v.addKeyslot(0, passphrase, kdf, o.Hash, o.Rand)
	if err != nil {
		v.Close()
		return nil, err
	}
	v.slot = slot
	return v, nil
}

func newUUID(r io.Reader) (string, error) {
	var u [16]byte
	if _, err := io.ReadFull(r, u[:]); err != nil {
		return "", fmt.Errorf("luks: random uuid: %w", err)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]), nil
}

func roundUp(n, a uint64) uint64 { return (n + a - 1) / a * a }

func newDigest(o *FormatOptions, key []byte) (*jsonDigest, error) {
	salt := make([]byte, 32)
	if _, err := io.ReadFull(o.Rand, salt); err != nil {
		return nil, fmt.Errorf("luks: random salt: %w", err)
	}
	h, _ := hashByName(o.Hash)
	n := h().Size()
	if o.Version == 1 {
		n = luks1DigestLen
	}
	dg, err := pbkdf2Key(h, key, salt, o.DigestIterations, n)
	if err != nil {
		return nil, err
	}
	return &jsonDigest{Type: "pbkdf2", Keyslots: []string{}, Segments: []string{"0"}, Hash: o.Hash,
		Iterations: o.DigestIterations, Salt: salt, Digest: dg}, nil
}

func formatLUKS2(o *FormatOptions, key []byte) (*Volume, error) {
	if o.SectorSize == 0 {
		o.SectorSize = 4096
	}
	if !validSectorSize(o.SectorSize) {
		return nil, fmt.Errorf("%w: sector size %d", ErrInvalid, o.SectorSize)
	}
	if o.MetadataSize == 0 {
		o.MetadataSize = defaultMetadataSize
	}
	if !validMetadataSize(o.MetadataSize) {
		return nil, fmt.Errorf("%w: metadata size %d", ErrInvalid, o.MetadataSize)
	}
	if len(o.Label) >= labelLen || len(o.Subsystem) >= labelLen {
		return nil, fmt.Errorf("%w: label or subsystem longer than %d", ErrInvalid, labelLen-1)
	}
	md := o.MetadataSize
	ks := o.KeyslotsSize
	if ks == 0 {
		if o.DataOffset != 0 {
			if o.DataOffset < 2*md {
				return nil, fmt.Errorf("%w: data offset %d inside the metadata", ErrInvalid, o.DataOffset)
			}
			ks = o.DataOffset - 2*md
		} else {
			ks = defaultLUKS2HdrArea - 2*md
		}
	}
	ks -= ks % 4096
	ks = min(ks, maxKeyslotsSz)
	dataOff := o.DataOffset
	if dataOff == 0 {
		dataOff = roundUp(2*md+ks, o.Alignment)
	}
	if dataOff < 2*md+ks {
		ks = (dataOff - 2*md) &^ 4095
	}
	if dataOff%uint64(o.SectorSize) != 0 {
		return nil, fmt.Errorf("%w: data offset %d not a multiple of the %d-byte sector", ErrInvalid, dataOff, o.SectorSize)
	}
	d, err := newDigest(o, key)
	if err != nil {
		return nil, err
	}
	h := &Header{
		version: 2, uuid: o.UUID, label: o.Label, subsystem: o.Subsystem,
		hdrSize: md, seqID: 0, csumAlg: "sha256", segID: "0",
		meta: &metadata{
			Keyslots: map[string]*jsonKeyslot{},
			Tokens:   map[string]jsonRaw{},
			Segments: map[string]*jsonSegment{"0": {
				Type: "crypt", Offset: u64(dataOff), Size: 0, IVTweak: 0,
				Encryption: CipherXTSPlain64, SectorSize: o.SectorSize,
			}},
			Digests: map[string]*jsonDigest{"0": d},
			Config:  &jsonConfig{JSONSize: u64(md - binHeaderLen), KeyslotsSize: u64(ks)},
		},
	}
	for i := range h.salts {
		if _, err := io.ReadFull(o.Rand, h.salts[i][:]); err != nil {
			return nil, fmt.Errorf("luks: random salt: %w", err)
		}
	}
	return &Volume{h: h, key: key, dirty: true}, nil
}

func formatLUKS1(o *FormatOptions, key []byte) (*Volume, error) {
	if o.SectorSize != 0 && o.SectorSize != 512 {
		return nil, fmt.Errorf("%w: LUKS1 has only 512-byte sectors", ErrInvalid)
	}
	if o.KDF.Type != "" && o.KDF.Type != KDFPBKDF2 {
		return nil, fmt.Errorf("%w: LUKS1 keyslots use pbkdf2 only", ErrInvalid)
	}
	l := &luks1Header{cipherName: "aes", cipherMode: "xts-plain64", hashSpec: o.Hash,
		keyBytes: uint32(len(key)), mkDigestIterations: uint32(o.DigestIterations)}
	slotSectors := uint64(afSize(len(key), afStripes) / 512)
	off := uint64(luks1HeaderBlock / 512)
	for i := range l.keys {
		l.keys[i] = luks1Keyslot{active: luks1KeyDisabled, kmOffset: uint32(off), stripes: afStripes}
		off = roundUp(off+slotSectors, luks1HeaderBlock/512)
	}
	payload := o.DataOffset / 512
	if payload == 0 {
		payload = roundUp(off, o.Alignment/512)
	}
	if payload < off || payload > 1<<32-1 {
		return nil, fmt.Errorf("%w: data offset %d sectors (header needs %d)", ErrInvalid, payload, off)
	}
	l.payloadOffset = uint32(payload)
	d, err := newDigest(o, key)
	if err != nil {
		return nil, err
	}
	copy(l.mkDigest[:], d.Digest)
	copy(l.mkDigestSalt[:], d.Salt)
	return &Volume{h: &Header{version: 1, uuid: o.UUID, l1: l}, key: key, dirty: true}, nil
}

// AddKeyslot adds a keyslot for passphrase with kdf (zero: DefaultKDF,
// or PBKDF2 for LUKS1) in the first free slot and area, and returns its
// id. The change is pending until Commit.
func (v *Volume) AddKeyslot(passphrase []byte, kdf KDF) (int, error) {
	if kdf.Type == "" {
		kdf = DefaultKDF()
		if v.h.version == 1 {
			kdf = KDF{Type: KDFPBKDF2, Hash: v.h.l1.hashSpec, Iterations: defaultLUKS1KDFIters}
		}
	}
	hash := "sha256"
	if v.h.version == 1 {
		hash = v.h.l1.hashSpec
	}
	return v.addKeyslot(-1, passphrase, kdf, hash, rand.Reader)
}

func (v *Volume) addKeyslot(want int, passphrase []byte, kdf KDF, hash string, rnd io.Reader) (int, error) {
	if err := kdf.check(Limits{MaxMemoryKiB: 4 << 20, MaxThreads: 255, MaxIterations: 1<<31 - 1, MaxTime: 1 << 20}); err != nil {
		return 0, err
	}
	salt := make([]byte, 32)
	if _, err := io.ReadFull(rnd, salt); err != nil {
		return 0, fmt.Errorf("luks: random salt: %w", err)
	}
	keyLen := len(v.key)
	afHash, err := hashByName(hash)
	if err != nil {
		return 0, err
	}
	material := make([]byte, afSize(keyLen, afStripes))
	if err := afSplit(material, v.key, afStripes, afHash, rnd); err != nil {
		return 0, err
	}
	var (
		slot     int
		areaOff  uint64
		areaKey  = 64
		areaSize = roundUp(uint64(len(material)), 4096)
	)
	if v.h.version == 1 {
		if kdf.Type != KDFPBKDF2 {
			return 0, fmt.Errorf("%w: LUKS1 keyslots use pbkdf2 only", ErrInvalid)
		}
		l := v.h.l1
		slot = -1
		for i, k := range l.keys {
			if k.active != luks1KeyEnabled && (want < 0 || want == i) {
				slot = i
				break
			}
		}
		if slot < 0 {
			return 0, fmt.Errorf("%w: all 8 LUKS1 keyslots are in use", ErrNoSpace)
		}
		areaOff = uint64(l.keys[slot].kmOffset) * 512
		areaKey = keyLen
		kdf.Hash = l.hashSpec
	} else {
		slot, areaOff, err = v.h.luks2FreeSlot(want, areaSize)
		if err != nil {
			return 0, err
		}
	}
	dk, err := kdf.derive(passphrase, salt, areaKey)
	if err != nil {
		return 0, err
	}
	defer clear(dk)
	c, err := NewCipher(CipherXTSPlain64, dk, 512, 0)
	if err != nil {
		return 0, err
	}
	c.Encrypt(material, material, 0)
	if v.h.version == 1 {
		k := &v.h.l1.keys[slot]
		k.active = luks1KeyEnabled
		k.iterations = uint32(kdf.Iterations)
		copy(k.salt[:], salt)
	} else {
		id := strconv.Itoa(slot)
		v.h.meta.Keyslots[id] = &jsonKeyslot{
			Type: "luks2", KeySize: keyLen,
			AF:   &jsonAF{Type: "luks1", Stripes: afStripes, Hash: hash},
			Area: &jsonArea{Type: "raw", Offset: u64(areaOff), Size: u64(areaSize), Encryption: CipherXTSPlain64, KeySize: areaKey},
			KDF: &jsonKDF{Type: kdf.Type, Hash: kdf.Hash, Iterations: kdf.Iterations,
				Time: kdf.Time, Memory: kdf.MemoryKiB, CPUs: kdf.Threads, Salt: salt},
		}
		if kdf.Type != KDFPBKDF2 {
			v.h.meta.Keyslots[id].KDF.Hash = ""
			v.h.meta.Keyslots[id].KDF.Iterations = 0
		}
		d := v.h.segmentDigest()
		d.Keyslots = append(d.Keyslots, id)
	}
	v.pending = append(v.pending, extent{off: areaOff, data: material})
	v.dirty = true
	return slot, nil
}

// luks2FreeSlot finds the lowest free keyslot id (or want) and the first
// gap of size bytes in the keyslots area.
func (h *Header) luks2FreeSlot(want int, size uint64) (int, uint64, error) {
	slot := -1
	for i := 0; i < maxObjects; i++ {
		if h.meta.Keyslots[strconv.Itoa(i)] == nil && (want < 0 || want == i) {
			slot = i
			break
		}
	}
	if slot < 0 {
		return 0, 0, fmt.Errorf("%w: no free keyslot", ErrNoSpace)
	}
	end := h.AreasEnd()
	off := 2 * h.hdrSize
	for moved := true; moved; {
		moved = false
		for _, ks := range h.meta.Keyslots {
			a := ks.Area
			if off < uint64(a.Offset+a.Size) && uint64(a.Offset) < off+size {
				off = roundUp(uint64(a.Offset+a.Size), 4096)
				moved = true
			}
		}
	}
	if off+size > end {
		return 0, 0, fmt.Errorf("%w: keyslots area full", ErrNoSpace)
	}
	return slot, off, nil
}

// RemoveKeyslot drops a keyslot (not the last one) and schedules its
// area to be overwritten with random bytes on Commit.
func (v *Volume) RemoveKeyslot(slot int) error {
	var active int
	for range v.h.Keyslots() {
		active++
	}
	if active <= 1 {
		return fmt.Errorf("%w: refusing to remove the last keyslot", ErrInvalid)
	}
	var off, size uint64
	if v.h.version == 1 {
		if slot < 0 || slot >= luks1NumKeys || v.h.l1.keys[slot].active != luks1KeyEnabled {
			return fmt.Errorf("%w: keyslot %d is not active", ErrInvalid, slot)
		}
		k := &v.h.l1.keys[slot]
		off, size = uint64(k.kmOffset)*512, uint64(afSize(int(v.h.l1.keyBytes), afStripes))
		k.active = luks1KeyDisabled
		k.iterations = 0
		clear(k.salt[:])
	} else {
		id := strconv.Itoa(slot)
		ks := v.h.meta.Keyslots[id]
		if ks == nil {
			return fmt.Errorf("%w: keyslot %d does not exist", ErrInvalid, slot)
		}
		off, size = uint64(ks.Area.Offset), uint64(ks.Area.Size)
		delete(v.h.meta.Keyslots, id)
		for _, d := range v.h.meta.Digests {
			d.Keyslots = removeString(d.Keyslots, id)
		}
		for tid, t := range v.h.meta.Tokens {
			if tokenNamesKeyslot(t, id) {
				delete(v.h.meta.Tokens, tid)
			}
		}
	}
	junk := make([]byte, size)
	if _, err := io.ReadFull(rand.Reader, junk); err != nil {
		return fmt.Errorf("luks: random wipe: %w", err)
	}
	v.pending = append(v.pending, extent{off: off, data: junk})
	v.dirty = true
	return nil
}

func removeString(list []string, s string) []string {
	out := list[:0]
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}
