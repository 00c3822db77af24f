package msgr2

import (
	"errors"
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// Session frames (SESSION_RECONNECT and its answers) resume a lossless
// session. Mon and OSD client sessions are lossy, so a client never sends
// SESSION_RECONNECT; the codecs exist to decode what a server might send
// and report it as a typed error.

// SessionReconnect is the SESSION_RECONNECT payload.
type SessionReconnect struct {
	Addrs        entity.AddrVec
	ClientCookie uint64
	ServerCookie uint64
	GlobalSeq    uint64
	ConnectSeq   uint64
	MsgSeq       uint64
}

// Encode appends the payload to dst.
func (s *SessionReconnect) Encode(dst []byte) []byte {
	e := encoding.NewEncoder(dst)
	s.Addrs.Encode(e)
	e.U64(s.ClientCookie)
	e.U64(s.ServerCookie)
	e.U64(s.GlobalSeq)
	e.U64(s.ConnectSeq)
	e.U64(s.MsgSeq)
	return e.Bytes()
}

// Decode decodes the payload.
func (s *SessionReconnect) Decode(b []byte) error {
	d := encoding.NewDecoder(b)
	s.Addrs = entity.DecodeAddrVec(d)
	s.ClientCookie = d.U64()
	s.ServerCookie = d.U64()
	s.GlobalSeq = d.U64()
	s.ConnectSeq = d.U64()
	s.MsgSeq = d.U64()
	return payloadErr(TagSessionReconnect, d.Err())
}

// SessionReset is the SESSION_RESET payload.
type SessionReset struct {
	Full bool
}

// Encode appends the payload to dst.
func (s *SessionReset) Encode(dst []byte) []byte {
	e := encoding.NewEncoder(dst)
	e.Bool(s.Full)
	return e.Bytes()
}

// Decode decodes the payload.
func (s *SessionReset) Decode(b []byte) error {
	d := encoding.NewDecoder(b)
	s.Full = d.Bool()
	return payloadErr(TagSessionReset, d.Err())
}

// SessionRetry is the SESSION_RETRY payload.
type SessionRetry struct {
	ConnectSeq uint64
}

// Encode appends the payload to dst.
func (s *SessionRetry) Encode(dst []byte) []byte { return appendU64(dst, s.ConnectSeq) }

// Decode decodes the payload.
func (s *SessionRetry) Decode(b []byte) (err error) {
	s.ConnectSeq, err = decodeU64(TagSessionRetry, b)
	return err
}

// SessionRetryGlobal is the SESSION_RETRY_GLOBAL payload.
type SessionRetryGlobal struct {
	GlobalSeq uint64
}

// Encode appends the payload to dst.
func (s *SessionRetryGlobal) Encode(dst []byte) []byte { return appendU64(dst, s.GlobalSeq) }

// Decode decodes the payload.
func (s *SessionRetryGlobal) Decode(b []byte) (err error) {
	s.GlobalSeq, err = decodeU64(TagSessionRetryGlobal, b)
	return err
}

// SessionReconnectOK is the SESSION_RECONNECT_OK payload.
type SessionReconnectOK struct {
	MsgSeq uint64
}

// Encode appends the payload to dst.
func (s *SessionReconnectOK) Encode(dst []byte) []byte { return appendU64(dst, s.MsgSeq) }

// Decode decodes the payload.
func (s *SessionReconnectOK) Decode(b []byte) (err error) {
	s.MsgSeq, err = decodeU64(TagSessionReconnectOK, b)
	return err
}

func appendU64(dst []byte, v uint64) []byte {
	e := encoding.NewEncoder(dst)
	e.U64(v)
	return e.Bytes()
}

func decodeU64(t Tag, b []byte) (uint64, error) {
	d := encoding.NewDecoder(b)
	v := d.U64()
	return v, payloadErr(t, d.Err())
}

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
