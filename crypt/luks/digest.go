package luks

import (
	"crypto/subtle"
	"fmt"
	"io"
)

type readerAt = io.ReaderAt

// luks1DigestLen is LUKS1's fixed digest length (SHA-1 sized); LUKS2
// digests are either that or the hash's size.
const luks1DigestLen = 20

// acceptKey returns key when it matches d; otherwise it clears key and
// fails with ErrWrongPassphrase (or the digest's own error).
func acceptKey(d *jsonDigest, key []byte, lim Limits) ([]byte, error) {
	ok, err := checkDigest(d, key, lim)
	if err != nil || !ok {
		clear(key)
		if err == nil {
			err = ErrWrongPassphrase
		}
		return nil, err
	}
	return key, nil
}

// checkDigest verifies a candidate volume key against a pbkdf2 digest.
func checkDigest(d *jsonDigest, key []byte, lim Limits) (bool, error) {
	if d.Type != "pbkdf2" {
		return false, fmt.Errorf("%w: digest type %q", ErrUnsupported, d.Type)
	}
	h, err := hashByName(d.Hash)
	if err != nil {
		return false, err
	}
	if len(d.Salt) != 32 || d.Iterations < 1 {
		return false, fmt.Errorf("%w: digest salt %d bytes, %d iterations", ErrCorrupt, len(d.Salt), d.Iterations)
	}
	if d.Iterations > lim.MaxIterations {
		return false, fmt.Errorf("%w: digest iterations %d > %d", ErrKDFLimit, d.Iterations, lim.MaxIterations)
	}
	if n := len(d.Digest); n != luks1DigestLen && n != h().Size() {
		return false, fmt.Errorf("%w: digest of %d bytes", ErrCorrupt, n)
	}
	got, err := pbkdf2Key(h, key, d.Salt, d.Iterations, len(d.Digest))
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, d.Digest) == 1, nil
}
