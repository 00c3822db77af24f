package msgr2

import "github.com/csi-gorbd/csi-gorbd/rados/encoding"

// Auth methods (CEPH_AUTH_*).
const (
	AuthUnknown uint32 = 0
	AuthNone    uint32 = 1
	AuthCephx   uint32 = 2
)

// AuthRequest is the AUTH_REQUEST payload: the auth method, the
// connection modes the client accepts in order of preference, and the
// method's payload.
type AuthRequest struct {
	Method         uint32
	PreferredModes []uint32
	Payload        []byte
}

// Encode appends the payload to dst.
func (a *AuthRequest) Encode(dst []byte) []byte {
	e := encoding.NewEncoder(dst)
	e.U32(a.Method)
	encodeU32s(e, a.PreferredModes)
	e.Bytes32(a.Payload)
	return e.Bytes()
}

// Decode decodes the payload; Payload aliases b.
func (a *AuthRequest) Decode(b []byte) error {
	d := encoding.NewDecoder(b)
	a.Method = d.U32()
	a.PreferredModes = decodeU32s(d)
	a.Payload = d.Bytes()
	return payloadErr(TagAuthRequest, d.Err())
}
