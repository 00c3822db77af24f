package msgr2

import (
	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// Hello is the HELLO payload: the sender's entity type and the address of
// the receiver as the sender sees it (for a client: the address dialled;
// from a server: the client's address, "addr_for_me").
type Hello struct {
	EntityType entity.Type
	PeerAddr   entity.Addr
}

// Encode appends the payload to dst.
func (h *Hello) Encode(dst []byte) []byte {
	e := encoding.NewEncoder(dst)
	e.U8(uint8(h.EntityType))
	h.PeerAddr.Encode(e)
	return e.Bytes()
}

// Decode decodes the payload.
func (h *Hello) Decode(b []byte) error {
	d := encoding.NewDecoder(b)
	h.EntityType = entity.Type(d.U8())
	h.PeerAddr = entity.DecodeAddr(d)
	return payloadErr(TagHello, d.Err())
}
