package msgr2

import (
	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// ServerIdent is the SERVER_IDENT payload: the server's addresses, id
// (gid: the OSD number for OSDs, the rank-independent global id for mons),
// features and session flags. Mons and OSDs mark client sessions lossy and
// send a zero cookie.
type ServerIdent struct {
	Addrs             entity.AddrVec
	GlobalID          int64
	GlobalSeq         uint64
	SupportedFeatures uint64
	RequiredFeatures  uint64
	Flags             uint64
	Cookie            uint64
}

// Lossy reports whether the server marked the session lossy.
func (s *ServerIdent) Lossy() bool { return s.Flags&FlagLossy != 0 }

// Encode appends the payload to dst.
func (s *ServerIdent) Encode(dst []byte) []byte {
	e := encoding.NewEncoder(dst)
	s.Addrs.Encode(e)
	e.I64(s.GlobalID)
	e.U64(s.GlobalSeq)
	e.U64(s.SupportedFeatures)
	e.U64(s.RequiredFeatures)
	e.U64(s.Flags)
	e.U64(s.Cookie)
	return e.Bytes()
}

// Decode decodes the payload.
func (s *ServerIdent) Decode(b []byte) error {
	d := encoding.NewDecoder(b)
	s.Addrs = entity.DecodeAddrVec(d)
	s.GlobalID = d.I64()
	s.GlobalSeq = d.U64()
	s.SupportedFeatures = d.U64()
	s.RequiredFeatures = d.U64()
	s.Flags = d.U64()
	s.Cookie = d.U64()
	return payloadErr(TagServerIdent, d.Err())
}
