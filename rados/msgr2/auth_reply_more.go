package msgr2

import "github.com/csi-gorbd/csi-gorbd/rados/encoding"

// AuthReplyMore is the AUTH_REPLY_MORE payload (server to client): one more
// round of the auth method's exchange.
type AuthReplyMore struct {
	Payload []byte
}

// Encode appends the payload to dst.
func (a *AuthReplyMore) Encode(dst []byte) []byte {
	e := encoding.NewEncoder(dst)
	e.Bytes32(a.Payload)
	return e.Bytes()
}

// Decode decodes the payload; Payload aliases b.
func (a *AuthReplyMore) Decode(b []byte) error {
	d := encoding.NewDecoder(b)
	a.Payload = d.Bytes()
	return payloadErr(TagAuthReplyMore, d.Err())
}
