package rados

import (
	"context"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/osd"
)

// Comparison operators for CmpXattr and OmapCmp.
const (
	CmpEQ  = osd.CmpEQ
	CmpNE  = osd.CmpNE
	CmpGT  = osd.CmpGT
	CmpGTE = osd.CmpGTE
	CmpLT  = osd.CmpLT
	CmpLTE = osd.CmpLTE
)

// OmapAssertion is one comparison of OmapCmp.
type OmapAssertion = osd.OmapAssertion

// opList is what WriteOp and ReadOp share: the ops, the request flags and
// the asserts.
type opList struct {
	ops   []osd.Op
	flags uint32
	// version is the object's user version after Operate.
	version uint64
	// inl backs ops while there are few (most operations have one or
	// two), and req is the request Operate sends: no allocations beyond
	// the operation's own on the I/O path.
	inl [2]osd.Op
	req osd.Request
}

func (l *opList) add(o osd.Op) int {
	if l.ops == nil {
		l.ops = l.inl[:0]
	}
	l.ops = append(l.ops, o)
	return len(l.ops) - 1
}

// AssertExists fails the operation with ENOENT unless the object exists.
func (l *opList) AssertExists() { l.add(osd.AssertExists()) }

// AssertVersion fails the operation unless the object's user version is
// ver (ERANGE if older, EOVERFLOW if newer).
func (l *opList) AssertVersion(ver uint64) { l.add(osd.AssertVersion(ver)) }

// CmpXattr fails the operation with ECANCELED unless attribute name
// compares to value as op says.
func (l *opList) CmpXattr(name string, op uint8, value []byte) {
	l.add(osd.CmpXattr(name, op, value))
}

// OmapCmp fails the operation with ECANCELED unless every comparison
// holds.
func (l *opList) OmapCmp(a map[string]OmapAssertion) { l.add(osd.OmapCmp(a)) }

// Version returns the object's user version after Operate.
func (l *opList) Version() uint64 { return l.version }

func (l *opList) run(ctx context.Context, io *IOContext, oid string, mtime time.Time) (*osd.Request, error) {
	req := &l.req
	io.fill(req, oid, l.ops)
	req.Flags = l.flags
	req.MTime = mtime
	err := osdErr(io.c.osd.Do(ctx, req))
	l.version = req.Version
	return req, err
}

// WriteOp is a compound write: its steps apply atomically, in order, or
// not at all. Build it with the methods, then call Operate once.
type WriteOp struct {
	opList
	mtime time.Time
}

// NewWriteOp returns an empty write operation.
func NewWriteOp() *WriteOp { return &WriteOp{} }

// SetMTime sets the modification time written (zero: the OSD's clock).
func (w *WriteOp) SetMTime(t time.Time) { w.mtime = t }

// SetFullTry lets the write proceed when the pool is full (deletes and
// other space-freeing writes); the OSD still refuses ones that grow.
func (w *WriteOp) SetFullTry() { w.flags |= osd.FlagFullTry }

// Create creates the object (EEXIST if exclusive and it exists).
func (w *WriteOp) Create(exclusive bool) { w.add(osd.Create(exclusive)) }

// Write writes data at off.
func (w *WriteOp) Write(data []byte, off uint64) { w.add(osd.Write(off, data)) }

// WriteFull replaces the object's data.
func (w *WriteOp) WriteFull(data []byte) { w.add(osd.WriteFull(data)) }

// Append appends data.
func (w *WriteOp) Append(data []byte) { w.add(osd.Append(data)) }

// Zero zeroes a range.
func (w *WriteOp) Zero(off, length uint64) { w.add(osd.Zero(off, length)) }

// Truncate sets the size.
func (w *WriteOp) Truncate(size uint64) { w.add(osd.Truncate(size)) }

// Remove deletes the object.
func (w *WriteOp) Remove() { w.add(osd.Delete()) }

// SetXattr sets an attribute.
func (w *WriteOp) SetXattr(name string, value []byte) { w.add(osd.SetXattr(name, value)) }

// RmXattr removes an attribute.
func (w *WriteOp) RmXattr(name string) { w.add(osd.RmXattr(name)) }

// SetOmap sets omap pairs.
func (w *WriteOp) SetOmap(kv map[string][]byte) { w.add(osd.OmapSet(kv)) }

// RmOmapKeys removes omap keys.
func (w *WriteOp) RmOmapKeys(keys ...string) { w.add(osd.OmapRmKeys(keys...)) }

// CleanOmap removes all omap pairs and the header.
func (w *WriteOp) CleanOmap() { w.add(osd.OmapClear()) }

// SetOmapHeader sets the omap header.
func (w *WriteOp) SetOmapHeader(h []byte) { w.add(osd.OmapSetHeader(h)) }

// SetAllocHint tells the OSD the expected object and write sizes.
func (w *WriteOp) SetAllocHint(objectSize, writeSize uint64, flags uint32) {
	w.add(osd.SetAllocHint(objectSize, writeSize, flags))
}

// Exec calls a writing class method (sent with the snap context).
func (w *WriteOp) Exec(cls, method string, in []byte) { w.add(osd.CallWrite(cls, method, in)) }

// Operate runs the operation on oid.
func (w *WriteOp) Operate(ctx context.Context, io *IOContext, oid string) error {
	_, err := w.run(ctx, io, oid, w.mtime)
	return err
}

// ReadOp is a compound read. Each step method returns a result that is
// filled in by Operate.
type ReadOp struct {
	opList
	steps []func(*osd.Op)
}

// NewReadOp returns an empty read operation.
func NewReadOp() *ReadOp { return &ReadOp{} }

// SetBalanceReads lets replicas other than the primary serve the read.
func (r *ReadOp) SetBalanceReads() { r.flags |= osd.FlagBalanceReads }

func (r *ReadOp) step(o osd.Op, fn func(*osd.Op)) {
	r.opList.add(o)
	r.steps = append(r.steps, fn)
}

// OpResult holds one step's own result: Err (nil, or a syscall.Errno)
// and its output bytes.
type OpResult struct {
	Err  error
	Data []byte
}

func (res *OpResult) set(o *osd.Op) {
	res.Err = o.Err()
	res.Data = o.Out
}

// Read reads length bytes at off (0: to the end).
func (r *ReadOp) Read(off, length uint64) *OpResult {
	res := &OpResult{}
	r.step(osd.Read(off, length), res.set)
	return res
}

// GetXattr reads one attribute.
func (r *ReadOp) GetXattr(name string) *OpResult {
	res := &OpResult{}
	r.step(osd.GetXattr(name), res.set)
	return res
}

// GetOmapHeader reads the omap header.
func (r *ReadOp) GetOmapHeader() *OpResult {
	res := &OpResult{}
	r.step(osd.OmapGetHeader(), res.set)
	return res
}

// Exec calls a read-only class method; Data is its output.
func (r *ReadOp) Exec(cls, method string, in []byte) *OpResult {
	res := &OpResult{}
	r.step(osd.Call(cls, method, in), res.set)
	return res
}

// StatResult is the result of a Stat step.
type StatResult struct {
	Err error
	ObjectStat
}

// Stat reads size and mtime.
func (r *ReadOp) Stat() *StatResult {
	res := &StatResult{}
	r.step(osd.Stat(), func(o *osd.Op) {
		if res.Err = o.Err(); res.Err == nil {
			st, err := osd.ParseStat(o.Out)
			res.Size, res.ModTime, res.Err = st.Size, st.MTime, err
		}
	})
	return res
}

// MapResult is the result of a step returning key/value pairs.
type MapResult struct {
	Err  error
	Vals map[string][]byte
	More bool // more omap pairs follow (GetOmapValues)
}

// GetXattrs reads all attributes.
func (r *ReadOp) GetXattrs() *MapResult {
	res := &MapResult{}
	r.step(osd.GetXattrs(), func(o *osd.Op) {
		if res.Err = o.Err(); res.Err == nil {
			res.Vals, res.Err = osd.ParseXattrs(o.Out)
		}
	})
	return res
}

// GetOmapValues reads up to max pairs after startAfter with prefix.
func (r *ReadOp) GetOmapValues(startAfter, prefix string, max uint64) *MapResult {
	res := &MapResult{}
	r.step(osd.OmapGetVals(startAfter, prefix, max), func(o *osd.Op) {
		if res.Err = o.Err(); res.Err == nil {
			res.Vals, res.More, res.Err = osd.ParseOmapVals(o.Out)
		}
	})
	return res
}

// GetOmapValuesByKeys reads the given keys.
func (r *ReadOp) GetOmapValuesByKeys(keys ...string) *MapResult {
	res := &MapResult{}
	r.step(osd.OmapGetValsByKeys(keys...), func(o *osd.Op) {
		if res.Err = o.Err(); res.Err == nil {
			res.Vals, res.Err = osd.ParseOmapValsByKeys(o.Out)
		}
	})
	return res
}

// KeysResult is the result of GetOmapKeys.
type KeysResult struct {
	Err  error
	Keys []string
	More bool
}

// GetOmapKeys lists up to max keys after startAfter.
func (r *ReadOp) GetOmapKeys(startAfter string, max uint64) *KeysResult {
	res := &KeysResult{}
	r.step(osd.OmapGetKeys(startAfter, max), func(o *osd.Op) {
		if res.Err = o.Err(); res.Err == nil {
			res.Keys, res.More, res.Err = osd.ParseOmapKeys(o.Out)
		}
	})
	return res
}

// add appends an op without a result.
func (r *ReadOp) add(o osd.Op) { r.step(o, nil) }

// AssertExists fails the read with ENOENT unless the object exists.
func (r *ReadOp) AssertExists() { r.add(osd.AssertExists()) }

// AssertVersion fails the read unless the object's version is ver.
func (r *ReadOp) AssertVersion(ver uint64) { r.add(osd.AssertVersion(ver)) }

// CmpXattr fails the read with ECANCELED unless the comparison holds.
func (r *ReadOp) CmpXattr(name string, op uint8, value []byte) { r.add(osd.CmpXattr(name, op, value)) }

// OmapCmp fails the read with ECANCELED unless every comparison holds.
func (r *ReadOp) OmapCmp(a map[string]OmapAssertion) { r.add(osd.OmapCmp(a)) }

// Operate runs the read on oid and fills in the step results (also when
// the operation as a whole failed: steps before the failure have theirs).
func (r *ReadOp) Operate(ctx context.Context, io *IOContext, oid string) error {
	req, err := r.run(ctx, io, oid, time.Time{})
	for i, fn := range r.steps {
		if fn != nil && i < len(req.Ops) {
			fn(&req.Ops[i])
		}
	}
	return err
}
