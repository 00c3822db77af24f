package luks

import (
	"errors"
	"fmt"
	"io"
)

// Volume is an unlocked header: the header and its volume key. Changes
// (AddKeyslot, RemoveKeyslot) stay in memory until Commit writes them.
// A Volume is not safe for concurrent use; the Cipher it makes is.
type Volume struct {
	h       *Header
	key     []byte
	slot    int
	pending []extent // keyslot areas to write before the metadata
	dirty   bool
}

type extent struct {
	off  uint64
	data []byte
}

// Unlock tries every active keyslot that unlocks the data segment, in
// priority order (LUKS2 keyslots of priority 0 only when named with
// UnlockSlot), and returns the first that opens with passphrase. It
// returns ErrWrongPassphrase when none does; a keyslot whose KDF exceeds
// lim is skipped, and if no keyslot could be tried at all the limit
// error is returned instead.
func (h *Header) Unlock(r io.ReaderAt, passphrase []byte, lim *Limits) (*Volume, error) {
	var firstErr error
	tried := 0
	for _, ks := range h.Keyslots() {
		if ks.Priority == 0 {
			continue
		}
		v, err := h.UnlockSlot(r, ks.ID, passphrase, lim)
		if err == nil {
			return v, nil
		}
		if errors.Is(err, ErrWrongPassphrase) {
			tried++
			continue
		}
		if errors.Is(err, ErrKDFLimit) || errors.Is(err, ErrUnsupported) || errors.Is(err, ErrCorrupt) {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		return nil, err // I/O errors: the caller must see them
	}
	if tried == 0 && firstErr != nil {
		return nil, firstErr
	}
	return nil, ErrWrongPassphrase
}

// UnlockSlot opens one keyslot.
func (h *Header) UnlockSlot(r io.ReaderAt, slot int, passphrase []byte, lim *Limits) (*Volume, error) {
	l := lim.withDefaults()
	var (
		key []byte
		err error
	)
	if h.version == 1 {
		key, err = h.luks1Unlock(r, slot, passphrase, l)
	} else {
		key, err = h.luks2Unlock(r, slot, passphrase, l)
	}
	if err != nil {
		return nil, err
	}
	return &Volume{h: h, key: key, slot: slot}, nil
}

// Header returns the (possibly modified, uncommitted) header.
func (v *Volume) Header() *Header { return v.h }

// Slot is the keyslot that opened the volume (or the first keyslot of a
// new one).
func (v *Volume) Slot() int { return v.slot }

// Key returns the volume key. The slice is the Volume's own; do not
// keep or change it.
func (v *Volume) Key() []byte { return v.key }

// NewCipher returns the data segment's sector cipher. Offsets given to
// it are relative to DataOffset.
func (v *Volume) NewCipher() (*Cipher, error) {
	return NewCipher(v.h.CipherSpec(), v.key, v.h.SectorSize(), v.h.IVTweak())
}

// Close zeroes the key (best effort: the Go runtime may have copied it).
func (v *Volume) Close() {
	clear(v.key)
	for _, e := range v.pending {
		clear(e.data)
	}
	v.pending = nil
}

// Commit writes pending keyslot areas and then the metadata (LUKS2:
// both copies with seqid+1). The metadata goes last so that a crash
// leaves the old header pointing at the old areas.
func (v *Volume) Commit(w io.WriterAt) error {
	if !v.dirty {
		return nil
	}
	for _, e := range v.pending {
		if _, err := w.WriteAt(e.data, int64(e.off)); err != nil {
			return fmt.Errorf("luks: writing keyslot area at %d: %w", e.off, err)
		}
	}
	md, err := v.metadataBytes()
	if err != nil {
		return err
	}
	if _, err := w.WriteAt(md, 0); err != nil {
		return fmt.Errorf("luks: writing header: %w", err)
	}
	for _, e := range v.pending {
		clear(e.data)
	}
	v.pending = nil
	v.dirty = false
	return nil
}

// HeaderBytes returns the whole header region as one buffer, from 0 to
// the end of the last keyslot area that holds key material, with the
// pending areas in place and everything else zero. It is what a
// single write of a freshly formatted header needs (and what librbd's
// format writes); it does not clear the pending state.
func (v *Volume) HeaderBytes() ([]byte, error) {
	md, err := v.metadataBytes()
	if err != nil {
		return nil, err
	}
	end := uint64(len(md))
	for _, e := range v.pending {
		end = max(end, e.off+uint64(len(e.data)))
	}
	out := make([]byte, end)
	copy(out, md)
	for _, e := range v.pending {
		copy(out[e.off:], e.data)
	}
	return out, nil
}

func (v *Volume) metadataBytes() ([]byte, error) {
	if v.h.version == 1 {
		return v.h.l1.encode(v.h.uuid), nil
	}
	v.h.seqID++
	b, err := v.h.encodeLUKS2()
	if err != nil {
		v.h.seqID--
	}
	return b, err
}

// UnlockKey opens the volume with its volume key instead of a
// passphrase (a key kept from an earlier unlock, as dm-crypt keeps it in
// the kernel): the key is checked against the header's digest of the
// data segment, and ErrWrongPassphrase is returned when it does not
// match. No keyslot is opened, so Slot is -1 and keyslot changes
// (AddKeyslot) still work; the Volume keeps a copy of key.
func (h *Header) UnlockKey(key []byte, lim *Limits) (*Volume, error) {
	l := lim.withDefaults()
	var d *jsonDigest
	if h.version == 1 {
		l1 := h.l1
		d = &jsonDigest{Type: "pbkdf2", Hash: l1.hashSpec, Iterations: int(l1.mkDigestIterations),
			Salt: l1.mkDigestSalt[:], Digest: l1.mkDigest[:]}
	} else if d = h.segmentDigest(); d == nil {
		return nil, fmt.Errorf("%w: the data segment has no digest", ErrCorrupt)
	}
	if len(key) != h.KeySize() {
		return nil, fmt.Errorf("%w: a %d-byte key for a %d-byte volume key", ErrWrongPassphrase, len(key), h.KeySize())
	}
	ok, err := checkDigest(d, key, l)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrWrongPassphrase
	}
	return &Volume{h: h, key: append([]byte(nil), key...), slot: -1}, nil
}
