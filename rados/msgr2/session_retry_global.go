package msgr2

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
