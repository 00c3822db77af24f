package encryption

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/csi-gorbd/csi-gorbd/crypt/luks"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// Device is the raw (ciphertext) block device under an Image: an
// *rbd.Image, or anything with its I/O methods. Offsets are bytes;
// ReadAt and WriteAt transfer all of p or fail.
type Device interface {
	ReadAt(ctx context.Context, p []byte, off uint64) (int, error)
	WriteAt(ctx context.Context, p []byte, off uint64) (int, error)
	Discard(ctx context.Context, off, n uint64) error
	Size() uint64
}

// OpenOptions tune Open. The zero value is fine.
type OpenOptions struct {
	// ReadOnly refuses writes, discards and zeroing (ErrReadOnly).
	ReadOnly bool
	// Limits bound the KDF cost a header may ask for.
	Limits *luks.Limits
}

// Image is the plaintext view of an encrypted image: byte offset 0 is
// the first byte of the LUKS data segment. It is safe for concurrent
// use; requests run in the caller's goroutine (no goroutine per
// request).
//
// Reads and writes of whole sectors go straight through the cipher.
// Requests that start or end inside a sector read the edge sectors,
// merge and write whole sectors back; while they do, every other write
// overlapping those sectors waits (see rangeLock), so no update is lost.
// An all-zero ciphertext sector (never written, discarded) reads as
// zeros: a real ciphertext sector is all zero with probability 2^-4096.
type Image struct {
	dev      Device
	h        *luks.Header
	vol      *luks.Volume
	c        *luks.Cipher
	dataOff  uint64
	fixed    uint64 // LUKS2 segment size, 0: to the end of the device
	ss       uint64
	readOnly bool
	locks    rangeLock
	bufs     bufPool
}

// ErrReadOnly is rbd.ErrReadOnly: writes to a read-only Image.
var ErrReadOnly = rbd.ErrReadOnly

// ErrOutOfRange is rbd.ErrOutOfRange: I/O beyond the plaintext size.
var ErrOutOfRange = rbd.ErrOutOfRange

// devReader adapts a Device to io.ReaderAt for the luks package.
type devReader struct {
	ctx context.Context
	dev Device
}

func (r devReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("encryption: negative offset")
	}
	n, err := r.dev.ReadAt(r.ctx, p, uint64(off))
	if err == nil && n < len(p) {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (r devReader) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("encryption: negative offset")
	}
	return r.dev.WriteAt(r.ctx, p, uint64(off))
}

// ReadHeader reads the LUKS header at the start of dev. A librbd clone
// formatted with its own key fails with ErrClonedFormat; a plaintext
// image with ErrNotEncrypted (which also matches luks.ErrNotLUKS).
func ReadHeader(ctx context.Context, dev Device) (*luks.Header, error) {
	if dev.Size() < 4096 {
		return nil, fmt.Errorf("%w (%d bytes)", ErrNotEncrypted, dev.Size())
	}
	first := make([]byte, 4096)
	if _, err := dev.ReadAt(ctx, first, 0); err != nil {
		return nil, fmt.Errorf("encryption: reading header: %w", err)
	}
	if isCloneMagic(first) {
		return nil, fmt.Errorf("%w: opening it needs every layer's key; not implemented", ErrClonedFormat)
	}
	n, err := luks.MetadataLen(first)
	if errors.Is(err, luks.ErrNotLUKS) {
		return nil, fmt.Errorf("%w: %w", ErrNotEncrypted, err)
	}
	if err != nil {
		return nil, err
	}
	if n > dev.Size() {
		return nil, fmt.Errorf("%w: header needs %d bytes, image has %d", luks.ErrCorrupt, n, dev.Size())
	}
	b := make([]byte, n)
	if _, err := dev.ReadAt(ctx, b, 0); err != nil {
		return nil, fmt.Errorf("encryption: reading metadata: %w", err)
	}
	return luks.DecodeHeader(b)
}

// Open unlocks the LUKS header at the start of dev with passphrase and
// returns the plaintext view. The Image takes dev over: Close closes it
// if it has a Close(ctx) method.
func Open(ctx context.Context, dev Device, passphrase []byte, opts *OpenOptions) (*Image, error) {
	return open(ctx, dev, opts, func(h *luks.Header, o OpenOptions) (*luks.Volume, error) {
		return h.Unlock(devReader{ctx, dev}, passphrase, o.Limits)
	})
}

// OpenKey is Open with the volume key instead of a passphrase (one kept
// from an earlier unlock: reopening needs no KDF). A key that does not
// match the header's digest fails with luks.ErrWrongPassphrase.
func OpenKey(ctx context.Context, dev Device, key []byte, opts *OpenOptions) (*Image, error) {
	return open(ctx, dev, opts, func(h *luks.Header, o OpenOptions) (*luks.Volume, error) {
		return h.UnlockKey(key, o.Limits)
	})
}

// open reads dev's header, unlocks it with unlock and wraps the volume.
func open(ctx context.Context, dev Device, opts *OpenOptions, unlock func(*luks.Header, OpenOptions) (*luks.Volume, error)) (*Image, error) {
	var o OpenOptions
	if opts != nil {
		o = *opts
	}
	h, err := ReadHeader(ctx, dev)
	if err != nil {
		return nil, err
	}
	vol, err := unlock(h, o)
	if err != nil {
		return nil, err
	}
	return newImage(dev, vol, o.ReadOnly)
}

func newImage(dev Device, vol *luks.Volume, readOnly bool) (*Image, error) {
	h := vol.Header()
	c, err := vol.NewCipher()
	if err != nil {
		vol.Close()
		return nil, err
	}
	e := &Image{dev: dev, h: h, vol: vol, c: c, dataOff: h.DataOffset(), fixed: h.DataSize(),
		ss: uint64(h.SectorSize()), readOnly: readOnly}
	if dev.Size() < e.dataOff {
		vol.Close()
		return nil, fmt.Errorf("%w: data offset %d beyond the image's %d bytes", ErrTooSmall, e.dataOff, dev.Size())
	}
	e.locks.init()
	return e, nil
}

// VolumeKey returns a copy of the volume key (to reopen with OpenKey
// without the KDF). The caller zeroes it.
func (e *Image) VolumeKey() []byte { return append([]byte(nil), e.vol.Key()...) }

// Header returns the LUKS header the image was opened with.
func (e *Image) Header() *luks.Header { return e.h }

// Device returns the raw device.
func (e *Image) Device() Device { return e.dev }

// DataOffset is where the plaintext's byte 0 lies on the device.
func (e *Image) DataOffset() uint64 { return e.dataOff }

// SectorSize is the encryption unit; I/O aligned to it needs no
// read-modify-write.
func (e *Image) SectorSize() int { return int(e.ss) }

// ReadOnly reports whether writes are refused.
func (e *Image) ReadOnly() bool { return e.readOnly }

// Size is the plaintext size: the device size minus the data offset (or
// the header's fixed segment size), rounded down to whole sectors.
func (e *Image) Size() uint64 {
	raw := e.dev.Size()
	if raw < e.dataOff {
		return 0
	}
	n := raw - e.dataOff
	if e.fixed != 0 {
		n = min(n, e.fixed)
	}
	return n &^ (e.ss - 1)
}

// RawSize is the device size that gives a plaintext of size bytes (for
// resizing a volume to a requested usable size).
func (e *Image) RawSize(size uint64) uint64 { return e.dataOff + size }

// Resize grows or shrinks the device so that the plaintext is size
// bytes (rounded up to a sector). The device must have a Resize method.
func (e *Image) Resize(ctx context.Context, size uint64) error {
	r, ok := e.dev.(interface {
		Resize(context.Context, uint64) error
	})
	if !ok {
		return fmt.Errorf("encryption: device cannot be resized")
	}
	if e.readOnly {
		return ErrReadOnly
	}
	size = (size + e.ss - 1) &^ (e.ss - 1)
	return r.Resize(ctx, e.dataOff+size)
}

// Close forgets the key (best effort: Go may keep copies, and the AES
// key schedule is not reachable) and closes the device if it can be.
func (e *Image) Close(ctx context.Context) error {
	e.vol.Close()
	if c, ok := e.dev.(interface{ Close(context.Context) error }); ok {
		return c.Close(ctx)
	}
	return nil
}

func (e *Image) check(off uint64, n int) error {
	size := e.Size()
	if off > size || uint64(n) > size-off {
		return fmt.Errorf("%w: [%d,+%d) of %d plaintext bytes", ErrOutOfRange, off, n, size)
	}
	return nil
}

// ReadAt reads plaintext.
func (e *Image) ReadAt(ctx context.Context, p []byte, off uint64) (int, error) {
	if err := e.check(off, len(p)); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	end := off + uint64(len(p))
	a0, a1 := off&^(e.ss-1), (end+e.ss-1)&^(e.ss-1)
	if a0 == off && a1 == end {
		if _, err := e.dev.ReadAt(ctx, p, e.dataOff+off); err != nil {
			return 0, err
		}
		e.decrypt(p, off)
		return len(p), nil
	}
	buf := e.bufs.get(int(a1 - a0))
	defer e.bufs.put(buf)
	if _, err := e.dev.ReadAt(ctx, buf, e.dataOff+a0); err != nil {
		return 0, err
	}
	e.decrypt(buf, a0)
	copy(p, buf[off-a0:])
	return len(p), nil
}

// decrypt decrypts whole sectors of b (at plaintext offset off) in
// place; all-zero sectors stay zero.
func (e *Image) decrypt(b []byte, off uint64) {
	ss := int(e.ss)
	for i := 0; i < len(b); {
		// Runs of non-zero sectors go to the cipher in one call.
		j := i
		for j < len(b) && !allZero(b[j:j+ss]) {
			j += ss
		}
		if j > i {
			e.c.Decrypt(b[i:j], b[i:j], off+uint64(i))
		}
		if j < len(b) {
			j += ss // a zero sector: leave it
		}
		i = j
	}
}

func allZero(b []byte) bool {
	for _, v := range b {
		if v != 0 {
			return false
		}
	}
	return true
}

// WriteAt writes plaintext.
func (e *Image) WriteAt(ctx context.Context, p []byte, off uint64) (int, error) {
	if e.readOnly {
		return 0, ErrReadOnly
	}
	if err := e.check(off, len(p)); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := e.write(ctx, p, off, uint64(len(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// write writes n bytes at off: p, or zeros when p is nil.
func (e *Image) write(ctx context.Context, p []byte, off, n uint64) error {
	end := off + n
	a0, a1 := off&^(e.ss-1), (end+e.ss-1)&^(e.ss-1)
	partial := a0 != off || a1 != end
	s0, s1 := a0/e.ss, a1/e.ss
	if err := e.locks.lock(ctx, s0, s1, partial); err != nil {
		return err
	}
	defer e.locks.unlock(s0, s1, partial)
	buf := e.bufs.get(int(a1 - a0))
	defer e.bufs.put(buf)
	if partial {
		if err := e.readEdges(ctx, buf, a0, a1, off, end); err != nil {
			return err
		}
	}
	if p != nil {
		copy(buf[off-a0:], p)
	} else {
		clear(buf[off-a0 : end-a0])
	}
	e.c.Encrypt(buf, buf, a0)
	_, err := e.dev.WriteAt(ctx, buf, e.dataOff+a0)
	return err
}

// readEdges fills the sectors of buf ([a0,a1) in plaintext) that the
// write [off,end) covers only partly with their current plaintext.
func (e *Image) readEdges(ctx context.Context, buf []byte, a0, a1, off, end uint64) error {
	ss := e.ss
	first, last := a0, a1-ss
	if off != first {
		if err := e.readSector(ctx, buf[:ss], first); err != nil {
			return err
		}
	}
	if end != a1 && (last != first || off == first) {
		if err := e.readSector(ctx, buf[last-a0:], last); err != nil {
			return err
		}
	}
	return nil
}

func (e *Image) readSector(ctx context.Context, b []byte, off uint64) error {
	b = b[:e.ss]
	if _, err := e.dev.ReadAt(ctx, b, e.dataOff+off); err != nil {
		return err
	}
	e.decrypt(b, off)
	return nil
}

// zeroChunk bounds the buffer WriteZeroes encrypts at a time.
const zeroChunk = 4 << 20

// WriteZeroes makes the range read back as zeros by writing encrypted
// zeros: deallocating would make other readers of the LUKS volume
// (librbd, dm-crypt) see garbage where a filesystem relies on zeros.
func (e *Image) WriteZeroes(ctx context.Context, off, n uint64) error {
	if e.readOnly {
		return ErrReadOnly
	}
	if err := e.check(off, 0); err != nil {
		return err
	}
	if n > e.Size()-off {
		return fmt.Errorf("%w: [%d,+%d) of %d plaintext bytes", ErrOutOfRange, off, n, e.Size())
	}
	for n > 0 {
		l := min(n, zeroChunk-(off&(e.ss-1)))
		if err := e.write(ctx, nil, off, l); err != nil {
			return err
		}
		off += l
		n -= l
	}
	return nil
}

// Discard releases the whole sectors inside the range on the device;
// they then read as zeros here (and as garbage through other LUKS
// readers, as after a discard through dm-crypt). Partial sectors at the
// edges are left alone, which a discard allows.
func (e *Image) Discard(ctx context.Context, off, n uint64) error {
	if e.readOnly {
		return ErrReadOnly
	}
	size := e.Size()
	if off > size || n > size-off {
		return fmt.Errorf("%w: [%d,+%d) of %d plaintext bytes", ErrOutOfRange, off, n, size)
	}
	a0, a1 := (off+e.ss-1)&^(e.ss-1), (off+n)&^(e.ss-1)
	if a1 <= a0 {
		return nil
	}
	s0, s1 := a0/e.ss, a1/e.ss
	if err := e.locks.lock(ctx, s0, s1, false); err != nil {
		return err
	}
	defer e.locks.unlock(s0, s1, false)
	return e.dev.Discard(ctx, e.dataOff+a0, a1-a0)
}
