package luks

import "errors"

var (
	// ErrNotLUKS: the bytes carry no LUKS magic (the device is not a LUKS
	// volume, or is plaintext).
	ErrNotLUKS = errors.New("luks: no LUKS header")
	// ErrCorrupt: a header is present but fails its checksum or its
	// metadata is inconsistent (bad offsets, sizes, JSON).
	ErrCorrupt = errors.New("luks: corrupt header")
	// ErrUnsupported: a valid header uses something this package does not
	// implement (cipher, KDF, hash, reencryption in progress, integrity).
	ErrUnsupported = errors.New("luks: unsupported")
	// ErrWrongPassphrase: no active keyslot opens with the passphrase.
	ErrWrongPassphrase = errors.New("luks: no keyslot opens with this passphrase")
	// ErrNoSpace: no free keyslot or keyslot area is left, or the device
	// is too small for the header.
	ErrNoSpace = errors.New("luks: no space")
	// ErrKDFLimit: a keyslot's KDF asks for more memory or threads than
	// the caller allows (a hostile header must not exhaust the host).
	ErrKDFLimit = errors.New("luks: keyslot KDF exceeds limits")
	// ErrInvalid: an argument is out of range (sizes, alignment, options).
	ErrInvalid = errors.New("luks: invalid argument")
)
