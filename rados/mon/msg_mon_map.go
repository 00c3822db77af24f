package mon

import "github.com/csi-gorbd/csi-gorbd/rados/encoding"

// MMonMap (CEPH_MSG_MON_MAP) carries an encoded MonMap in a bufferlist.
type MMonMap struct {
	MonMap []byte
}

// DecodeMMonMap decodes the front of an MMonMap.
func DecodeMMonMap(front []byte) (*MMonMap, error) {
	d := encoding.NewDecoder(front)
	m := &MMonMap{MonMap: d.BytesCopy()}
	return m, decodeErr("mon_map", d.Err())
}

// MMonGetMap (CEPH_MSG_MON_GET_MAP) asks for the current MonMap; its front
// is empty and the answer is an MMonMap.
type MMonGetMap struct{}

// Encode returns the (empty) front.
func (MMonGetMap) Encode() []byte { return nil }
