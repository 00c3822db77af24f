package msgr2

// Ack is the ACK payload: the sequence number of the last message received.
type Ack struct {
	Seq uint64
}

// Encode appends the payload to dst.
func (a *Ack) Encode(dst []byte) []byte { return appendU64(dst, a.Seq) }

// Decode decodes the payload.
func (a *Ack) Decode(b []byte) (err error) {
	a.Seq, err = decodeU64(TagAck, b)
	return err
}
