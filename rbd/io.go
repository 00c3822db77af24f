package rbd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// maxParallel bounds the object requests one call keeps in flight.
const maxParallel = 8

// forRange runs fn for each object extent of the image range [off,
// off+n), a few at a time, and returns the first error. A range in one
// object (most small I/O) runs fn in place with no extent list.
func forRange(l Layout, off, n uint64, fn func(ObjectExtent) error) error {
	if objno, objOff, ok := l.single(off, n); ok {
		buf := [1]BufferExtent{{0, n}}
		return fn(ObjectExtent{ObjectNo: objno, Offset: objOff, Length: n, Buffer: buf[:]})
	}
	return forExtents(l.Map(off, n), fn)
}

// forExtents runs fn for each object extent, a few at a time, and returns
// the first error.
func forExtents(ext []ObjectExtent, fn func(ObjectExtent) error) error {
	if len(ext) == 1 {
		// the common small I/O: no goroutine, semaphore or wait group
		return fn(ext[0])
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, maxParallel)
	)
	for _, e := range ext {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(e); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// ReadAt reads len(p) bytes at off. Objects that do not exist read as
// zeros, or, in a clone and within the parent overlap, as the parent's
// data. Reads past the end return io.EOF semantics as ErrOutOfRange.
func (img *Image) ReadAt(ctx context.Context, p []byte, off uint64) (int, error) {
	st := img.state()
	if off >= st.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, ErrOutOfRange
	}
	n := uint64(len(p))
	if off+n > st.size {
		n = st.size - off
	}
	err := forRange(st.layout, off, n, func(e ObjectExtent) error {
		// An extent that is one piece of p is read in place; a striped
		// one is gathered through a buffer.
		var buf []byte
		direct := len(e.Buffer) == 1
		if direct {
			buf = p[e.Buffer[0].Off : e.Buffer[0].Off+e.Buffer[0].Len]
		} else {
			buf = make([]byte, e.Length)
		}
		got, err := st.data.read(ctx, DataObjectName(st.prefix, e.ObjectNo), buf, e.Offset)
		missing := errors.Is(err, syscall.ENOENT)
		if err != nil && !missing {
			return fmt.Errorf("rbd: %s: reading object %d: %w", img.name, e.ObjectNo, err)
		}
		if missing {
			got = 0
			clear(buf)
		} else {
			clear(buf[got:])
		}
		if !direct {
			pos := uint64(0)
			for _, b := range e.Buffer {
				copy(p[b.Off:b.Off+b.Len], buf[pos:pos+b.Len])
				pos += b.Len
			}
		}
		if missing && st.parentImg != nil {
			return img.readFromParent(ctx, st, p, off, e)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if n < uint64(len(p)) {
		return int(n), ErrOutOfRange
	}
	return int(n), nil
}

// readFromParent fills the buffer pieces of a missing child object from
// the parent, clipped to the overlap.
func (img *Image) readFromParent(ctx context.Context, st *imageState, p []byte, off uint64, e ObjectExtent) error {
	for _, b := range e.Buffer {
		start := off + b.Off
		if start >= st.overlap {
			continue
		}
		l := min(b.Len, st.overlap-start)
		if _, err := st.parentImg.ReadAt(ctx, p[b.Off:b.Off+l], start); err != nil && !errors.Is(err, ErrOutOfRange) {
			return fmt.Errorf("rbd: %s: reading parent: %w", img.name, err)
		}
	}
	return nil
}

func (img *Image) checkWritable(off, n uint64, st *imageState) error {
	if img.readOnly {
		return ErrReadOnly
	}
	if off > st.size || n > st.size-off {
		return fmt.Errorf("%w: %d+%d > %d", ErrOutOfRange, off, n, st.size)
	}
	return nil
}

// WriteAt writes p at off with the image's current snap context.
func (img *Image) WriteAt(ctx context.Context, p []byte, off uint64) (int, error) {
	done, lerr := img.startWrite(ctx) // the exclusive lock (exclusive_lock.go)
	if lerr != nil {
		return 0, lerr
	}
	defer done()
	st := img.state()
	if err := img.checkWritable(off, uint64(len(p)), st); err != nil {
		return 0, err
	}
	err := forRange(st.layout, off, uint64(len(p)), func(e ObjectExtent) error {
		// one piece of p goes out as is (the OSD client does not keep
		// it past the call); striped pieces are gathered.
		var data []byte
		if len(e.Buffer) == 1 {
			data = p[e.Buffer[0].Off : e.Buffer[0].Off+e.Buffer[0].Len]
		} else {
			data = make([]byte, 0, e.Length)
			for _, b := range e.Buffer {
				data = append(data, p[b.Off:b.Off+b.Len]...)
			}
		}
		w, err := img.startObjectWrite(ctx, st, e.ObjectNo, ObjectExists)
		if err != nil {
			return err
		}
		w.Write(data, e.Offset)
		return img.sendObjectWrite(ctx, st, e.ObjectNo, w)
	})
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// startObjectWrite begins a write of one data object: it marks the
// object in the object map first (when the image has one), and, in a
// clone whose object does not exist yet, starts the write with a copyup
// of the parent's data so the rest of the object keeps showing the parent
// (krbd's copyup state machine). The caller adds its ops and sends it with
// sendObjectWrite.
func (img *Image) startObjectWrite(ctx context.Context, st *imageState, objno uint64, state uint8) (*rados.WriteOp, error) {
	if err := img.markObject(ctx, st, objno, state); err != nil {
		return nil, err
	}
	w := rados.NewWriteOp()
	if st.parentImg != nil && img.objectInOverlap(st, objno) {
		ok, err := st.data.exists(ctx, DataObjectName(st.prefix, objno))
		if err != nil {
			return nil, fmt.Errorf("rbd: %s: stat object %d: %w", img.name, objno, err)
		}
		if !ok {
			parentData, err := img.parentObjectData(ctx, st, objno)
			if err != nil {
				return nil, err
			}
			lead, err := img.copyup(ctx, st, objno, parentData, false)
			if err != nil {
				return nil, err
			}
			if lead {
				w.Exec(clsRBD, "copyup", parentData)
			}
		}
	}
	return w, nil
}

// sendObjectWrite sends a write startObjectWrite began.
func (img *Image) sendObjectWrite(ctx context.Context, st *imageState, objno uint64, w *rados.WriteOp) error {
	if err := st.data.write(ctx, DataObjectName(st.prefix, objno), w); err != nil {
		return fmt.Errorf("rbd: %s: writing object %d: %w", img.name, objno, err)
	}
	return nil
}

// copyup brings the parent's data (of child object objno) into the
// missing object, as librbd's CopyupRequest does. The class method writes
// only if the object is still missing, so a racing writer's data is not
// overwritten.
//
// Without snapshots (or with nothing but zeros to copy) it reports lead:
// the copyup goes out as the leading op of the caller's write. With snapshots and
// data it is sent alone, with an EMPTY snap context: the OSD then takes
// the data as older than every snapshot, so the snapshots, which showed
// the parent's data there, keep showing it even when the parent link goes
// away (deep flatten) — sent with the image's snap context the object
// would read as missing at every snapshot. The snapshots' object maps are
// marked first (EXISTS for the oldest, EXISTS_CLEAN for later ones with
// fast-diff), as librbd's C_UpdateObjectMap does. Flatten passes
// standalone: the copyup is sent even without snapshots and lead is
// false.
func (img *Image) copyup(ctx context.Context, st *imageState, objno uint64, data []byte, standalone bool) (lead bool, err error) {
	deep := len(st.snapc.Snaps) > 0 && !allZero(data)
	if !deep && !standalone {
		return true, nil
	}
	oid := DataObjectName(st.prefix, objno)
	if deep && img.om.loaded() {
		if err := img.om.markSnapshots(ctx, st.snapc, objno, st.features&FeatureFastDiff != 0); err != nil {
			return false, err
		}
	}
	data0 := st.data
	if deep {
		data0 = st.data.withSnapContext(SnapContext{})
	}
	if err := data0.write(ctx, oid, opCall(clsRBD, "copyup", data)); err != nil {
		return false, fmt.Errorf("rbd: %s: copyup of object %d: %w", img.name, objno, err)
	}
	return false, nil
}

// objectImageExtents returns the image ranges stored in object objno.
func objectImageExtents(l Layout, objno uint64) [][2]uint64 {
	n := l.normalized()
	su, sc, os := n.StripeUnit, n.StripeCount, n.ObjectSize()
	set := objno / sc
	col := objno % sc
	var out [][2]uint64
	for row := uint64(0); row < os/su; row++ {
		// unit index within the image
		unit := set*(os/su)*sc + row*sc + col
		out = append(out, [2]uint64{unit * su, su})
	}
	return out
}

func (img *Image) objectInOverlap(st *imageState, objno uint64) bool {
	for _, r := range objectImageExtents(st.layout, objno) {
		if r[0] < st.overlap {
			return true
		}
	}
	return false
}

// parentObjectData reads what the parent shows for the whole child object
// objno, trimmed of trailing zeros beyond the overlap.
func (img *Image) parentObjectData(ctx context.Context, st *imageState, objno uint64) ([]byte, error) {
	buf := make([]byte, st.layout.ObjectSize())
	used := uint64(0)
	pos := uint64(0)
	for _, r := range objectImageExtents(st.layout, objno) {
		if r[0] < st.overlap {
			l := min(r[1], st.overlap-r[0])
			if _, err := st.parentImg.ReadAt(ctx, buf[pos:pos+l], r[0]); err != nil && !errors.Is(err, ErrOutOfRange) {
				return nil, fmt.Errorf("rbd: %s: copyup read: %w", img.name, err)
			}
			used = pos + l
		}
		pos += r[1]
	}
	return buf[:used], nil
}

// markObject records state for objno in the live object map, if loaded,
// before the data changes (objectmap_state.go).
func (img *Image) markObject(ctx context.Context, st *imageState, objno uint64, state uint8) error {
	return img.om.mark(ctx, objno, state, st.features&FeatureFastDiff != 0)
}

// removeObject deletes data object objno with the object map kept in
// step: PENDING before, NONEXISTENT after; an object the map knows is
// missing is left alone.
func (img *Image) removeObject(ctx context.Context, st *imageState, objno uint64) error {
	if img.om.knownMissing(objno) {
		return nil
	}
	if err := img.markObject(ctx, st, objno, ObjectPending); err != nil {
		return err
	}
	err := st.data.remove(ctx, DataObjectName(st.prefix, objno))
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("rbd: %s: removing object %d: %w", img.name, objno, err)
	}
	return img.markObject(ctx, st, objno, ObjectNonexistent)
}

// Discard releases [off, off+n): whole objects are deleted, partial ones
// zeroed (truncated when the range reaches the object end). In a clone,
// objects the parent shows through are zeroed instead of deleted.
func (img *Image) Discard(ctx context.Context, off, n uint64) error {
	return img.zeroRange(ctx, off, n, true)
}

// WriteZeroes makes [off, off+n) read as zeros.
func (img *Image) WriteZeroes(ctx context.Context, off, n uint64) error {
	return img.zeroRange(ctx, off, n, false)
}

func (img *Image) zeroRange(ctx context.Context, off, n uint64, discard bool) error {
	done, err := img.startWrite(ctx) // the exclusive lock (exclusive_lock.go)
	if err != nil {
		return err
	}
	defer done()
	st := img.state()
	if err := img.checkWritable(off, n, st); err != nil {
		return err
	}
	os := st.layout.ObjectSize()
	return forExtents(st.layout.Map(off, n), func(e ObjectExtent) error {
		oid := DataObjectName(st.prefix, e.ObjectNo)
		hasParent := st.parentImg != nil && img.objectInOverlap(st, e.ObjectNo)
		if e.Offset == 0 && e.Length == os && !hasParent {
			return img.removeObject(ctx, st, e.ObjectNo)
		}
		if !hasParent {
			ok, err := st.data.exists(ctx, oid)
			if err != nil || !ok {
				return err // nothing to zero
			}
		}
		w, err := img.startObjectWrite(ctx, st, e.ObjectNo, ObjectExists)
		if err != nil {
			return err
		}
		if discard && e.Offset+e.Length == os && !hasParent {
			w.Truncate(e.Offset)
		} else {
			w.Zero(e.Offset, e.Length)
		}
		return img.sendObjectWrite(ctx, st, e.ObjectNo, w)
	})
}
