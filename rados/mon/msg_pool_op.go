package mon

import "github.com/csi-gorbd/csi-gorbd/rados/encoding"

// Pool operations (POOL_OP_* in include/rados.h).
const (
	PoolOpCreate              uint32 = 0x01
	PoolOpDelete              uint32 = 0x02
	PoolOpAuidChange          uint32 = 0x03
	PoolOpCreateSnap          uint32 = 0x11
	PoolOpDeleteSnap          uint32 = 0x12
	PoolOpCreateUnmanagedSnap uint32 = 0x21
	PoolOpDeleteUnmanagedSnap uint32 = 0x22
)

// MPoolOp header version (MPoolOp.h HEAD_VERSION 4, COMPAT_VERSION 2).
const (
	mpoolOpVersion = 4
	mpoolOpCompat  = 2
)

// MPoolOp (CEPH_MSG_POOLOP): paxos header (version = the osdmap epoch the
// client has), fsid, u32 pool, u32 op, u64 auid (0), u64 snapid, string
// name, u8 pad, i16 crush_rule.
type MPoolOp struct {
	FSID      [16]byte
	Pool      uint32
	Op        uint32
	SnapID    uint64
	Name      string
	CrushRule int16
	Epoch     uint64 // paxos version: the osdmap epoch we have
}

// Encode returns the v4 front.
func (m *MPoolOp) Encode() []byte {
	e := encoding.NewEncoder(nil)
	encodePaxos(e, m.Epoch)
	e.UUID(m.FSID)
	e.U32(m.Pool)
	e.U32(m.Op)
	e.U64(0) // auid
	e.U64(m.SnapID)
	e.String(m.Name)
	e.U8(0) // pad (v3 -> v4 encoding change)
	e.I16(m.CrushRule)
	return e.Bytes()
}

// MPoolOpReply (CEPH_MSG_POOLOP_REPLY): paxos header, fsid, u32 reply code
// (a negative errno as unsigned), u32 osdmap epoch, bool has_data and the
// response bufferlist (for CREATE_UNMANAGED_SNAP the encoded u64 snap id).
type MPoolOpReply struct {
	FSID  [16]byte
	Code  int32
	Epoch uint32
	Data  []byte
}

// DecodeMPoolOpReply decodes the front.
func DecodeMPoolOpReply(front []byte) (*MPoolOpReply, error) {
	d := encoding.NewDecoder(front)
	decodePaxos(d)
	m := &MPoolOpReply{FSID: d.UUID(), Code: d.I32(), Epoch: d.U32()}
	if d.Bool() {
		m.Data = d.BytesCopy()
	}
	return m, decodeErr("pool_op_reply", d.Err())
}

// SnapID returns the snap id carried in the response data of a
// CREATE_UNMANAGED_SNAP reply.
func (m *MPoolOpReply) SnapID() (uint64, bool) {
	if len(m.Data) < 8 {
		return 0, false
	}
	d := encoding.NewDecoder(m.Data)
	return d.U64(), d.Err() == nil
}
