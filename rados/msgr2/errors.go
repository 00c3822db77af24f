package msgr2

import (
	"errors"
	"fmt"
)

// Errors returned by the codec. Decoding errors wrap one of them.
var (
	// ErrMsgr1 means the peer sent the msgr v1 banner ("ceph v027").
	ErrMsgr1 = errors.New("msgr2: peer speaks msgr v1")
	// ErrBadBanner means the peer's banner is not a msgr2 banner.
	ErrBadBanner = errors.New("msgr2: bad banner")
	// ErrFeatures means the msgr2 feature sets of the two sides do not
	// match (a required feature is missing on one side).
	ErrFeatures = errors.New("msgr2: msgr2 feature mismatch")
	// ErrBadCRC means a preamble, segment or control crc32c did not match.
	ErrBadCRC = errors.New("msgr2: bad crc")
	// ErrBadPreamble means a preamble field is out of range.
	ErrBadPreamble = errors.New("msgr2: bad preamble")
	// ErrTooLarge means a segment is longer than the configured Limits.
	ErrTooLarge = errors.New("msgr2: segment too large")
	// ErrAuthTag means an AES-GCM authentication tag did not verify.
	ErrAuthTag = errors.New("msgr2: bad GCM auth tag")
	// ErrBadEpilogue means the epilogue's late status is invalid.
	ErrBadEpilogue = errors.New("msgr2: bad epilogue")
	// ErrCompressed means the peer sent a compressed frame, which we never
	// negotiate.
	ErrCompressed = errors.New("msgr2: compressed frame")
	// ErrBadPayload wraps control payload decoding errors.
	ErrBadPayload = errors.New("msgr2: bad control payload")
	// ErrBadSecret means a connection secret is too short for secure mode.
	ErrBadSecret = errors.New("msgr2: bad connection secret")
)

// PayloadError reports a control payload that failed to decode.
type PayloadError struct {
	Tag Tag
	Err error
}

func (e *PayloadError) Error() string {
	return fmt.Sprintf("msgr2: decode %s payload: %v", e.Tag, e.Err)
}

// Unwrap returns both ErrBadPayload and the underlying error.
func (e *PayloadError) Unwrap() []error { return []error{ErrBadPayload, e.Err} }

func payloadErr(t Tag, err error) error {
	if err == nil {
		return nil
	}
	return &PayloadError{Tag: t, Err: err}
}
