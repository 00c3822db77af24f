package encryption

import "errors"

var (
	// ErrNotEncrypted: the image starts with no LUKS header (it is
	// plaintext, or was never formatted). Matches luks.ErrNotLUKS too.
	ErrNotEncrypted = errors.New("encryption: image has no LUKS header")
	// ErrClonedFormat: the image carries librbd's clone magic
	// ("RBDL\xba\xbe"): a clone formatted with its own key over a parent
	// encrypted with another, which needs per-layer decryption.
	ErrClonedFormat = errors.New("encryption: librbd layered-encryption clone")
	// ErrTooSmall: the image cannot hold the header and any data.
	ErrTooSmall = errors.New("encryption: image too small for the header")
	// ErrExists: the image already starts with a LUKS header and Format
	// was not told to overwrite it.
	ErrExists = errors.New("encryption: image is already formatted")
)
