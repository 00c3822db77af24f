package msgr2

import "github.com/csi-gorbd/csi-gorbd/rados/encoding"

// Connection modes (CEPH_CON_MODE_*).
const (
	ModeUnknown uint32 = 0
	ModeCRC     uint32 = 1
	ModeSecure  uint32 = 2
)

// AuthDone is the AUTH_DONE payload: authentication succeeded; the server
// assigns our global id, picks the connection mode and sends the method's
// final payload (session key and connection secret material).
type AuthDone struct {
	GlobalID uint64
	ConMode  uint32
	Payload  []byte
}

// Encode appends the payload to dst.
func (a *AuthDone) Encode(dst []byte) []byte {
	e := encoding.NewEncoder(dst)
	e.U64(a.GlobalID)
	e.U32(a.ConMode)
	e.Bytes32(a.Payload)
	return e.Bytes()
}

// Decode decodes the payload; Payload aliases b.
func (a *AuthDone) Decode(b []byte) error {
	d := encoding.NewDecoder(b)
	a.GlobalID = d.U64()
	a.ConMode = d.U32()
	a.Payload = d.Bytes()
	return payloadErr(TagAuthDone, d.Err())
}
