package encryption

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/csi-gorbd/csi-gorbd/crypt/luks"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// Layout is how a new header is laid out on the image. Both put a LUKS
// header at byte 0 with aes-xts-plain64 data after it (IVs counted in
// 512-byte units from the data offset), so either opens with librbd's
// encryption and with cryptsetup; they differ in what the writer
// chooses, following the tool each one imitates.
type Layout int

const (
	// LayoutLibrbd is what "rbd encryption format IMAGE luks1|luks2"
	// writes: LUKS2 with 4096-byte sectors (LUKS1: 512), the data offset
	// aligned to the image's stripe period (object size x stripe count:
	// 16 MiB for 4 MiB objects). librbd opens it with
	// encryption-format=luks1|luks2|luks. (librbd also pads its header
	// write to the stripe period, which matters only for clones; Format
	// refuses clones, so the padding would only write zeros.)
	LayoutLibrbd Layout = iota + 1
	// LayoutDMCrypt is what "cryptsetup luksFormat" writes on the mapped
	// device (ceph-csi's node): LUKS2 with cryptsetup's 16 MiB header
	// area and 1 MiB data alignment, 4096-byte sectors. cryptsetup and
	// dm-crypt open it over the whole image (an "rbd export" or a mapped
	// device).
	LayoutDMCrypt
)

func (l Layout) String() string {
	switch l {
	case LayoutLibrbd:
		return "librbd"
	case LayoutDMCrypt:
		return "dm-crypt"
	}
	return fmt.Sprintf("Layout(%d)", int(l))
}

// FormatOptions tune Format; the zero value formats LUKS2 in the
// librbd layout with AES-256-XTS and luks.DefaultKDF.
type FormatOptions struct {
	Layout  Layout
	Version int // 1 or 2 [2]
	// KeySize: 32 (AES-128-XTS, librbd's "aes-128") or 64 (AES-256-XTS,
	// "aes-256", the default of both tools).
	KeySize    int
	SectorSize int      // LUKS2 only [4096]
	KDF        luks.KDF // [luks.DefaultKDF; LUKS1: PBKDF2-SHA256]
	// VolumeKey formats with this key instead of a random one.
	VolumeKey []byte
	// Force overwrites an existing LUKS header (its keyslots area is
	// discarded first, so old keyslots do not survive).
	Force bool
	Rand  io.Reader
}

// stripePeriod is librbd's get_stripe_period: object size times stripe
// count, for devices that are RBD images; 0 otherwise.
func stripePeriod(dev Device) (uint64, *rbd.ParentSpec) {
	s, ok := dev.(interface{ Stat() rbd.Info })
	if !ok {
		return 0, nil
	}
	info := s.Stat()
	count := info.Layout.StripeCount
	if count == 0 {
		count = 1
	}
	return info.ObjectSize * count, info.Parent
}

// Format writes a new LUKS header for passphrase at the start of dev
// and returns the unlocked volume (Close it, or hand it to NewImage).
// It refuses images that already carry a LUKS header unless Force is
// set, and clones (whose header belongs to the parent: a clone of an
// encrypted image is opened with the parent's passphrase; add its own
// with AddPassphrase).
func Format(ctx context.Context, dev Device, passphrase []byte, opts *FormatOptions) (*luks.Volume, error) {
	var o FormatOptions
	if opts != nil {
		o = *opts
	}
	if o.Layout == 0 {
		o.Layout = LayoutLibrbd
	}
	if len(passphrase) == 0 {
		return nil, ErrNoPassphrase
	}
	period, parent := stripePeriod(dev)
	if parent != nil {
		return nil, fmt.Errorf("%w: %s is a clone; it shares its parent's header", luks.ErrInvalid, "image")
	}
	lo := luks.FormatOptions{Version: o.Version, KeySize: o.KeySize, SectorSize: o.SectorSize,
		KDF: o.KDF, VolumeKey: o.VolumeKey, Rand: o.Rand}
	switch o.Layout {
	case LayoutLibrbd:
		if lo.Version == 1 {
			lo.SectorSize = 512
		} else if lo.SectorSize == 0 {
			lo.SectorSize = 4096
		}
		if period != 0 {
			lo.Alignment = period
		}
	case LayoutDMCrypt:
		if lo.Version != 1 && lo.SectorSize == 0 {
			lo.SectorSize = 4096
		}
	default:
		return nil, fmt.Errorf("%w: layout %v", luks.ErrInvalid, o.Layout)
	}
	first := make([]byte, 4096)
	if dev.Size() >= uint64(len(first)) {
		if _, err := dev.ReadAt(ctx, first, 0); err != nil {
			return nil, fmt.Errorf("encryption: reading old header: %w", err)
		}
	}
	formatted := bytes.HasPrefix(first, []byte("LUKS\xba\xbe")) || isCloneMagic(first)
	if formatted && !o.Force {
		return nil, ErrExists
	}
	vol, err := luks.Format(lo, passphrase)
	if err != nil {
		return nil, err
	}
	h := vol.Header()
	if h.DataOffset() >= dev.Size() {
		vol.Close()
		return nil, fmt.Errorf("%w: format needs more than %d bytes, image has %d", ErrTooSmall, h.DataOffset(), dev.Size())
	}
	if formatted {
		// Old keyslots must not survive in the new keyslots area.
		if err := dev.Discard(ctx, 0, h.DataOffset()); err != nil {
			vol.Close()
			return nil, fmt.Errorf("encryption: discarding the old header: %w", err)
		}
	}
	b, err := vol.HeaderBytes()
	if err != nil {
		vol.Close()
		return nil, err
	}
	// The whole header area is written, as librbd and cryptsetup do (they
	// fill the keyslots area): readers that skip unallocated ranges must
	// not find holes there. Pacific's qemu block-status over an encrypted
	// image asks librbd about plaintext offsets as if they were raw ones,
	// and shows zeros for plaintext that lies over header objects that do
	// not exist.
	if uint64(len(b)) < h.DataOffset() {
		b = append(b, make([]byte, h.DataOffset()-uint64(len(b)))...)
	}
	if _, err := dev.WriteAt(ctx, b, 0); err != nil {
		vol.Close()
		return nil, fmt.Errorf("encryption: writing header: %w", err)
	}
	return vol, nil
}

// NewImage returns the plaintext view of dev for an already unlocked
// volume (e.g. the one Format returned). The Image owns vol.
func NewImage(dev Device, vol *luks.Volume, readOnly bool) (*Image, error) {
	return newImage(dev, vol, readOnly)
}

// AddPassphrase adds a keyslot for newPass to the header on dev,
// unlocking it with oldPass, and returns the new keyslot's id (a clone
// or restored volume gets its own passphrase for the same volume key).
func AddPassphrase(ctx context.Context, dev Device, oldPass, newPass []byte, kdf luks.KDF, lim *luks.Limits) (int, error) {
	h, err := ReadHeader(ctx, dev)
	if err != nil {
		return 0, err
	}
	rw := devReader{ctx, dev}
	vol, err := h.Unlock(rw, oldPass, lim)
	if err != nil {
		return 0, err
	}
	defer vol.Close()
	slot, err := vol.AddKeyslot(newPass, kdf)
	if err != nil {
		return 0, err
	}
	return slot, vol.Commit(rw)
}

// RemovePassphrase removes the keyslot that pass opens (not the last
// one) and overwrites its area.
func RemovePassphrase(ctx context.Context, dev Device, pass []byte, lim *luks.Limits) error {
	h, err := ReadHeader(ctx, dev)
	if err != nil {
		return err
	}
	rw := devReader{ctx, dev}
	vol, err := h.Unlock(rw, pass, lim)
	if err != nil {
		return err
	}
	defer vol.Close()
	if err := vol.RemoveKeyslot(vol.Slot()); err != nil {
		return err
	}
	return vol.Commit(rw)
}

// librbd marks a clone formatted with its own key by replacing the LUKS
// magic with "RBDL\xba\xbe" in both header copies (luks/Magic.cc since
// Quincy), so that no LUKS tool opens the child alone: its unwritten
// areas show the parent's data, encrypted with the parent's key.
var cloneMagic = []byte("RBDL\xba\xbe")

func isCloneMagic(b []byte) bool { return bytes.HasPrefix(b, cloneMagic) }

// IsEncrypted reports whether dev starts with a LUKS header (or librbd's
// clone magic).
func IsEncrypted(ctx context.Context, dev Device) (bool, error) {
	_, err := ReadHeader(ctx, dev)
	switch {
	case err == nil, errors.Is(err, ErrClonedFormat):
		return true, nil
	case errors.Is(err, ErrNotEncrypted):
		return false, nil
	}
	return false, err
}
