package rbd

import (
	"fmt"
	"math/bits"
)

// Layout is an image's striping: objects of 1<<Order bytes, filled in
// stripe units of StripeUnit bytes round-robin over StripeCount objects
// (an object set), as Ceph's file_layout_t / Striper::file_to_extents and
// the kernel's ceph_file_to_extents describe. Without STRIPINGV2 the
// stripe unit is the object size and the count is 1, so image offset off
// lives in object off>>Order.
type Layout struct {
	Order       uint8
	StripeUnit  uint64
	StripeCount uint64
}

// ObjectSize is 1<<Order.
func (l Layout) ObjectSize() uint64 { return 1 << l.Order }

// normalized fills the defaults (unit = object size, count = 1).
func (l Layout) normalized() Layout {
	if l.StripeUnit == 0 {
		l.StripeUnit = l.ObjectSize()
	}
	if l.StripeCount == 0 {
		l.StripeCount = 1
	}
	return l
}

// Validate checks the rules librbd enforces at create time: order 12..25,
// stripe unit a divisor of the object size, count ≥ 1.
func (l Layout) Validate() error {
	if l.Order < 12 || l.Order > 25 {
		return fmt.Errorf("%w: object order %d outside 12..25", ErrInvalid, l.Order)
	}
	n := l.normalized()
	if n.StripeUnit > n.ObjectSize() || n.ObjectSize()%n.StripeUnit != 0 {
		return fmt.Errorf("%w: stripe unit %d does not divide the object size %d", ErrInvalid, n.StripeUnit, n.ObjectSize())
	}
	return nil
}

// objectSetSize is the bytes of one object set (stripe count × object
// size); ok is false when that does not fit in 64 bits.
func (l Layout) objectSetSize() (size uint64, ok bool) {
	n := l.normalized()
	hi, lo := bits.Mul64(n.StripeCount, n.ObjectSize())
	return lo, hi == 0
}

// IsFancy reports whether the layout needs STRIPINGV2.
func (l Layout) IsFancy() bool {
	n := l.normalized()
	return n.StripeUnit != n.ObjectSize() || n.StripeCount != 1
}

// BufferExtent is a piece of the caller's buffer.
type BufferExtent struct {
	Off, Len uint64
}

// ObjectExtent is a contiguous range of one data object and the pieces of
// the caller's buffer (in order) that map onto it.
type ObjectExtent struct {
	ObjectNo uint64
	Offset   uint64 // within the object
	Length   uint64
	Buffer   []BufferExtent
}

// ObjectCount is the number of data objects an image of size bytes spans
// (librbd's Striper::get_num_objects).
func (l Layout) ObjectCount(size uint64) uint64 {
	n := l.normalized()
	os := n.ObjectSize()
	if !l.IsFancy() {
		return (size + os - 1) / os
	}
	period := n.StripeCount * os
	periods := size / period
	rem := size % period
	count := periods * n.StripeCount
	if rem > 0 {
		// A partial object set: how many of its objects hold data.
		if rem >= n.StripeUnit*n.StripeCount {
			count += n.StripeCount
		} else {
			count += (rem + n.StripeUnit - 1) / n.StripeUnit
		}
	}
	return count
}

// single reports whether [off, off+length) is one contiguous piece of one
// object (always so without fancy striping within an object, the common
// small I/O) and returns that object and the offset in it. The I/O path
// then needs no extent list (Map allocates one).
func (l Layout) single(off, length uint64) (objno, objOff uint64, ok bool) {
	n := l.normalized()
	os := n.ObjectSize()
	if length == 0 {
		return 0, 0, false
	}
	if n.StripeCount == 1 {
		if off/os != (off+length-1)/os {
			return 0, 0, false
		}
		return off / os, off % os, true
	}
	su := n.StripeUnit
	if off/su != (off+length-1)/su {
		return 0, 0, false
	}
	blockno := off / su
	stripeno, stripepos := blockno/n.StripeCount, blockno%n.StripeCount
	perObject := os / su
	return (stripeno/perObject)*n.StripeCount + stripepos, (stripeno%perObject)*su + off%su, true
}

// Map turns the image range [off, off+length) into object extents, merging
// adjacent pieces that land contiguously in the same object. Extents are in
// order of first touch; buffer offsets are relative to off.
func (l Layout) Map(off, length uint64) []ObjectExtent {
	n := l.normalized()
	su, sc, os := n.StripeUnit, n.StripeCount, n.ObjectSize()
	stripesPerObject := os / su
	var out []ObjectExtent
	index := map[uint64]int{}
	var bufOff uint64
	for length > 0 {
		blockno := off / su
		stripeno := blockno / sc
		stripepos := blockno % sc
		objectsetno := stripeno / stripesPerObject
		objno := objectsetno*sc + stripepos
		blockStart := (stripeno % stripesPerObject) * su
		blockOff := off % su
		x := min(length, su-blockOff)
		objOff := blockStart + blockOff

		i, ok := index[objno]
		if ok && out[i].Offset+out[i].Length == objOff {
			e := &out[i]
			e.Length += x
			if last := &e.Buffer[len(e.Buffer)-1]; last.Off+last.Len == bufOff {
				last.Len += x
			} else {
				e.Buffer = append(e.Buffer, BufferExtent{bufOff, x})
			}
		} else {
			index[objno] = len(out)
			out = append(out, ObjectExtent{ObjectNo: objno, Offset: objOff, Length: x,
				Buffer: []BufferExtent{{bufOff, x}}})
		}
		off += x
		bufOff += x
		length -= x
	}
	return out
}
