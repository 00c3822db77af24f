package osd

import (
	"encoding/binary"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// opWireSize is sizeof(struct ceph_osd_op): u16 op, u32 flags, a 28-byte
// union, u32 payload_len.
const opWireSize = 38

// Op is one operation of a compound request (an OSDOp). Build it with the
// constructors in ops_*.go; after the request completes, Rval and Out hold
// the op's own result and output bytes (Out aliases the reply message).
type Op struct {
	Code  OpCode
	Flags uint32   // CEPH_OSD_OP_FLAG_*
	Args  [28]byte // the ceph_osd_op union, little-endian
	In    []byte   // input payload, sent in the data segment

	// write marks ops that modify the object even though the op code does
	// not say so (class methods that write).
	write bool

	// dst: see ReadInto.
	dst []byte

	Rval int32
	Out  []byte
}

// Err returns the op's own result as an error (nil when Rval >= 0).
func (o *Op) Err() error { return errnoErr(o.Rval) }

func (o *Op) put64(off int, v uint64) { binary.LittleEndian.PutUint64(o.Args[off:], v) }
func (o *Op) put32(off int, v uint32) { binary.LittleEndian.PutUint32(o.Args[off:], v) }
func (o *Op) get64(off int) uint64    { return binary.LittleEndian.Uint64(o.Args[off:]) }

// IsWrite reports whether the op modifies the object.
func (o *Op) IsWrite() bool { return o.write || (o.Code.IsWrite() && o.Code != OpCall) }

// encodeWire appends the packed ceph_osd_op with payload_len n.
func (o *Op) encodeWire(e *encoding.Encoder, n uint32) {
	e.U16(uint16(o.Code))
	e.U32(o.Flags)
	e.Raw(o.Args[:])
	e.U32(n)
}

// wireOp is a decoded ceph_osd_op from a reply.
type wireOp struct {
	code       OpCode
	flags      uint32
	args       [28]byte
	payloadLen uint32
}

func decodeWireOp(d *encoding.Decoder) wireOp {
	var w wireOp
	w.code = OpCode(d.U16())
	w.flags = d.U32()
	copy(w.args[:], d.Raw(28))
	w.payloadLen = d.U32()
	return w
}
