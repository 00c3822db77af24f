package rbd

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"sync"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// blindTrimLimit is the number of object numbers past the new end up to
// which trim simply deletes each one (ENOENT ignored) when no object map
// says which exist. Beyond it a listing of the data pool's namespace is
// cheaper: a few PGNLS round trips of 1024 names each instead of one
// delete per possibly missing object (a 1 TiB image has 262144 of them,
// a 4 EiB one 2^40), and it finds the objects that do exist however large
// and sparse the image is. 4096 objects is 16 GiB at the default order.
const blindTrimLimit = 4096

// objectMapView answers which objects may exist, from an object map:
// objects below n are looked up with get; nothing is known of the rest.
type objectMapView struct {
	n   uint64
	get func(objno uint64) uint8
}

// liveObjectMap is the view of the image's own object map, which this
// writer keeps up to date under the exclusive lock, or nil when there is
// none or the image flags say it is invalid (librbd's object_may_exist
// then answers "may exist" for every object).
func (img *Image) liveObjectMap() *objectMapView {
	if img.state().flags&FlagObjectMapInvalid != 0 {
		return nil
	}
	return img.om.view()
}

// dataObjects is what trimming needs of the data pool.
type dataObjects interface {
	exists(ctx context.Context, oid string) (bool, error)
	write(ctx context.Context, oid string, w *rados.WriteOp) error
	remove(ctx context.Context, oid string) error
	listObjects(ctx context.Context, fn func(oid string) error) error
}

// trimRequest removes an image's data at and beyond a new size (librbd's
// TrimRequest): the image as it is now (size, layout, data object prefix
// and pool) and the image whose live object map is kept in step.
type trimRequest struct {
	img    *Image // its name for errors; its object map, when loaded, is updated
	size   uint64
	layout Layout
	prefix string
	data   dataObjects
	// fastDiff: the image has FAST_DIFF (how object map updates compare)
	fastDiff bool
}

// trim removes the image data at and beyond newSize (see trimRequest).
func (img *Image) trim(ctx context.Context, st *imageState, newSize uint64, om *objectMapView) error {
	t := &trimRequest{img: img, size: st.size, layout: st.layout, prefix: st.prefix, data: st.data,
		fastDiff: st.features&FeatureFastDiff != 0}
	return t.run(ctx, newSize, om)
}

// run trims to newSize: objects wholly beyond it are deleted (ENOENT
// ignored), the boundary object is truncated or zeroed. om, when not nil,
// tells which objects may exist; removeObjects picks the cheapest way to
// find the others.
func (t *trimRequest) run(ctx context.Context, newSize uint64, om *objectMapView) error {
	img, st := t.img, t
	first := st.layout.ObjectCount(newSize)
	last := st.layout.ObjectCount(st.size)
	if first < last {
		if err := t.removeObjects(ctx, first, last, om); err != nil {
			return err
		}
	}
	// The tail of the objects that stay: zero what lies beyond newSize.
	if first > 0 && newSize < st.size {
		end := min(st.size, first*st.layout.ObjectSize())
		if !st.layout.IsFancy() && end > newSize {
			os := st.layout.ObjectSize()
			objno := newSize / os
			oid := DataObjectName(st.prefix, objno)
			if ok, err := st.data.exists(ctx, oid); err != nil {
				return err
			} else if ok {
				if err := st.data.write(ctx, oid, opTruncate(newSize%os)); err != nil {
					return fmt.Errorf("rbd: %s: truncating object %d: %w", img.name, objno, err)
				}
			}
		} else if st.layout.IsFancy() {
			// Striped images interleave the last object set: zero the
			// image range itself, object by object. Only the object set
			// holding newSize has objects below first; later sets are
			// gone already, and mapping the whole rest of a huge image
			// would allocate an extent per stripe unit.
			stop := st.size
			if period, ok := st.layout.objectSetSize(); ok {
				if setEnd, carry := bits.Add64(newSize/period*period, period, 0); carry == 0 {
					stop = min(stop, setEnd)
				}
			}
			for _, e := range st.layout.Map(newSize, stop-newSize) {
				if e.ObjectNo >= first {
					continue
				}
				oid := DataObjectName(st.prefix, e.ObjectNo)
				if ok, err := st.data.exists(ctx, oid); err != nil {
					return err
				} else if ok {
					if err := st.data.write(ctx, oid, opZero(e.Offset, e.Length)); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// removeObjects deletes the data objects first..last-1 that may exist,
// maxParallel at a time, without ever holding a list of them: the object
// numbers are produced by a generator (a walk of the object map, a range,
// or a listing of the pool) and consumed by a fixed set of workers, so
// memory stays constant however large the image. Objects the map covers
// are deleted only when it says they may exist; for the rest, a short
// range is deleted blindly and a long one is replaced by a listing of the
// data pool that yields only this image's objects at or past the first
// not covered.
func (t *trimRequest) removeObjects(ctx context.Context, first, last uint64, om *objectMapView) error {
	img, st := t.img, t
	// Objects the live map tracks get PENDING before and NONEXISTENT
	// after their delete, as librbd's TrimRequest does; mark does
	// nothing when the map is not loaded (Remove, which holds no lock).
	tracked := img.om.tracked()
	del := func(ctx context.Context, o uint64) error {
		if o < tracked {
			if err := img.om.mark(ctx, o, ObjectPending, t.fastDiff); err != nil {
				return err
			}
		}
		err := st.data.remove(ctx, DataObjectName(st.prefix, o))
		if err != nil && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("rbd: %s: trimming object %d: %w", img.name, o, err)
		}
		if o < tracked {
			return img.om.mark(ctx, o, ObjectNonexistent, t.fastDiff)
		}
		return nil
	}

	covered := first // objects first..covered-1 are answered by om
	if om != nil && om.n > first {
		covered = min(last, om.n)
	}
	if covered > first {
		err := forObjects(ctx, func(ctx context.Context, yield func(uint64) bool) error {
			for o := first; o < covered; o++ {
				if o%65536 == 0 && ctx.Err() != nil {
					return ctx.Err()
				}
				if om.get(o) != ObjectNonexistent && !yield(o) {
					return nil
				}
			}
			return nil
		}, del)
		if err != nil {
			return err
		}
	}
	if covered >= last {
		return nil
	}
	if last-covered <= blindTrimLimit {
		return forObjects(ctx, func(_ context.Context, yield func(uint64) bool) error {
			for o := covered; o < last && yield(o); o++ {
			}
			return nil
		}, del)
	}
	return forObjects(ctx, func(ctx context.Context, yield func(uint64) bool) error {
		err := st.data.listObjects(ctx, func(oid string) error {
			if o, ok := parseDataObjectName(st.prefix, oid); ok && o >= covered && !yield(o) {
				return errStopListing
			}
			return nil
		})
		if errors.Is(err, errStopListing) {
			return nil // a worker failed; forObjects returns its error
		}
		if err != nil {
			return fmt.Errorf("rbd: %s: listing data objects: %w", img.name, err)
		}
		return nil
	}, del)
}

// errStopListing ends a listing early from inside its callback.
var errStopListing = errors.New("rbd: listing stopped")

// forObjects runs fn for every object number gen yields, with at most
// maxParallel running at once. gen's yield blocks while all workers are
// busy and returns false once a call failed (or ctx ended): gen should
// then stop. The first error of fn is returned; it cancels the context
// the others run with, so the walk stops early.
func forObjects(ctx context.Context, gen func(ctx context.Context, yield func(uint64) bool) error,
	fn func(ctx context.Context, objno uint64) error) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		work  = make(chan uint64)
	)
	for range maxParallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				if wctx.Err() != nil {
					continue // drain: a call failed, the rest are skipped
				}
				if err := fn(wctx, o); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
	genErr := gen(wctx, func(o uint64) bool {
		if wctx.Err() != nil {
			return false
		}
		select {
		case work <- o:
			return true
		case <-wctx.Done():
			return false
		}
	})
	close(work)
	wg.Wait()
	switch {
	case first != nil:
		return first
	case genErr != nil:
		return genErr
	}
	return ctx.Err()
}

// parseDataObjectName returns the object number of a data object name
// <prefix>.<%016x>, as DataObjectName builds it, and false for any other
// name (another image's objects, whose prefixes may share this one's
// leading characters, headers, object maps, ...).
func parseDataObjectName(prefix, oid string) (uint64, bool) {
	const digits = 16
	if len(oid) != len(prefix)+1+digits || !strings.HasPrefix(oid, prefix) || oid[len(prefix)] != '.' {
		return 0, false
	}
	var o uint64
	for _, c := range []byte(oid[len(prefix)+1:]) {
		switch {
		case c >= '0' && c <= '9':
			o = o<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			o = o<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return o, true
}

// headObjectMap loads the head object map of an image nobody has open
// (Remove: no watchers, so no lock owner can be changing it) for reading
// only, without taking its lock. It returns nil when the map cannot be
// trusted: no OBJECT_MAP feature, the OBJECT_MAP_INVALID flag, or a
// missing or undecodable map; the caller then finds the objects without
// it. Only a cancelled context is an error.
func headObjectMap(ctx context.Context, img *Image) (*objectMapView, error) {
	st := img.state()
	if st.features&FeatureObjectMap == 0 || st.flags&FlagObjectMapInvalid != 0 {
		return nil, nil
	}
	out, err := img.s.call(ctx, ObjectMapName(img.id, NoSnap), clsRBD, "object_map_load", nil)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, nil
	}
	m, err := DecodeObjectMap(out)
	if err != nil {
		return nil, nil
	}
	return &objectMapView{n: m.Len(), get: m.Get}, nil
}
