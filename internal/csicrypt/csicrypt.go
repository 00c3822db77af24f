package csicrypt

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/crypt/luks"
	"github.com/csi-gorbd/csi-gorbd/internal/kms"
	"github.com/csi-gorbd/csi-gorbd/rbd"
	"github.com/csi-gorbd/csi-gorbd/rbd/encryption"
)

// The image metadata of ceph-csi's encrypted volumes.
const (
	MetaState       = "rbd.csi.ceph.com/encrypted"
	metaStateLegacy = ".rbd.csi.ceph.com/encrypted"
	// StatePrepared: the passphrase is stored, the header not written.
	StatePrepared = "encryptionPrepared"
	// StateEncrypted: the LUKS header is written.
	StateEncrypted = "encrypted"
)

// Errors; test with errors.Is.
var (
	// ErrState: the image's encryption state does not allow the
	// operation (no state on an image the volume context says is
	// encrypted, a prepared image with data but no header, a read-only
	// stage of a volume that still needs formatting).
	ErrState = errors.New("csicrypt: unexpected encryption state")
	// ErrWrongPassphrase: the passphrase a store yields does not open the
	// LUKS header. It matches luks.ErrWrongPassphrase too.
	ErrWrongPassphrase = fmt.Errorf("csicrypt: %w", luks.ErrWrongPassphrase)
)

// Image is the image of an encrypted volume: its raw bytes and its
// metadata (an *rbd.Image).
type Image interface {
	encryption.Device
	encryption.Metadata
}

// Volume is an encrypted volume being worked on.
type Volume struct {
	// ID is the CSI volume id (or snapshot id): metadata KMS stores seal
	// with it.
	ID    string
	Image Image
	Store kms.Store
	// KDF is the KDF of keyslots this package writes; the zero value is
	// luks.DefaultKDF (Argon2id, 3 passes, 64 MiB, 4 lanes).
	KDF luks.KDF
}

func (v Volume) ev() encryption.Volume { return encryption.Volume{ID: v.ID, Meta: v.Image} }

func (v Volume) kdf() luks.KDF {
	if v.KDF.Type == "" {
		return luks.DefaultKDF()
	}
	return v.KDF
}

// State reads the image's encryption state ("" when it has none; the
// legacy key as ceph-csi still reads it).
func State(ctx context.Context, img encryption.Metadata) (string, error) {
	for _, k := range []string{MetaState, metaStateLegacy} {
		b, err := img.GetMetadata(ctx, k)
		if errors.Is(err, rbd.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", err
		}
		return string(bytes.TrimSpace(b)), nil
	}
	return "", nil
}

func setState(ctx context.Context, img Image, st string) error {
	if err := img.SetMetadata(ctx, MetaState, []byte(st)); err != nil {
		return fmt.Errorf("csicrypt: setting %s=%s: %w", MetaState, st, err)
	}
	return nil
}

// wrong names the secret that failed to unlock v.
func (v Volume) wrong(err error) error {
	if errors.Is(err, luks.ErrWrongPassphrase) {
		return fmt.Errorf("%w: volume %s: the LUKS header does not open with %s", ErrWrongPassphrase, v.ID, v.Store.Source())
	}
	return fmt.Errorf("csicrypt: volume %s: %w", v.ID, err)
}

// hasHeader reports whether the image starts with a LUKS header.
func hasHeader(ctx context.Context, img Image) (bool, error) {
	ok, err := encryption.IsEncrypted(ctx, img)
	if err != nil {
		return false, fmt.Errorf("csicrypt: reading the LUKS header: %w", err)
	}
	return ok, nil
}

// checkOpens unlocks the header with pass (the KDF runs) and forgets the
// key.
func (v Volume) checkOpens(ctx context.Context, pass []byte) error {
	key, err := v.unlock(ctx, pass)
	clear(key)
	return err
}

func (v Volume) unlock(ctx context.Context, pass []byte) ([]byte, error) {
	h, err := encryption.ReadHeader(ctx, v.Image)
	if err != nil {
		return nil, v.wrong(err)
	}
	vol, err := h.Unlock(devReader{ctx, v.Image}, pass, nil)
	if err != nil {
		return nil, v.wrong(err)
	}
	defer vol.Close()
	return bytes.Clone(vol.Key()), nil
}

// FormatNew makes a blank new volume encrypted: a passphrase from the
// store (StatePrepared), a LUKS2 header in layout (StateEncrypted). A
// retry after a failure at any step finishes the job with the stored
// passphrase.
func FormatNew(ctx context.Context, v Volume, layout encryption.Layout) error {
	st, err := State(ctx, v.Image)
	if err != nil {
		return err
	}
	var pass []byte
	switch st {
	case StateEncrypted, StatePrepared:
		pass, err = v.Store.Passphrase(ctx, v.ev())
	case "":
		if pass, err = v.Store.NewPassphrase(ctx, v.ev()); err == nil {
			err = setState(ctx, v.Image, StatePrepared)
		}
	default:
		err = fmt.Errorf("%w: %s=%q", ErrState, MetaState, st)
	}
	if err != nil {
		return err
	}
	defer clear(pass)
	formatted, err := hasHeader(ctx, v.Image)
	if err != nil {
		return err
	}
	if formatted {
		// A retry after the header was written.
		if err := v.checkOpens(ctx, pass); err != nil {
			return err
		}
	} else {
		vol, err := encryption.Format(ctx, v.Image, pass, &encryption.FormatOptions{Layout: layout, KDF: v.kdf()})
		if err != nil {
			return fmt.Errorf("csicrypt: formatting volume %s: %w", v.ID, err)
		}
		vol.Close()
	}
	if st == StateEncrypted {
		return nil
	}
	return setState(ctx, v.Image, StateEncrypted)
}

// Inherit gives dst, a clone of src (a restore, or a clone of a volume),
// its passphrase: dst's store makes one (per-volume stores) or has one
// (the default store); when it differs from src's, a keyslot for it is
// added to dst's header and src's keyslot is removed from dst's header
// (src's own header is another object: unchanged). A clone starts with a
// copy of its source's image metadata (state and sealed passphrase,
// sealed for the source's id): that copy is replaced. A clone of a
// prepared, never formatted source stays prepared with its own stored
// passphrase. Retries finish an interrupted call.
func Inherit(ctx context.Context, src, dst Volume) error {
	srcState, err := State(ctx, src.Image)
	if err != nil {
		return err
	}
	if srcState != StatePrepared && srcState != StateEncrypted {
		return fmt.Errorf("%w: source %s: %s=%q", ErrState, src.ID, MetaState, srcState)
	}
	dstState, err := State(ctx, dst.Image)
	if err != nil {
		return err
	}
	copied, err := sameMetadata(ctx, src.Image, dst.Image, kms.MetaDEK, kms.MetaDEKLegacy)
	if err != nil {
		return err
	}
	fresh := dstState == "" || copied
	var dstPass []byte
	if fresh && dst.Store.PerVolume() {
		dstPass, err = dst.Store.NewPassphrase(ctx, dst.ev())
	} else {
		dstPass, err = dst.Store.Passphrase(ctx, dst.ev())
	}
	if err != nil {
		return err
	}
	defer clear(dstPass)
	if fresh {
		if err := setState(ctx, dst.Image, StatePrepared); err != nil {
			return err
		}
	}
	formatted, err := hasHeader(ctx, dst.Image)
	if err != nil || !formatted {
		// A prepared source: its first stage formats it, and the clone's.
		return err
	}
	if err := dst.checkOpens(ctx, dstPass); err != nil {
		if !errors.Is(err, luks.ErrWrongPassphrase) {
			return err
		}
		srcPass, err := src.Store.Passphrase(ctx, src.ev())
		if err != nil {
			return err
		}
		defer clear(srcPass)
		if _, err := encryption.AddPassphrase(ctx, dst.Image, srcPass, dstPass, dst.kdf(), nil); err != nil {
			return src.wrong(err)
		}
		if err := encryption.RemovePassphrase(ctx, dst.Image, srcPass, nil); err != nil {
			return fmt.Errorf("csicrypt: removing the source's keyslot from %s: %w", dst.ID, err)
		}
	}
	return setState(ctx, dst.Image, StateEncrypted)
}

// sameMetadata reports whether a and b hold the same value under one of
// keys (b's is a copy of a's).
func sameMetadata(ctx context.Context, a, b encryption.Metadata, keys ...string) (bool, error) {
	for _, k := range keys {
		va, err := a.GetMetadata(ctx, k)
		if errors.Is(err, rbd.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		vb, err := b.GetMetadata(ctx, k)
		if errors.Is(err, rbd.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		if bytes.Equal(va, vb) {
			return true, nil
		}
	}
	return false, nil
}

// Unlock returns the volume key of v (the caller zeroes it). A volume
// ceph-csi prepared and no node has staged yet (StatePrepared, no header,
// nothing written) is formatted first in the dm-crypt layout, as
// ceph-csi's node would with cryptsetup luksFormat, unless readOnly.
func Unlock(ctx context.Context, v Volume, readOnly bool) ([]byte, error) {
	st, err := State(ctx, v.Image)
	if err != nil {
		return nil, err
	}
	if st != StatePrepared && st != StateEncrypted {
		return nil, fmt.Errorf("%w: volume %s is encrypted (volume context), but its image has %s=%q", ErrState, v.ID, MetaState, st)
	}
	pass, err := v.Store.Passphrase(ctx, v.ev())
	if err != nil {
		return nil, err
	}
	defer clear(pass)
	formatted, err := hasHeader(ctx, v.Image)
	if err != nil {
		return nil, err
	}
	if !formatted {
		if st == StateEncrypted {
			return nil, fmt.Errorf("%w: volume %s has %s=%s but no LUKS header", ErrState, v.ID, MetaState, st)
		}
		if readOnly {
			return nil, fmt.Errorf("%w: volume %s was never formatted (%s) and is staged read-only", ErrState, v.ID, StatePrepared)
		}
		if err := checkBlank(ctx, v.Image); err != nil {
			return nil, fmt.Errorf("%w: volume %s: %v", ErrState, v.ID, err)
		}
		vol, err := encryption.Format(ctx, v.Image, pass, &encryption.FormatOptions{Layout: encryption.LayoutDMCrypt, KDF: v.kdf()})
		if err != nil {
			return nil, fmt.Errorf("csicrypt: formatting volume %s: %w", v.ID, err)
		}
		key := bytes.Clone(vol.Key())
		vol.Close()
		if err := setState(ctx, v.Image, StateEncrypted); err != nil {
			clear(key)
			return nil, err
		}
		return key, nil
	}
	key, err := v.unlock(ctx, pass)
	if err != nil {
		return nil, err
	}
	if st == StatePrepared && !readOnly {
		// Formatted by a node that failed before recording it (ceph-csi
		// does the same repair).
		if err := setState(ctx, v.Image, StateEncrypted); err != nil {
			clear(key)
			return nil, err
		}
	}
	return key, nil
}

// blankCheck is how much of a prepared image must be zero to be
// formatted: filesystem and partition signatures live there.
const blankCheck = 1 << 20

// checkBlank refuses an image that has data where a signature would be
// (ceph-csi refuses to format a device blkid finds anything on).
func checkBlank(ctx context.Context, img Image) error {
	n := uint64(blankCheck)
	if img.Size() < n {
		n = img.Size()
	}
	b := make([]byte, n)
	if _, err := img.ReadAt(ctx, b, 0); err != nil {
		return err
	}
	for _, c := range b {
		if c != 0 {
			return fmt.Errorf("it has data but no LUKS header (%s): not formatting it", StatePrepared)
		}
	}
	return nil
}

// devReader is an io.ReaderAt over an Image for the luks package.
type devReader struct {
	ctx context.Context
	img Image
}

func (r devReader) ReadAt(p []byte, off int64) (int, error) {
	return r.img.ReadAt(r.ctx, p, uint64(off))
}

// DataOffset is where an encrypted image's plaintext starts: its LUKS
// data offset, or for an image with no header yet (a prepared ceph-csi
// volume) the dm-crypt layout's 16 MiB header area its first stage
// writes. Plaintext size = image size - DataOffset.
func DataOffset(ctx context.Context, img encryption.Device) (uint64, error) {
	h, err := encryption.ReadHeader(ctx, img)
	if errors.Is(err, encryption.ErrNotEncrypted) {
		return DMCryptHeader, nil
	}
	if err != nil {
		return 0, err
	}
	return h.DataOffset(), nil
}

// RawSize is the image size that gives an encrypted image size bytes of
// plaintext: DataOffset plus size.
func RawSize(ctx context.Context, img encryption.Device, size uint64) (uint64, error) {
	off, err := DataOffset(ctx, img)
	if err != nil {
		return 0, err
	}
	return off + size, nil
}

// DMCryptHeader is the dm-crypt layout's header area (cryptsetup's LUKS2
// default): the plaintext of a volume in that layout is the image minus
// this.
const DMCryptHeader = 16 << 20
