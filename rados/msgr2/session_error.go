package msgr2

import (
	"errors"
	"fmt"
)

// ErrSession is wrapped by SessionError.
var ErrSession = errors.New("msgr2: unexpected session frame")

// SessionError reports a session-resumption frame (SESSION_RESET, _RETRY,
// _RETRY_GLOBAL, _RECONNECT_OK) received by a client that never asked for
// session resumption. Value is the frame's number (global or connect seq,
// msg seq, or 1 for a full reset).
type SessionError struct {
	Tag   Tag
	Value uint64
}

func (e *SessionError) Error() string {
	return fmt.Sprintf("msgr2: unexpected %s (%d) on a lossy client session", e.Tag, e.Value)
}

// Unwrap returns ErrSession.
func (e *SessionError) Unwrap() error { return ErrSession }

// DecodeSessionFrame decodes one of the session answers a server sends to
// a reconnecting client and returns it as a *SessionError, or a payload
// error if it does not decode.
func DecodeSessionFrame(t Tag, b []byte) error {
	switch t {
	case TagSessionReset:
		var r SessionReset
		if err := r.Decode(b); err != nil {
			return err
		}
		v := uint64(0)
		if r.Full {
			v = 1
		}
		return &SessionError{Tag: t, Value: v}
	case TagSessionRetry, TagSessionRetryGlobal, TagSessionReconnectOK:
		v, err := decodeU64(t, b)
		if err != nil {
			return err
		}
		return &SessionError{Tag: t, Value: v}
	}
	return fmt.Errorf("msgr2: %s is not a session frame", t)
}
