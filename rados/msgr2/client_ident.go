package msgr2

import (
	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// CONNECT flags carried in CLIENT_IDENT and SERVER_IDENT.
const FlagLossy uint64 = 1 // CEPH_MSG_CONNECT_LOSSY

// ClientIdent is the CLIENT_IDENT payload: who we are and whom we meant to
// reach, sent once authentication is complete.
type ClientIdent struct {
	Addrs             entity.AddrVec // our addresses
	TargetAddr        entity.Addr    // the address we dialled
	GlobalID          int64
	GlobalSeq         uint64
	SupportedFeatures uint64
	RequiredFeatures  uint64
	Flags             uint64
	Cookie            uint64 // client cookie, random and non-zero
}

// Encode appends the payload to dst.
func (c *ClientIdent) Encode(dst []byte) []byte {
	e := encoding.NewEncoder(dst)
	c.Addrs.Encode(e)
	c.TargetAddr.Encode(e)
	e.I64(c.GlobalID)
	e.U64(c.GlobalSeq)
	e.U64(c.SupportedFeatures)
	e.U64(c.RequiredFeatures)
	e.U64(c.Flags)
	e.U64(c.Cookie)
	return e.Bytes()
}

// Decode decodes the payload.
func (c *ClientIdent) Decode(b []byte) error {
	d := encoding.NewDecoder(b)
	c.Addrs = entity.DecodeAddrVec(d)
	c.TargetAddr = entity.DecodeAddr(d)
	c.GlobalID = d.I64()
	c.GlobalSeq = d.U64()
	c.SupportedFeatures = d.U64()
	c.RequiredFeatures = d.U64()
	c.Flags = d.U64()
	c.Cookie = d.U64()
	return payloadErr(TagClientIdent, d.Err())
}
