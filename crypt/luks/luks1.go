package luks

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// LUKS1 header (cryptsetup docs/on-disk-format.pdf), big-endian, 592
// bytes at offset 0; key material of slot i at keyMaterialOffset
// sectors, the data at payloadOffset sectors.
//
//	off  len  field
//	0    6    magic "LUKS\xba\xbe"
//	6    2    version (1)
//	8    32   cipher name ("aes")
//	40   32   cipher mode ("xts-plain64")
//	72   32   hash spec ("sha256")
//	104  4    payload offset (512-byte sectors)
//	108  4    key bytes
//	112  20   master key digest
//	132  32   master key digest salt
//	164  4    master key digest iterations
//	168  40   uuid
//	208  8x48 key slots: active, iterations, salt[32], key material
//	          offset (sectors), stripes
const (
	luks1HeaderLen   = 592
	luks1HeaderBlock = 4096 // keyslot material starts 4 KiB aligned
	luks1NumKeys     = 8
	luks1KeyEnabled  = 0x00AC71F3
	luks1KeyDisabled = 0x0000DEAD
	luks1SlotLen     = 48
)

type luks1Keyslot struct {
	active     uint32
	iterations uint32
	salt       [32]byte
	kmOffset   uint32 // sectors
	stripes    uint32
}

type luks1Header struct {
	cipherName, cipherMode, hashSpec string
	payloadOffset                    uint32
	keyBytes                         uint32
	mkDigest                         [luks1DigestLen]byte
	mkDigestSalt                     [32]byte
	mkDigestIterations               uint32
	keys                             [luks1NumKeys]luks1Keyslot
}

// areasEnd is the end of the last key material, 4 KiB aligned.
func (l *luks1Header) areasEnd() uint64 {
	var end uint64
	for _, k := range l.keys {
		e := uint64(k.kmOffset)*512 + uint64(afSize(int(l.keyBytes), int(k.stripes)))
		end = max(end, e)
	}
	return (end + 4095) &^ 4095
}

func decodeLUKS1(b []byte) (*Header, error) {
	if len(b) < luks1HeaderLen {
		return nil, fmt.Errorf("%w: LUKS1 header needs %d bytes, have %d", ErrInvalid, luks1HeaderLen, len(b))
	}
	l := &luks1Header{
		cipherName:         cString(b[8:40]),
		cipherMode:         cString(b[40:72]),
		hashSpec:           strings.ToLower(cString(b[72:104])),
		payloadOffset:      binary.BigEndian.Uint32(b[104:]),
		keyBytes:           binary.BigEndian.Uint32(b[108:]),
		mkDigestIterations: binary.BigEndian.Uint32(b[164:]),
	}
	copy(l.mkDigest[:], b[112:132])
	copy(l.mkDigestSalt[:], b[132:164])
	h := &Header{version: 1, uuid: cString(b[168:208]), l1: l}
	if _, err := hashByName(l.hashSpec); err != nil {
		return nil, err
	}
	if l.keyBytes == 0 || l.keyBytes > 512 {
		return nil, fmt.Errorf("%w: LUKS1 key bytes %d", ErrCorrupt, l.keyBytes)
	}
	if l.payloadOffset == 0 {
		return nil, fmt.Errorf("%w: LUKS1 payload offset 0 (detached header)", ErrUnsupported)
	}
	for i := range l.keys {
		s := b[208+i*luks1SlotLen:]
		k := &l.keys[i]
		k.active = binary.BigEndian.Uint32(s)
		k.iterations = binary.BigEndian.Uint32(s[4:])
		copy(k.salt[:], s[8:40])
		k.kmOffset = binary.BigEndian.Uint32(s[40:])
		k.stripes = binary.BigEndian.Uint32(s[44:])
		if k.active != luks1KeyEnabled && k.active != luks1KeyDisabled {
			return nil, fmt.Errorf("%w: LUKS1 keyslot %d state %#x", ErrCorrupt, i, k.active)
		}
		if k.active != luks1KeyEnabled {
			continue
		}
		if k.stripes != afStripes {
			return nil, fmt.Errorf("%w: LUKS1 keyslot %d has %d stripes", ErrUnsupported, i, k.stripes)
		}
		start := uint64(k.kmOffset) * 512
		end := start + uint64(afSize(int(l.keyBytes), afStripes))
		if start < luks1HeaderLen || end > uint64(l.payloadOffset)*512 {
			return nil, fmt.Errorf("%w: LUKS1 keyslot %d material [%d,%d) outside header area (payload at %d)",
				ErrCorrupt, i, start, end, uint64(l.payloadOffset)*512)
		}
	}
	return h, nil
}

func (l *luks1Header) encode(uuid string) []byte {
	b := make([]byte, luks1HeaderBlock)
	copy(b, magic1)
	binary.BigEndian.PutUint16(b[6:], 1)
	copy(b[8:39], l.cipherName)
	copy(b[40:71], l.cipherMode)
	copy(b[72:103], l.hashSpec)
	binary.BigEndian.PutUint32(b[104:], l.payloadOffset)
	binary.BigEndian.PutUint32(b[108:], l.keyBytes)
	copy(b[112:132], l.mkDigest[:])
	copy(b[132:164], l.mkDigestSalt[:])
	binary.BigEndian.PutUint32(b[164:], l.mkDigestIterations)
	copy(b[168:207], uuid)
	for i, k := range l.keys {
		s := b[208+i*luks1SlotLen:]
		binary.BigEndian.PutUint32(s, k.active)
		binary.BigEndian.PutUint32(s[4:], k.iterations)
		copy(s[8:40], k.salt[:])
		binary.BigEndian.PutUint32(s[40:], k.kmOffset)
		binary.BigEndian.PutUint32(s[44:], k.stripes)
	}
	return b
}

// luks1Unlock tries one LUKS1 keyslot.
func (h *Header) luks1Unlock(r readerAt, id int, passphrase []byte, lim Limits) ([]byte, error) {
	l := h.l1
	if id < 0 || id >= luks1NumKeys || l.keys[id].active != luks1KeyEnabled {
		return nil, fmt.Errorf("%w: keyslot %d is not active", ErrInvalid, id)
	}
	k := &l.keys[id]
	kdf := KDF{Type: KDFPBKDF2, Hash: l.hashSpec, Iterations: int(k.iterations)}
	if err := kdf.check(lim); err != nil {
		return nil, fmt.Errorf("keyslot %d: %w", id, err)
	}
	if spec := l.cipherName + "-" + l.cipherMode; spec != CipherXTSPlain64 || (l.keyBytes != 32 && l.keyBytes != 64) {
		return nil, fmt.Errorf("%w: LUKS1 cipher %q with a %d-byte key", ErrUnsupported, spec, l.keyBytes)
	}
	afHash, _ := hashByName(l.hashSpec)
	n := afSize(int(l.keyBytes), afStripes)
	material := make([]byte, n)
	defer clear(material)
	if _, err := r.ReadAt(material, int64(k.kmOffset)*512); err != nil {
		return nil, fmt.Errorf("luks: reading keyslot %d material: %w", id, err)
	}
	dk, err := kdf.derive(passphrase, k.salt[:], int(l.keyBytes))
	if err != nil {
		return nil, err
	}
	defer clear(dk)
	c, err := NewCipher(l.cipherName+"-"+l.cipherMode, dk, 512, 0)
	if err != nil {
		return nil, err
	}
	c.Decrypt(material, material, 0)
	key := make([]byte, l.keyBytes)
	if err := afMerge(key, material, afStripes, afHash); err != nil {
		return nil, err
	}
	d := &jsonDigest{Type: "pbkdf2", Hash: l.hashSpec, Iterations: int(l.mkDigestIterations),
		Salt: l.mkDigestSalt[:], Digest: l.mkDigest[:]}
	return acceptKey(d, key, lim)
}
