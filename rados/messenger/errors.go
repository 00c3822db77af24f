package messenger

import (
	"errors"
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// ErrWait is wrapped when the server answers CLIENT_IDENT with WAIT.
var ErrWait = errors.New("messenger: server asked us to wait")

// OpError is the error Dial returns and the fault an open connection
// reports. It names the address and the phase that failed.
type OpError struct {
	Op   string // dial, banner, hello, auth, signature, ident, read, write, keepalive
	Addr entity.Addr
	Err  error
}

func (e *OpError) Error() string {
	return fmt.Sprintf("messenger: %s %s: %v", e.Op, e.Addr, e.Err)
}

// Unwrap returns the underlying error.
func (e *OpError) Unwrap() error { return e.Err }

// MissingFeaturesError reports the RADOS feature bits the server requires
// and we lack (from IDENT_MISSING_FEATURES), or that we require and the
// server lacks (Ours set).
type MissingFeaturesError struct {
	Missing uint64
	Ours    bool // true: the server lacks features we require
}

func (e *MissingFeaturesError) Error() string {
	if e.Ours {
		return fmt.Sprintf("server lacks required features %#x", e.Missing)
	}
	return fmt.Sprintf("server requires features %#x we do not support", e.Missing)
}

// Is makes errors.Is(err, ErrMissingFeatures) true.
func (e *MissingFeaturesError) Is(target error) bool { return target == ErrMissingFeatures }

// protoErr wraps a codec error as a protocol error.
func protoErr(err error) error {
	if err == nil || errors.Is(err, ErrProtocol) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrProtocol, err)
}
