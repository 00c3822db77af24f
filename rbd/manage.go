package rbd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"
	"sync"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// Resize changes the image size (librbd's operation::ResizeRequest). A
// shrink first deletes or truncates the data beyond the new end; the
// object map is resized before a grow and after a shrink's trim; then
// set_size, and a HEADER_UPDATE notify for other clients. Sizes librbd
// refuses (too many objects for an object map, layout arithmetic past
// 2^64) fail with ErrInvalid before anything changes.
func (img *Image) Resize(ctx context.Context, size uint64) error {
	done, err := img.startWrite(ctx)
	if err != nil {
		return err
	}
	defer done()
	return img.resize(ctx, size)
}

// resize does Resize under the caller's startWrite.
func (img *Image) resize(ctx context.Context, size uint64) error {
	st := img.state()
	if size == st.size {
		return nil
	}
	if err := validateImageSize(st.layout, size, img.feat()); err != nil {
		return fmt.Errorf("rbd: resize %q: %w", img.name, err)
	}
	count := st.layout.ObjectCount(size)
	if size < st.size {
		if err := img.trim(ctx, st, size, img.liveObjectMap()); err != nil {
			return err
		}
	}
	if img.feat()&FeatureObjectMap != 0 {
		img.omBusy.Lock() // no object map update in flight (io.go markObject)
		defer img.omBusy.Unlock()
		err := img.s.write(ctx, ObjectMapName(img.id, NoSnap),
			opCall(clsLock, "assert_locked", assertLockedArgs(rbdLockName, LockExclusive, "", "")),
			opCall(clsRBD, "object_map_resize", objectMapResizeArgs(count, ObjectNonexistent)))
		if err != nil {
			return fmt.Errorf("rbd: %s: object_map_resize: %w", img.name, err)
		}
		img.omMu.Lock()
		nm := NewObjectMap(count)
		for i := uint64(0); i < count && i < img.omap.Len(); i++ {
			nm.Set(i, img.omap.Get(i))
		}
		img.omap = nm
		img.omMu.Unlock()
	}
	if err := img.s.write(ctx, img.hdr(), opCall(clsRBD, "set_size", u64Arg(size))); err != nil {
		return fmt.Errorf("rbd: %s: set_size: %w", img.name, err)
	}
	img.mu.Lock()
	img.size = size
	img.overlap = min(img.overlap, size) // set_size clips the parent overlap too
	img.hdrGen.Add(1)                    // a refresh that read the old size must not store it
	img.mu.Unlock()
	img.notifyUpdate(ctx)
	return nil
}

// validateImageSize refuses the sizes librbd refuses and those this
// package could not lay out: with OBJECT_MAP, more objects than
// cls_rbd's MAX_OBJECT_MAP_OBJECT_COUNT (librbd's ObjectMap::is_compatible,
// checked by CreateRequest and Operations::resize; cls_rbd's
// object_map_resize would answer EINVAL after the header exists); and
// for any image, a size whose object count or object-set arithmetic
// (size rounded up to a whole object set) would wrap around 2^64, which
// would make the striper and trim compute nonsense object numbers.
func validateImageSize(l Layout, size, features uint64) error {
	period, ok := l.objectSetSize()
	if !ok {
		n := l.normalized()
		return fmt.Errorf("%w: object set of %d × %d bytes overflows", ErrInvalid, n.StripeCount, n.ObjectSize())
	}
	if size > math.MaxUint64-period {
		return fmt.Errorf("%w: size %d too large for %d-byte object sets", ErrInvalid, size, period)
	}
	if features&FeatureObjectMap != 0 {
		if c := l.ObjectCount(size); c > maxObjectMapObjects {
			return fmt.Errorf("%w: size %d needs %d objects, more than an object map holds (%d)",
				ErrInvalid, size, c, maxObjectMapObjects)
		}
	}
	return nil
}

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
	img.mu.RLock()
	invalid := img.flags&FlagObjectMapInvalid != 0
	img.mu.RUnlock()
	img.omMu.Lock()
	defer img.omMu.Unlock()
	if img.omap == nil || invalid {
		return nil
	}
	return &objectMapView{n: img.omap.Len(), get: img.omapState}
}

// trim removes the image data at and beyond newSize (TrimRequest): objects
// wholly beyond it are deleted (ENOENT ignored), the boundary object is
// truncated or zeroed. om, when not nil, tells which objects may exist;
// removeObjects picks the cheapest way to find the others.
func (img *Image) trim(ctx context.Context, st snapshotState, newSize uint64, om *objectMapView) error {
	first := st.layout.ObjectCount(newSize)
	last := st.layout.ObjectCount(st.size)
	if first < last {
		if err := img.removeObjects(ctx, st, first, last, om); err != nil {
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
func (img *Image) removeObjects(ctx context.Context, st snapshotState, first, last uint64, om *objectMapView) error {
	// Objects the live map tracks get PENDING before and NONEXISTENT
	// after their delete, as librbd's TrimRequest does; markObject does
	// nothing when img.omap is nil (Remove, which holds no lock).
	var tracked uint64
	img.omMu.Lock()
	if img.omap != nil {
		tracked = img.omap.Len()
	}
	img.omMu.Unlock()
	del := func(ctx context.Context, o uint64) error {
		if o < tracked {
			if err := img.markObject(ctx, o, ObjectPending); err != nil {
				return err
			}
		}
		err := st.data.write(ctx, DataObjectName(st.prefix, o), opRemove())
		if err != nil && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("rbd: %s: trimming object %d: %w", img.name, o, err)
		}
		if o < tracked {
			return img.markObject(ctx, o, ObjectNonexistent)
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
	img.mu.RLock()
	features, flags := img.features, img.flags
	img.mu.RUnlock()
	if features&FeatureObjectMap == 0 || flags&FlagObjectMapInvalid != 0 {
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

// Remove deletes the image called name (librbd's image::RemoveRequest,
// without the trash detour): it refuses while another client watches the
// header or while snapshots exist, deletes the data objects, detaches from
// a clone parent, and removes the object map, header, id object and
// directory entry.
func Remove(ctx context.Context, io *rados.IOContext, name string) error {
	return remove(ctx, newRadosStore(io), name, "")
}

// remove deletes an image by name, or by id (name empty: a trashed image,
// which has no id object or directory entry).
func remove(ctx context.Context, s store, name, id string) error {
	img, err := open(ctx, s, name, id, &OpenOptions{ReadOnly: true, internal: true})
	if err != nil {
		return err
	}
	if id != "" {
		name = ""
	}
	if ws, err := s.listWatchers(ctx, img.hdr()); err != nil {
		return fmt.Errorf("rbd: remove %q: listing watchers: %w", name, err)
	} else if n := len(ws); n > 0 {
		return fmt.Errorf("%w: image %q has %d watchers", ErrBusy, name, n)
	}
	st := img.state()
	if len(img.snaps) > 0 {
		return fmt.Errorf("%w: image %q has %d snapshots", ErrBusy, name, len(img.snaps))
	}
	// Writes from here on: no exclusive lock is needed when nobody watches.
	img.readOnly = false
	img.omap = nil // no map updates: the map object goes away below
	// The object map still tells which data objects exist, so a sparse
	// image costs one delete per written object, not per object number.
	om, err := headObjectMap(ctx, img)
	if err != nil {
		return fmt.Errorf("rbd: remove %q: object map: %w", name, err)
	}
	if err := img.trim(ctx, st, 0, om); err != nil {
		return err
	}
	if img.parent.Exists() {
		if err := img.detachParent(ctx); err != nil {
			return err
		}
	}
	if err := s.write(ctx, ObjectMapName(img.id, NoSnap), opRemove()); err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("rbd: remove %q: object map: %w", name, err)
	}
	if err := s.write(ctx, img.hdr(), opRemove()); err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("rbd: remove %q: header: %w", name, err)
	}
	if name == "" {
		return nil
	}
	if err := s.write(ctx, IDObjectName(name), opRemove()); err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("rbd: remove %q: id object: %w", name, err)
	}
	err = s.write(ctx, DirectoryObject, opCall(clsRBD, "dir_remove_image", dirAddArgs(name, img.id)))
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("rbd: remove %q: directory: %w", name, err)
	}
	return nil
}

// detachParent undoes a clone link: child_detach on the parent (clone
// v2), and remove_child on the child pool's rbd_children (v1).
func (img *Image) detachParent(ctx context.Context) error {
	img.mu.RLock()
	p := img.parent
	img.mu.RUnlock()
	return img.detachParentSpec(ctx, p)
}

func (img *Image) detachParentSpec(ctx context.Context, p ParentSpec) error {
	ps, err := img.s.withPool(ctx, p.PoolID, p.Namespace)
	if err != nil {
		return err
	}
	child := ChildSpec{PoolID: img.s.poolID(), Namespace: img.s.namespace(), ImageID: img.id}
	err = ps.write(ctx, HeaderObjectName(p.ImageID), opCall(clsRBD, "child_detach", childAttachArgs(p.SnapID, child)))
	if err != nil && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.EOPNOTSUPP) {
		return fmt.Errorf("rbd: %s: child_detach: %w", img.name, err)
	}
	// Clone v1 records children in rbd_children of the child's own pool.
	err = img.s.write(ctx, ChildrenObject, opCall(clsRBD, "remove_child", legacyChildArgs(p, img.id)))
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("rbd: %s: remove_child: %w", img.name, err)
	}
	removeTrashedSnapshot(ctx, ps, p)
	return nil
}

// removeTrashedSnapshot deletes the parent's snapshot once its last clone
// child is gone, if it waits in the trash namespace (librbd's
// DetachChildRequest). It is best effort: a snapshot that stays (the
// parent's lock owner refuses, say) shows in `rbd snap ls --all`.
func removeTrashedSnapshot(ctx context.Context, ps store, p ParentSpec) {
	out, err := ps.call(ctx, HeaderObjectName(p.ImageID), clsRBD, "snapshot_get", snapIDArg(p.SnapID))
	if err != nil {
		return
	}
	si, err := decodeSnapshotInfo(out)
	if err != nil || si.Namespace.Type != SnapNamespaceTrash || si.ChildCount > 0 {
		return
	}
	parent, err := open(ctx, ps, "", p.ImageID, nil)
	if err != nil {
		return
	}
	_ = parent.RemoveSnapshotByID(ctx, p.SnapID)
	_ = parent.Close(context.WithoutCancel(ctx))
}
