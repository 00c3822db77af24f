package msgr2

import "github.com/csi-gorbd/csi-gorbd/rados/encoding"

// IdentMissingFeatures is the IDENT_MISSING_FEATURES payload: the RADOS
// feature bits the server requires and the client did not offer.
type IdentMissingFeatures struct {
	Missing uint64
}

// Encode appends the payload to dst.
func (m *IdentMissingFeatures) Encode(dst []byte) []byte {
	e := encoding.NewEncoder(dst)
	e.U64(m.Missing)
	return e.Bytes()
}

// Decode decodes the payload.
func (m *IdentMissingFeatures) Decode(b []byte) error {
	d := encoding.NewDecoder(b)
	m.Missing = d.U64()
	return payloadErr(TagIdentMissingFeatures, d.Err())
}
