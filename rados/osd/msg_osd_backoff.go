package osd

import (
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// Backoff operations (CEPH_OSD_BACKOFF_OP_*).
const (
	BackoffBlock    uint8 = 1
	BackoffAckBlock uint8 = 2
	BackoffUnblock  uint8 = 3
)

// osdBackoff is an MOSDBackoff (v1): the OSD asks us to stop sending ops
// for objects in [Begin, End) of a pg until it unblocks them.
type osdBackoff struct {
	SPG   SPG
	Epoch uint32
	Op    uint8
	ID    uint64
	Begin HObject
	End   HObject
}

func decodeOSDBackoff(front []byte) (*osdBackoff, error) {
	d := encoding.NewDecoder(front)
	b := &osdBackoff{}
	b.SPG = decodeSPG(d)
	b.Epoch = d.U32()
	b.Op = d.U8()
	b.ID = d.U64()
	b.Begin = DecodeHObject(d)
	b.End = DecodeHObject(d)
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("%w: MOSDBackoff: %v", ErrProtocol, err)
	}
	return b, nil
}

func (b *osdBackoff) encode(dst []byte) []byte {
	e := encoding.NewEncoder(dst)
	encodeSPG(e, b.SPG)
	e.U32(b.Epoch)
	e.U8(b.Op)
	e.U64(b.ID)
	EncodeHObject(e, &b.Begin)
	EncodeHObject(e, &b.End)
	return e.Bytes()
}

// contains reports whether h falls in [Begin, End).
func (b *osdBackoff) contains(h *HObject) bool {
	return b.Begin.Compare(h) <= 0 && h.Compare(&b.End) < 0
}
