package luks

import (
	"testing"
)

// zeroTail reads b and zeros beyond it.
type zeroTail []byte

func (z zeroTail) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	if off < int64(len(z)) {
		copy(p, z[off:])
	}
	return len(p), nil
}

// FuzzDecodeHeader: no input makes the decoder (or unlocking what it
// accepted, with KDF costs capped) panic or allocate without bound.
// Seeds: our LUKS1/LUKS2 headers here and cryptsetup's in
// testdata/fuzz/FuzzDecodeHeader.
func FuzzDecodeHeader(f *testing.F) {
	for _, o := range []FormatOptions{
		{KDF: KDF{Type: KDFPBKDF2, Hash: "sha256", Iterations: 10}, DigestIterations: 10},
		{KDF: KDF{Type: KDFArgon2id, Time: 1, MemoryKiB: 16, Threads: 1}, DigestIterations: 10, SectorSize: 512},
		{Version: 1, KDF: KDF{Type: KDFPBKDF2, Hash: "sha1", Iterations: 10}, DigestIterations: 10},
	} {
		v, err := Format(o, []byte("p"))
		if err != nil {
			f.Fatal(err)
		}
		b, err := v.HeaderBytes()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:v.Header().MetadataEnd()])
	}
	lim := &Limits{MaxMemoryKiB: 64, MaxThreads: 2, MaxIterations: 100, MaxTime: 2}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHeader(b)
		if err != nil {
			return
		}
		_ = h.MetadataEnd() + h.AreasEnd() + h.DataOffset() + h.DataSize() + h.IVTweak()
		_, _, _ = h.SectorSize(), h.CipherSpec(), h.KeySize()
		for _, ks := range h.Keyslots() {
			v, err := h.UnlockSlot(zeroTail(b), ks.ID, []byte("p"), lim)
			if err == nil {
				if _, err := v.NewCipher(); err != nil {
					t.Logf("cipher: %v", err)
				}
				if _, err := v.HeaderBytes(); err != nil {
					t.Logf("re-encode: %v", err)
				}
			}
		}
	})
}
