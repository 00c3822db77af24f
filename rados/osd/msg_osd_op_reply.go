package osd

import (
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/osdmap"
)

// maxReplyOps bounds the op count of a reply (the OSD never answers more
// ops than we sent; MOSDOp carries a u16 count).
const maxReplyOps = 1 << 16

// osdOpReply is a decoded MOSDOpReply (src/messages/MOSDOpReply.h).
type osdOpReply struct {
	Oid           string
	PG            osdmap.PG
	Flags         uint64
	Result        int32
	Epoch         uint32
	Attempt       int32
	Ops           []replyOp
	Version       uint64 // replay_version.version
	UserVersion   uint64
	Redirect      *Redirect
	HeaderVersion uint16
}

// replyOp is one op of a reply: its code, return value and output bytes
// (aliasing the message's data segment).
type replyOp struct {
	Code OpCode
	Rval int32
	Out  []byte
	n    uint32 // payload_len, while decoding
}

// Redirect is a request_redirect_t: the OSD tells us to resend to another
// pool (and optionally another object name).
type Redirect struct {
	Locator Locator
	Object  string
}

// decodeOSDOpReply decodes an MOSDOpReply front (header version v) and
// splits the data segment into the per-op outputs.
func decodeOSDOpReply(front, data []byte, v uint16) (*osdOpReply, error) {
	r := &osdOpReply{HeaderVersion: v}
	if err := r.decode(front, data, v, nil); err != nil {
		return nil, err
	}
	return r, nil
}

// decode fills r, reusing ops when it has room.
func (r *osdOpReply) decode(front, data []byte, v uint16, ops []replyOp) error {
	if v < 4 {
		return fmt.Errorf("%w: MOSDOpReply v%d is too old", ErrProtocol, v)
	}
	d := encoding.NewDecoder(front)
	r.Oid = string(d.Bytes())
	r.PG = decodePG(d)
	r.Flags = d.U64()
	r.Result = d.I32()
	d.Skip(12) // bad_replay_version
	r.Epoch = d.U32()
	n := d.Count(opWireSize + 4)
	if n > maxReplyOps {
		return fmt.Errorf("%w: MOSDOpReply with %d ops", ErrProtocol, n)
	}
	if cap(ops) < n {
		ops = make([]replyOp, n)
	}
	ops = ops[:n]
	var total uint64
	for i := 0; i < n; i++ {
		w := decodeWireOp(d)
		ops[i] = replyOp{Code: w.code, n: w.payloadLen}
		total += uint64(w.payloadLen)
	}
	r.Attempt = d.I32()
	for i := 0; i < n; i++ {
		ops[i].Rval = d.I32()
	}
	if v >= 5 {
		r.Version = d.U64()
		d.U32() // replay_version.epoch
		r.UserVersion = d.U64()
	}
	if v >= 6 {
		present := true
		if v >= 7 {
			present = d.Bool()
		}
		if present && d.Err() == nil {
			rd, _ := d.Struct(1)
			loc := decodeLocator(rd)
			obj := rd.String()
			if !(loc.Pool == -1 && obj == "" && loc.Key == "" && loc.Namespace == "") {
				r.Redirect = &Redirect{Locator: loc, Object: obj}
			}
		}
	}
	if err := d.Err(); err != nil {
		return fmt.Errorf("%w: MOSDOpReply: %v", ErrProtocol, err)
	}
	if total != uint64(len(data)) {
		return fmt.Errorf("%w: MOSDOpReply ops claim %d data bytes, message has %d", ErrProtocol, total, len(data))
	}
	off := 0
	for i := 0; i < n; i++ {
		l := int(ops[i].n)
		ops[i].Out = data[off : off+l : off+l]
		off += l
	}
	r.Ops = ops
	return nil
}

// encodeOSDOpReply builds a reply front and data (for tests and fuzz
// seeds; the client never sends replies).
func encodeOSDOpReply(r *osdOpReply) (front, data []byte) {
	e := encoding.NewEncoder(nil)
	e.String(r.Oid)
	encodePG(e, r.PG)
	e.U64(r.Flags)
	e.I32(r.Result)
	e.U64(0)
	e.U32(0)
	e.U32(r.Epoch)
	e.U32(uint32(len(r.Ops)))
	for _, o := range r.Ops {
		e.U16(uint16(o.Code))
		e.U32(0)
		e.Raw(make([]byte, 28))
		e.U32(uint32(len(o.Out)))
		data = append(data, o.Out...)
	}
	e.I32(r.Attempt)
	for _, o := range r.Ops {
		e.I32(o.Rval)
	}
	e.U64(r.Version)
	e.U32(r.Epoch)
	e.U64(r.UserVersion)
	if r.Redirect != nil {
		e.Bool(true)
		m := e.StructBegin(1, 1)
		encodeLocator(e, r.Redirect.Locator.Pool, r.Redirect.Locator.Key, r.Redirect.Locator.Namespace, -1)
		e.String(r.Redirect.Object)
		e.U32(0)
		e.StructEnd(m)
	} else {
		e.Bool(false)
	}
	// blkin trace (v8)
	e.U64(0)
	e.U64(0)
	e.U64(0)
	return e.Bytes(), data
}
