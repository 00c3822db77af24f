package msgr2

// Wait is the WAIT frame: the server asks the client to back off and retry
// (a connection race on a lossless session). It has one empty segment.
type Wait struct{}

// Encode appends the (empty) payload to dst.
func (Wait) Encode(dst []byte) []byte { return dst }

// Decode accepts any payload.
func (*Wait) Decode([]byte) error { return nil }
