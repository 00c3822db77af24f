package osd

import (
	"fmt"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// Extent union offsets: offset, length, truncate_size, truncate_seq.
func extentOp(code OpCode, off, length uint64) Op {
	o := Op{Code: code}
	o.put64(0, off)
	o.put64(8, length)
	return o
}

// Read reads length bytes at off (length 0 reads to the end of the
// object). Out holds the data; a short read means the object is shorter.
func Read(off, length uint64) Op { return extentOp(OpRead, off, length) }

// ReadInto reads len(p) bytes at off like Read; when it is the request's
// only op, the reply's data is received straight into p (no allocation or
// copy) and Out aliases p. p must not be used until the request is done.
func ReadInto(off uint64, p []byte) Op {
	o := extentOp(OpRead, off, uint64(len(p)))
	o.dst = p
	return o
}

// SparseRead reads like Read but returns only the allocated extents; parse
// Out with ParseSparseRead.
func SparseRead(off, length uint64) Op { return extentOp(OpSparseRead, off, length) }

// Write writes data at off. The slice is sent as is (not copied): keep it
// unchanged until the request completes.
func Write(off uint64, data []byte) Op {
	o := extentOp(OpWrite, off, uint64(len(data)))
	o.In = data
	return o
}

// WriteFull replaces the object's data with data.
func WriteFull(data []byte) Op {
	o := extentOp(OpWriteFull, 0, uint64(len(data)))
	o.In = data
	return o
}

// Append appends data to the object.
func Append(data []byte) Op {
	o := extentOp(OpAppend, 0, uint64(len(data)))
	o.In = data
	return o
}

// Zero zeroes length bytes at off (deallocating where it can).
func Zero(off, length uint64) Op { return extentOp(OpZero, off, length) }

// Truncate sets the object's size.
func Truncate(size uint64) Op { return extentOp(OpTruncate, size, 0) }

// Delete removes the object (ENOENT if it does not exist).
func Delete() Op { return Op{Code: OpDelete} }

// Create creates the object; with exclusive it fails with EEXIST if the
// object already exists.
func Create(exclusive bool) Op {
	o := Op{Code: OpCreate}
	if exclusive {
		o.Flags = OpFlagExcl
	}
	return o
}

// Stat returns the object's size and mtime; parse Out with ParseStat.
func Stat() Op { return Op{Code: OpStat} }

// AssertExists fails the request with ENOENT unless the object exists (a
// stat whose output is ignored, as librados does).
func AssertExists() Op { return Op{Code: OpStat} }

// AssertVersion fails the request unless the object's user version is ver
// (ERANGE if lower, EOVERFLOW if higher).
func AssertVersion(ver uint64) Op {
	o := Op{Code: OpAssertVer}
	o.put64(8, ver)
	return o
}

// SetAllocHint tells the OSD the expected object and write sizes.
func SetAllocHint(objectSize, writeSize uint64, flags uint32) Op {
	o := Op{Code: OpSetAllocHint}
	o.put64(0, objectSize)
	o.put64(8, writeSize)
	o.put32(16, flags)
	return o
}

// StatResult is the output of Stat.
type StatResult struct {
	Size  uint64
	MTime time.Time
}

// ParseStat decodes a Stat op's output (u64 size, utime_t mtime).
func ParseStat(out []byte) (StatResult, error) {
	d := encoding.NewDecoder(out)
	var r StatResult
	r.Size = d.U64()
	r.MTime = d.Timespec()
	if err := d.Err(); err != nil {
		return StatResult{}, fmt.Errorf("%w: stat output: %v", ErrProtocol, err)
	}
	return r, nil
}

// Extent is one allocated range of a sparse read.
type Extent struct {
	Off, Len uint64
}

// ParseSparseRead decodes a SparseRead op's output: map<u64,u64> of
// extents, then the data of all extents concatenated. data aliases out.
func ParseSparseRead(out []byte) (extents []Extent, data []byte, err error) {
	d := encoding.NewDecoder(out)
	n := d.Count(16)
	extents = make([]Extent, 0, n)
	var total uint64
	for i := 0; i < n && d.Err() == nil; i++ {
		e := Extent{Off: d.U64(), Len: d.U64()}
		total += e.Len
		extents = append(extents, e)
	}
	data = d.Bytes()
	if err := d.Err(); err != nil {
		return nil, nil, fmt.Errorf("%w: sparse-read output: %v", ErrProtocol, err)
	}
	if total != uint64(len(data)) {
		return nil, nil, fmt.Errorf("%w: sparse-read extents cover %d bytes, data has %d", ErrProtocol, total, len(data))
	}
	return extents, data, nil
}
