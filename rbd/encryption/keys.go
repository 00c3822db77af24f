package encryption

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// Volume names the image a passphrase is for. Key stores that keep a
// wrapped passphrase with the image (as ceph-csi's Secret-based KMS
// types do, in the image's metadata) use Meta.
type Volume struct {
	// ID is the caller's name for the volume (a CSI volume or snapshot
	// id). Stores that bind a wrapped passphrase to its volume use it:
	// ceph-csi's metadata KMS seals with it as the salt.
	ID                              string
	Pool, Namespace, Image, ImageID string
	// Meta is the image's key/value metadata (rbd image-meta); an
	// *rbd.Image satisfies it. It may be nil for stores that do not need
	// it.
	Meta Metadata
}

// Metadata is the image metadata a key store may read and write.
type Metadata interface {
	GetMetadata(ctx context.Context, key string) ([]byte, error)
	SetMetadata(ctx context.Context, key string, value []byte) error
}

// PassphraseSource yields the passphrase that unlocks an existing
// volume. Implementations: a fixed passphrase, a file, and (in the CSI
// layer) Kubernetes-Secret- or KMS-backed stores. The returned slice
// belongs to the caller, who zeroes it after use.
type PassphraseSource interface {
	Passphrase(ctx context.Context, vol Volume) ([]byte, error)
}

// PassphraseCreator is a PassphraseSource that can also make the
// passphrase of a new volume (generate it, wrap it, store it where
// Passphrase will find it).
type PassphraseCreator interface {
	PassphraseSource
	NewPassphrase(ctx context.Context, vol Volume) ([]byte, error)
}

// StaticPassphrase is one passphrase for every volume.
type StaticPassphrase []byte

// Passphrase implements PassphraseSource.
func (s StaticPassphrase) Passphrase(context.Context, Volume) ([]byte, error) {
	if len(s) == 0 {
		return nil, ErrNoPassphrase
	}
	return append([]byte(nil), s...), nil
}

// NewPassphrase implements PassphraseCreator: the same passphrase.
func (s StaticPassphrase) NewPassphrase(ctx context.Context, v Volume) ([]byte, error) {
	return s.Passphrase(ctx, v)
}

// PassphraseFile reads the passphrase from a file each time, as rbd's
// --encryption-passphrase-file and rbd-nbd do: the whole file, bytes as
// they are (a trailing newline is part of the passphrase for them too,
// so that a file written by "echo" unlocks only if it was also formatted
// from that file).
type PassphraseFile string

// Passphrase implements PassphraseSource.
func (f PassphraseFile) Passphrase(context.Context, Volume) ([]byte, error) {
	b, err := os.ReadFile(string(f))
	if err != nil {
		return nil, fmt.Errorf("encryption: passphrase file: %w", err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: %s is empty", ErrNoPassphrase, f)
	}
	return b, nil
}

// NewPassphrase implements PassphraseCreator.
func (f PassphraseFile) NewPassphrase(ctx context.Context, v Volume) ([]byte, error) {
	return f.Passphrase(ctx, v)
}

// ErrNoPassphrase: the source has no passphrase for the volume.
var ErrNoPassphrase = errors.New("encryption: no passphrase")
