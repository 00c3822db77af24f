package rbdbackend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/nbd"
	"github.com/csi-gorbd/csi-gorbd/nbd/attach"
	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
	"github.com/csi-gorbd/csi-gorbd/rbd/encryption"
)

// zeroChunk bounds the buffer WriteZeroes with noHole writes at a time.
const zeroChunk = 4 << 20

// Backend serves one open RBD image (or snapshot) as an nbd.Backend,
// in plaintext through rbd/encryption once Encrypt has unlocked it.
type Backend struct {
	img      *rbd.Image
	vol      volume            // img, or enc
	enc      *encryption.Image // nil unless encrypted
	spec     Spec
	readOnly bool
	qos      *qosState // nil until EnableQoS
	gate     *nbd.Gate // nil until EnableQuiesce

	// fenced latches once the cluster answered ESHUTDOWN: this client
	// was blocklisted (another node took the image over, see nodeserver).
	// From then on every command fails with EIO without reaching the
	// cluster, as librbd's blocklisted image does: the blocklist entry
	// expires (an hour by default), the takeover does not.
	fenced atomic.Bool
}

// ErrFenced: the backend's client was blocklisted; no command reaches the
// cluster any more (it matches syscall.EIO).
var ErrFenced = fmt.Errorf("%w: rbdbackend: this client was blocklisted (the image was taken over); reopen the image", syscall.EIO)

// io runs one command unless the backend is fenced, and fences it when
// the cluster says the client is blocklisted.
func (b *Backend) io(err func() error) error {
	if b.fenced.Load() {
		return ErrFenced
	}
	e := err()
	if errors.Is(e, syscall.ESHUTDOWN) {
		b.fenced.Store(true)
		return fmt.Errorf("%w: %w", ErrFenced, e)
	}
	return mapErr(e)
}

// Fenced reports whether the client was found blocklisted.
func (b *Backend) Fenced() bool { return b.fenced.Load() }

// volume is what the NBD commands run on: an *rbd.Image or its
// plaintext view.
type volume interface {
	ReadAt(ctx context.Context, p []byte, off uint64) (int, error)
	WriteAt(ctx context.Context, p []byte, off uint64) (int, error)
	Discard(ctx context.Context, off, n uint64) error
	WriteZeroes(ctx context.Context, off, n uint64) error
	Size() uint64
}

var (
	_ nbd.Backend             = (*Backend)(nil)
	_ nbd.FastZeroer          = (*Backend)(nil)
	_ nbd.MultiConnBackend    = (*Backend)(nil)
	_ attach.ExportConfigurer = (*Backend)(nil)
)

// New wraps an already open image. readOnly must be true when img was
// opened read-only or at a snapshot; Close closes img.
func New(img *rbd.Image, readOnly bool) *Backend {
	return &Backend{img: img, vol: img, readOnly: readOnly}
}

// Open opens spec (POOL/IMAGE[@SNAP]) on conn. A snapshot is always opened
// read-only.
func Open(ctx context.Context, conn *rados.Conn, spec string, readOnly bool) (*Backend, error) {
	s, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	io, err := conn.OpenIOContext(ctx, s.Pool)
	if err != nil {
		return nil, fmt.Errorf("rbdbackend: pool %q: %w", s.Pool, err)
	}
	if s.Snap != "" {
		readOnly = true
	}
	img, err := rbd.Open(ctx, io, s.Image, &rbd.OpenOptions{ReadOnly: readOnly, Snapshot: s.Snap})
	if err != nil {
		return nil, fmt.Errorf("rbdbackend: opening %s: %w", s, err)
	}
	return &Backend{img: img, vol: img, spec: s, readOnly: readOnly}, nil
}

// Encrypt unlocks the image's LUKS header (librbd's encryption format
// or a dm-crypt volume: see rbd/encryption) with passphrase; from then
// on the export serves the plaintext, DataOffset bytes smaller than the
// image. Call it before the export is served.
func (b *Backend) Encrypt(ctx context.Context, passphrase []byte, opts *encryption.OpenOptions) error {
	return b.unlock(opts, "", func(o *encryption.OpenOptions) (*encryption.Image, error) {
		return encryption.Open(ctx, b.img, passphrase, o)
	})
}

// EncryptKey is Encrypt with the volume key (encryption.OpenKey) instead
// of a passphrase.
func (b *Backend) EncryptKey(ctx context.Context, key []byte, opts *encryption.OpenOptions) error {
	return b.unlock(opts, " with its volume key", func(o *encryption.OpenOptions) (*encryption.Image, error) {
		return encryption.OpenKey(ctx, b.img, key, o)
	})
}

// unlock opens the plaintext view with open (read-only when the backend
// is) and serves through it from then on; how names the secret in errors.
func (b *Backend) unlock(opts *encryption.OpenOptions, how string, open func(*encryption.OpenOptions) (*encryption.Image, error)) error {
	if b.enc != nil {
		return fmt.Errorf("rbdbackend: %s is already unlocked", b.Description())
	}
	var o encryption.OpenOptions
	if opts != nil {
		o = *opts
	}
	o.ReadOnly = o.ReadOnly || b.readOnly
	enc, err := open(&o)
	if err != nil {
		return fmt.Errorf("rbdbackend: unlocking %s%s: %w", b.Description(), how, err)
	}
	b.enc, b.vol = enc, enc
	return nil
}

// Encrypted returns the plaintext view, or nil for a plain image.
func (b *Backend) Encrypted() *encryption.Image { return b.enc }

// PreferredBlockSize is the I/O size that needs no read-modify-write:
// the encryption sector (4096 for librbd's LUKS2), or 0 for plain
// images (the server's default).
func (b *Backend) PreferredBlockSize() uint32 {
	if b.enc == nil {
		return 0
	}
	return uint32(b.enc.SectorSize())
}

// Image returns the wrapped image.
func (b *Backend) Image() *rbd.Image { return b.img }

// ReadOnly reports whether writes are refused (a snapshot or a read-only
// open); the export should then be marked read-only too.
func (b *Backend) ReadOnly() bool { return b.readOnly }

// Description is a human-readable name for the export.
func (b *Backend) Description() string {
	d := "rbd image"
	if b.spec.Image != "" {
		d = "rbd " + b.spec.String()
	}
	if b.enc != nil {
		d += fmt.Sprintf(" (LUKS%d)", b.enc.Header().Version())
	}
	return d
}

// Close releases the image (and its exclusive lock, if it held one) and
// forgets the key of an encrypted one.
func (b *Backend) Close(ctx context.Context) error {
	if b.enc != nil {
		return b.enc.Close(ctx) // closes img
	}
	return b.img.Close(ctx)
}

// Size implements nbd.Backend.
func (b *Backend) Size() int64 { return int64(b.vol.Size()) }

// ReadAt implements nbd.Backend.
func (b *Backend) ReadAt(ctx context.Context, p []byte, off int64) error {
	if off < 0 {
		return syscall.EINVAL
	}
	return b.io(func() error {
		_, err := b.vol.ReadAt(ctx, p, uint64(off))
		return err
	})
}

// WriteAt implements nbd.Backend. RADOS acknowledges writes once durable,
// so fua needs nothing extra.
func (b *Backend) WriteAt(ctx context.Context, p []byte, off int64, fua bool) error {
	if off < 0 {
		return syscall.EINVAL
	}
	if b.readOnly {
		return syscall.EPERM
	}
	return b.io(func() error {
		_, err := b.vol.WriteAt(ctx, p, uint64(off))
		return err
	})
}

// Flush implements nbd.Backend: nothing is cached on this side.
func (b *Backend) Flush(ctx context.Context) error { return ctx.Err() }

// Discard implements nbd.Backend.
func (b *Backend) Discard(ctx context.Context, off, length int64) error {
	if off < 0 || length < 0 {
		return syscall.EINVAL
	}
	if b.readOnly {
		return syscall.EPERM
	}
	return b.io(func() error { return b.vol.Discard(ctx, uint64(off), uint64(length)) })
}

// WriteZeroes implements nbd.Backend. Without noHole whole objects may be
// deallocated; with it zeroes are written as data.
func (b *Backend) WriteZeroes(ctx context.Context, off, length int64, noHole bool) error {
	if off < 0 || length < 0 {
		return syscall.EINVAL
	}
	if b.readOnly {
		return syscall.EPERM
	}
	if !noHole || b.enc != nil {
		// Encrypted zeroes are always written as data.
		return b.io(func() error { return b.vol.WriteZeroes(ctx, uint64(off), uint64(length)) })
	}
	zeros := make([]byte, min(length, zeroChunk))
	for length > 0 {
		n := min(length, int64(len(zeros)))
		if err := b.io(func() error {
			_, err := b.img.WriteAt(ctx, zeros[:n], uint64(off))
			return err
		}); err != nil {
			return err
		}
		off += n
		length -= n
	}
	return nil
}

// FastZero implements nbd.FastZeroer: deallocating zeroes is a metadata
// operation per object; allocated zeroes are as slow as a write, and
// encrypted zeroes are always allocated.
func (b *Backend) FastZero(noHole bool) bool { return !noHole && b.enc == nil }

// MultiConn implements nbd.MultiConnBackend.
func (b *Backend) MultiConn() bool { return true }

// mapErr adds the errno the NBD server reports for rbd's typed errors,
// keeping the original in the chain.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, rbd.ErrReadOnly):
		return fmt.Errorf("%w: %w", syscall.EPERM, err)
	case errors.Is(err, rbd.ErrOutOfRange):
		return fmt.Errorf("%w: %w", syscall.EINVAL, err)
	}
	return err
}

// Spec names an image: POOL/IMAGE[@SNAP].
type Spec struct {
	Pool, Image, Snap string
}

func (s Spec) String() string {
	v := s.Pool + "/" + s.Image
	if s.Snap != "" {
		v += "@" + s.Snap
	}
	return v
}

// ErrBadSpec: an image spec is not POOL/IMAGE[@SNAP].
var ErrBadSpec = errors.New("rbdbackend: image spec must be POOL/IMAGE[@SNAP]")

// ParseSpec parses POOL/IMAGE[@SNAP]. Namespaces (POOL/NS/IMAGE) are not
// supported.
func ParseSpec(s string) (Spec, error) {
	pool, rest, ok := strings.Cut(s, "/")
	if !ok || pool == "" || rest == "" || strings.Contains(rest, "/") {
		return Spec{}, fmt.Errorf("%w: %q", ErrBadSpec, s)
	}
	img, snap, hasSnap := strings.Cut(rest, "@")
	if img == "" || (hasSnap && (snap == "" || strings.Contains(snap, "@"))) {
		return Spec{}, fmt.Errorf("%w: %q", ErrBadSpec, s)
	}
	return Spec{Pool: pool, Image: img, Snap: snap}, nil
}
