package msgr2

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
