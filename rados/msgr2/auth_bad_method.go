package msgr2

import "github.com/csi-gorbd/csi-gorbd/rados/encoding"

// AuthBadMethod is the AUTH_BAD_METHOD payload: the server refused the
// method (or all offered modes) and lists what it allows.
type AuthBadMethod struct {
	Method         uint32
	Result         int32 // negative errno
	AllowedMethods []uint32
	AllowedModes   []uint32
}

// Encode appends the payload to dst.
func (a *AuthBadMethod) Encode(dst []byte) []byte {
	e := encoding.NewEncoder(dst)
	e.U32(a.Method)
	e.I32(a.Result)
	encodeU32s(e, a.AllowedMethods)
	encodeU32s(e, a.AllowedModes)
	return e.Bytes()
}

// Decode decodes the payload.
func (a *AuthBadMethod) Decode(b []byte) error {
	d := encoding.NewDecoder(b)
	a.Method = d.U32()
	a.Result = d.I32()
	a.AllowedMethods = decodeU32s(d)
	a.AllowedModes = decodeU32s(d)
	return payloadErr(TagAuthBadMethod, d.Err())
}
