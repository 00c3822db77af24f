package msgr2

import "github.com/csi-gorbd/csi-gorbd/rados/encoding"

// AuthRequestMore is the AUTH_REQUEST_MORE payload (client to server),
// answering an AUTH_REPLY_MORE.
type AuthRequestMore struct {
	Payload []byte
}

// Encode appends the payload to dst.
func (a *AuthRequestMore) Encode(dst []byte) []byte {
	e := encoding.NewEncoder(dst)
	e.Bytes32(a.Payload)
	return e.Bytes()
}

// Decode decodes the payload; Payload aliases b.
func (a *AuthRequestMore) Decode(b []byte) error {
	d := encoding.NewDecoder(b)
	a.Payload = d.Bytes()
	return payloadErr(TagAuthRequestMore, d.Err())
}
