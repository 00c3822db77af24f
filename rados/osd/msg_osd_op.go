package osd

import (
	"fmt"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// MOSDOp versions: a Luminous+ (RESEND_ON_SPLIT) client sends v8; the
// OSD accepts compat 3.
const (
	mosdOpVersion uint16 = 8
	mosdOpCompat  uint16 = 3
)

// osdOpMsg holds the fields of an MOSDOp v8 front (src/messages/MOSDOp.h
// encode_payload for a peer with RESEND_ON_SPLIT).
type osdOpMsg struct {
	SPG     SPG    // the folded pg and shard
	RawHash uint32 // the object's full placement hash
	Epoch   uint32
	Flags   uint32
	MTime   time.Time
	Pool    int64
	Key     string
	NS      string
	Oid     string
	Ops     []Op
	SnapID  uint64
	SnapSeq uint64
	Snaps   []uint64
	Attempt int32
	// Features are our supported feature bits (the OSD uses them to
	// encode its reply).
	Features uint64
}

// frontSize estimates the encoded front size so encoding never grows the
// buffer.
func (m *osdOpMsg) frontSize() int {
	return 40 + 12 + 22 + 24 + 4 + 8 + 6 + 30 + len(m.Key) + len(m.NS) + 4 + len(m.Oid) +
		2 + opWireSize*len(m.Ops) + 8 + 12 + 8*len(m.Snaps) + 4 + 8
}

// encode appends the MOSDOp front to dst and returns it with the data
// segment: the ops' input payloads concatenated in op order. When exactly
// one op has input, the data segment is that slice itself (no copy).
func (m *osdOpMsg) encode(dst []byte) (front, data []byte) {
	e := encoding.NewEncoder(dst)
	encodeSPG(e, m.SPG)
	e.U32(m.RawHash)
	e.U32(m.Epoch)
	e.U32(m.Flags)
	// osd_reqid_t v2: all zero, so the OSD takes the request id from the
	// message source and header tid (MOSDOp::get_reqid); resends keep the
	// tid, which is what lets the OSD recognise them.
	r := e.StructBegin(2, 2)
	e.U8(0)  // entity_name_t type
	e.I64(0) // entity_name_t num
	e.U64(0) // tid
	e.I32(0) // inc
	e.StructEnd(r)
	// blkin trace info: trace id, span id, parent span id.
	e.U64(0)
	e.U64(0)
	e.U64(0)
	e.U32(0) // client_inc
	if m.MTime.IsZero() {
		e.U32(0)
		e.U32(0)
	} else {
		e.Timespec(m.MTime)
	}
	encodeLocator(e, m.Pool, m.Key, m.NS, -1)
	e.String(m.Oid)
	e.U16(uint16(len(m.Ops)))
	var total, nIn int
	var only []byte
	for i := range m.Ops {
		in := m.Ops[i].In
		m.Ops[i].encodeWire(e, uint32(len(in)))
		if len(in) > 0 {
			total += len(in)
			nIn++
			only = in
		}
	}
	e.U64(m.SnapID)
	e.U64(m.SnapSeq)
	e.U32(uint32(len(m.Snaps)))
	for _, s := range m.Snaps {
		e.U64(s)
	}
	e.I32(m.Attempt)
	e.U64(m.Features)
	switch nIn {
	case 0:
	case 1:
		data = only
	default:
		data = make([]byte, 0, total)
		for i := range m.Ops {
			data = append(data, m.Ops[i].In...)
		}
	}
	return e.Bytes(), data
}

// decodeOSDOp decodes an MOSDOp v8 front and data (the OSD side; used by
// tests and fuzzing to check what encode produced).
func decodeOSDOp(front, data []byte) (*osdOpMsg, error) {
	d := encoding.NewDecoder(front)
	m := &osdOpMsg{}
	m.SPG = decodeSPG(d)
	m.RawHash = d.U32()
	m.Epoch = d.U32()
	m.Flags = d.U32()
	rd, _ := d.Struct(2)
	rd.Skip(9 + 8 + 4)
	d.Skip(24) // trace
	d.U32()    // client_inc
	m.MTime = d.Timespec()
	loc := decodeLocator(d)
	m.Pool, m.Key, m.NS = loc.Pool, loc.Key, loc.Namespace
	m.Oid = d.String()
	n := int(d.U16())
	if n*opWireSize > d.Len() {
		return nil, fmt.Errorf("%w: MOSDOp: %d ops", ErrProtocol, n)
	}
	m.Ops = make([]Op, n)
	off := 0
	for i := 0; i < n; i++ {
		w := decodeWireOp(d)
		m.Ops[i] = Op{Code: w.code, Flags: w.flags, Args: w.args}
		if uint64(off)+uint64(w.payloadLen) > uint64(len(data)) {
			return nil, fmt.Errorf("%w: MOSDOp: op payloads exceed the data segment", ErrProtocol)
		}
		m.Ops[i].In = data[off : off+int(w.payloadLen)]
		off += int(w.payloadLen)
	}
	m.SnapID = d.U64()
	m.SnapSeq = d.U64()
	ns := d.Count(8)
	for i := 0; i < ns && d.Err() == nil; i++ {
		m.Snaps = append(m.Snaps, d.U64())
	}
	m.Attempt = d.I32()
	m.Features = d.U64()
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("%w: MOSDOp: %v", ErrProtocol, err)
	}
	if off != len(data) {
		return nil, fmt.Errorf("%w: MOSDOp: %d data bytes unused", ErrProtocol, len(data)-off)
	}
	return m, nil
}
