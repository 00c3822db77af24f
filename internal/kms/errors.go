package kms

import "errors"

// Errors; test with errors.Is. Messages name the secret or configuration
// entry to fix and never hold key material.
var (
	// ErrSecret: a secret lacks the passphrase (encryptionPassphrase), or
	// the Secret a KMS entry names cannot be read.
	ErrSecret = errors.New("kms: missing encryption secret")
	// ErrWrongPassphrase: the passphrase does not open the volume's
	// sealed passphrase (the secret changed, or is another volume's).
	ErrWrongPassphrase = errors.New("kms: wrong encryption passphrase")
	// ErrNoKey: the volume has no stored passphrase (no
	// rbd.csi.ceph.com/dek for a metadata KMS).
	ErrNoKey = errors.New("kms: volume has no stored passphrase")
	// ErrConfig: the KMS configuration is missing, unreadable, or has no
	// entry for the encryptionKMSID.
	ErrConfig = errors.New("kms: bad KMS configuration")
	// ErrUnsupported: the KMS type is one this driver does not implement.
	ErrUnsupported = errors.New("kms: KMS type not supported")
	// ErrCorrupt: a stored (sealed) passphrase cannot be decoded.
	ErrCorrupt = errors.New("kms: stored passphrase is malformed")
)
