package msgr2

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
