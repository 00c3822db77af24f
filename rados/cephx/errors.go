package cephx

import (
	"errors"
	"fmt"
	"syscall"
)

// Sentinel errors; every error this package returns wraps one of them (or an
// encoding.DecodeError for truncated input) so callers can use errors.Is.
var (
	// ErrBadKey: a key that cannot be decoded or used (unknown type, wrong length).
	ErrBadKey = errors.New("cephx: bad key")
	// ErrDecrypt: ciphertext that does not decrypt (bad padding, failed
	// integrity check, bad envelope magic). Usually the wrong key.
	ErrDecrypt = errors.New("cephx: decryption failed")
	// ErrProtocol: a malformed or unexpected message.
	ErrProtocol = errors.New("cephx: protocol error")
	// ErrPermission: the peer refused our credentials (EACCES/EPERM): wrong
	// key, unknown entity, rejected global_id reclaim or authorizer.
	ErrPermission = errors.New("cephx: permission denied")
	// ErrNoTicket: no valid ticket for the service; renew tickets over the mon session.
	ErrNoTicket = errors.New("cephx: no valid ticket")
	// ErrBadMethod: the server does not allow cephx or any offered mode.
	ErrBadMethod = errors.New("cephx: authentication method or mode not allowed")
	// ErrKeyring: a keyring file that cannot be parsed or lacks the entity.
	ErrKeyring = errors.New("cephx: keyring")
)

// Linux errno values as they appear (negated) in Ceph results.
const (
	errnoEPERM  = 1
	errnoEACCES = 13
)

// resultError converts a negative Ceph result into an error.
func resultError(what string, result int32) error {
	switch result {
	case 0:
		return nil
	case -errnoEACCES, -errnoEPERM:
		return fmt.Errorf("%w: %s: %w", ErrPermission, what, errnoOf(result))
	}
	return fmt.Errorf("%w: %s: %w", ErrProtocol, what, errnoOf(result))
}

// errnoOf returns the syscall.Errno of a negative Ceph result, so that
// errors.Is(err, syscall.EACCES) works too.
func errnoOf(result int32) error {
	if result < 0 && result > -4096 {
		return syscall.Errno(-result)
	}
	return fmt.Errorf("result %d", result)
}
