package msgr2

import "github.com/csi-gorbd/csi-gorbd/rados/encoding"

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
