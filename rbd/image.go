package rbd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// CreateOptions shape a new image. The zero value gives order 22 (4 MiB
// objects) and only the layering feature.
type CreateOptions struct {
	Order       uint8  // 0: 22
	Features    uint64 // 0: FeatureLayering
	StripeUnit  uint64 // with StripeCount: fancy striping (adds STRIPINGV2)
	StripeCount uint64
	DataPool    int64 // ≥ 0 (and not the image's pool): data objects go there (adds DATA_POOL); 0 with DataPoolSet false is none
	DataPoolSet bool
	// CloneFormat, for Clone only: CloneFormatV2 (or 0), CloneFormatV1, or
	// CloneFormatAuto.
	CloneFormat int
}

// Create makes a format 2 image called name in io's pool and namespace,
// following librbd's image::CreateRequest: rbd_id.<name>, the directory
// entry, the header, the striping parameters, and an empty object map.
// On failure it removes what it made.
func Create(ctx context.Context, io *rados.IOContext, name string, size uint64, opts *CreateOptions) (id string, err error) {
	return create(ctx, newRadosStore(io), name, size, opts)
}

func create(ctx context.Context, s store, name string, size uint64, opts *CreateOptions) (id string, err error) {
	var o CreateOptions
	if opts != nil {
		o = *opts
	}
	if name == "" {
		return "", fmt.Errorf("%w: empty image name", ErrInvalid)
	}
	if o.Order == 0 {
		o.Order = 22
	}
	if o.Features == 0 {
		o.Features = FeatureLayering
	}
	l := Layout{Order: o.Order, StripeUnit: o.StripeUnit, StripeCount: o.StripeCount}
	if err := l.Validate(); err != nil {
		return "", err
	}
	if l.IsFancy() {
		o.Features |= FeatureStripingV2
	}
	dataPool := int64(-1)
	if o.DataPoolSet && o.DataPool != s.poolID() {
		dataPool = o.DataPool
		o.Features |= FeatureDataPool
	}
	if o.Features&FeatureFastDiff != 0 && o.Features&FeatureObjectMap == 0 ||
		o.Features&FeatureObjectMap != 0 && o.Features&FeatureExclusiveLock == 0 {
		return "", fmt.Errorf("%w: fast-diff needs object-map, object-map needs exclusive-lock", ErrInvalid)
	}
	if bad := o.Features &^ featuresSupportedWrite; bad != 0 {
		return "", &FeatureError{Image: name, Unsupported: bad, Write: true}
	}
	// Before any object exists: a refused size leaves nothing behind.
	if err := validateImageSize(l, size, o.Features); err != nil {
		return "", fmt.Errorf("rbd: create %q: %w", name, err)
	}

	id = GenerateImageID(s.clientID())
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	cleanup := context.WithoutCancel(ctx)

	if err = s.write(ctx, IDObjectName(name), opSetID(id)); err != nil {
		if errors.Is(err, syscall.EEXIST) {
			return "", fmt.Errorf("%w: image %q", ErrExists, name)
		}
		return "", fmt.Errorf("rbd: create %q: rbd_id: %w", name, err)
	}
	undo = append(undo, func() { _ = s.remove(cleanup, IDObjectName(name)) })

	if err = s.write(ctx, DirectoryObject, opCall(clsRBD, "dir_add_image", dirAddArgs(name, id))); err != nil {
		if errors.Is(err, syscall.EEXIST) {
			err = fmt.Errorf("%w: image %q (directory)", ErrExists, name)
		}
		return "", fmt.Errorf("rbd: create %q: directory: %w", name, err)
	}
	// The closure must not read the named result id: every failing
	// return below sets it to "" before the deferred undo runs, and
	// dir_remove_image with an empty id leaves the entry behind.
	newID := id
	undo = append(undo, func() {
		_ = s.write(cleanup, DirectoryObject, opCall(clsRBD, "dir_remove_image", dirAddArgs(name, newID)))
	})

	hdr := HeaderObjectName(id)
	create := rados.NewWriteOp()
	create.Create(true)
	create.Exec(clsRBD, "create", createArgs(size, o.Order, o.Features, DataObjectPrefix(id), dataPool))
	if err = s.write(ctx, hdr, create); err != nil {
		return "", fmt.Errorf("rbd: create %q: header: %w", name, err)
	}
	undo = append(undo, func() { _ = s.remove(cleanup, hdr) })

	if l.IsFancy() {
		n := l.normalized()
		if err = s.write(ctx, hdr, opCall(clsRBD, "set_stripe_unit_count", twoU64Args(n.StripeUnit, n.StripeCount))); err != nil {
			return "", fmt.Errorf("rbd: create %q: striping: %w", name, err)
		}
	}
	if o.Features&FeatureObjectMap != 0 {
		om := ObjectMapName(id, NoSnap)
		if err = s.write(ctx, om, opCall(clsRBD, "object_map_resize", objectMapResizeArgs(l.ObjectCount(size), ObjectNonexistent))); err != nil {
			return "", fmt.Errorf("rbd: create %q: object map: %w", name, err)
		}
		undo = append(undo, func() { _ = s.remove(cleanup, om) })
	}
	return id, nil
}

// OpenOptions select how an image is opened.
type OpenOptions struct {
	ReadOnly bool
	Snapshot string // open this snapshot (read-only)
	// Exclusive keeps the exclusive lock once taken, as krbd mapped with
	// "-o exclusive" does: Open fails with ErrBusy while a live client
	// holds it, and requests from other clients are refused (EROFS).
	// Without it the lock is cooperative, as in librbd: taken at Open when
	// free, handed over when another client asks for it, and requested
	// back from the owner on the next write.
	Exclusive bool
	// DeadClients, when set, names clients the caller knows are dead:
	// typically its own previous incarnation (see internal/incarnation).
	// A header lock one of them holds is broken at once (after
	// blocklisting its address) instead of after its watch has timed out
	// on the OSD (osd_client_watch_timeout, 30 s by default).
	DeadClients func(owner entity.NumName) bool

	// internal opens (remove, trash, clone parents) register no header
	// watch, so they do not count as users of the image.
	internal bool
}

// Image is an open image. Methods are safe for concurrent use; Close once,
// after the other calls have returned.
//
// What an Image holds, and who changes it:
//
//   - s, name, id, readOnly, snapID: set by Open, then fixed.
//   - st: what the last header refresh read (size, features, layout, snap
//     context, snapshots, parent, the data store), an immutable
//     *imageState (refresh.go). It is replaced whole, never changed in
//     place: the I/O path loads it once per call without a lock. A refresh
//     publishes a new one; a resize publishes one with its new size, by
//     compare-and-swap, so a refresh whose reads began before the resize
//     landed reads again instead of storing a stale view.
//   - lock: the exclusive lock (exclusive_lock.go), a state machine with
//     the gate writers pass and the protocol of requests, hand-overs and
//     dead owners.
//   - om: the live object map (objectmap_state.go), locked and loaded
//     while we own the exclusive lock.
//   - watch: the header watch (watch_notify.go) and the background work
//     its notifies start (refreshes, hand-overs); Close stops and waits
//     for all of it.
//
// Lock order: a lock is taken only while holding none below it.
//
//	lock.mu     exclusive lock transitions (acquire, release, hand-over); held across the wire
//	lock.gate   RW: every write holds it shared from start to end; a release exclusively, to drain writes
//	om.busy     RW: an object map update holds it shared on the wire; whole-map changes exclusively
//	refreshMu   one header refresh at a time; held across the wire (a clone's parent is another
//	            Image, refreshed under the child's refreshMu)
//	leaves      om.mu, lock.peerMu, watch.mu: short, never across the wire, nothing taken under them
type Image struct {
	s        store // metadata pool
	name, id string
	readOnly bool
	snapID   uint64 // NoSnap for the head

	st        atomic.Pointer[imageState]
	refreshMu sync.Mutex

	lock  exclusiveLock
	om    objectMap
	watch headerWatch
}

// Open opens the image called name.
func Open(ctx context.Context, io *rados.IOContext, name string, opts *OpenOptions) (*Image, error) {
	return open(ctx, newRadosStore(io), name, "", opts)
}

// OpenByID opens an image by id (its name is looked up in the directory;
// an image in the trash has none).
func OpenByID(ctx context.Context, io *rados.IOContext, id string, opts *OpenOptions) (*Image, error) {
	return open(ctx, newRadosStore(io), "", id, opts)
}

// newImage returns an image not yet refreshed.
func newImage(s store, name, id string, readOnly bool) *Image {
	img := &Image{s: s, name: name, id: id, readOnly: readOnly, snapID: NoSnap}
	img.lock.img = img
	img.om.init(s, id, name)
	return img
}

func open(ctx context.Context, s store, name, id string, opts *OpenOptions) (*Image, error) {
	var o OpenOptions
	if opts != nil {
		o = *opts
	}
	if id == "" {
		out, err := s.call(ctx, IDObjectName(name), clsRBD, "get_id", nil)
		if err != nil {
			if errors.Is(err, syscall.ENOENT) {
				return nil, fmt.Errorf("%w: image %q: %w", ErrNotFound, name, err)
			}
			return nil, fmt.Errorf("rbd: open %q: get_id: %w", name, err)
		}
		if id, err = decodeString("get_id", out); err != nil {
			return nil, err
		}
	} else if name == "" {
		if out, err := s.call(ctx, DirectoryObject, clsRBD, "dir_get_name", stringArg(id)); err == nil {
			name, _ = decodeString("dir_get_name", out)
		}
	}
	img := newImage(s, name, id, o.ReadOnly || o.Snapshot != "")
	img.lock.exclusive, img.lock.deadClients = o.Exclusive, o.DeadClients
	if err := img.refresh(ctx); err != nil {
		return nil, err
	}
	if o.Snapshot != "" {
		si, ok := img.state().userSnapshot(o.Snapshot)
		if !ok {
			return nil, fmt.Errorf("%w: snapshot %q of image %q", ErrNotFound, o.Snapshot, name)
		}
		if err := img.viewSnapshot(ctx, si); err != nil {
			return nil, err
		}
	}
	if o.internal || img.snapID != NoSnap {
		return img, nil
	}
	if err := img.watchHeader(ctx); err != nil {
		return nil, err
	}
	if img.lock.needed() {
		if err := img.lock.open(ctx); err != nil {
			_ = img.Close(context.WithoutCancel(ctx))
			return nil, err
		}
	}
	return img, nil
}

func (img *Image) hdr() string { return HeaderObjectName(img.id) }

// Info describes an open image.
type Info struct {
	Name, ID     string
	Size         uint64
	Order        uint8
	ObjectSize   uint64
	ObjectCount  uint64
	ObjectPrefix string
	Features     uint64
	Flags        uint64
	Layout       Layout
	DataPool     int64 // -1: none
	Snapshots    []SnapshotInfo
	Parent       *ParentSpec
	Overlap      uint64
}

// Stat returns the image's current description.
func (img *Image) Stat() Info {
	st := img.state()
	i := Info{Name: img.name, ID: img.id, Size: st.size, Order: st.order, ObjectSize: st.layout.ObjectSize(),
		ObjectCount: st.layout.ObjectCount(st.size), ObjectPrefix: st.prefix, Features: st.features,
		Flags: st.flags, Layout: st.layout, DataPool: st.dataPool, Snapshots: append([]SnapshotInfo(nil), st.snaps...),
		Overlap: st.overlap}
	if st.parent.Exists() {
		p := st.parent
		i.Parent = &p
	}
	return i
}

// feat returns the feature bits (a refresh may change them).
func (img *Image) feat() uint64 { return img.state().features }

// Size returns the image size (of the open snapshot, if any).
func (img *Image) Size() uint64 { return img.state().size }

// Refresh re-reads the header, as after a HEADER_UPDATE notify.
func (img *Image) Refresh(ctx context.Context) error { return img.refresh(ctx) }

// Close releases the exclusive lock and the header watch, if held, and
// stops and waits for the background work the watch started.
func (img *Image) Close(ctx context.Context) error {
	w := &img.watch
	w.mu.Lock()
	w.closed = true // no new background work from here on
	w.mu.Unlock()
	err := img.lock.release(ctx)
	if w.unwatch != nil {
		if e := w.unwatch(ctx); err == nil {
			err = e
		}
		w.unwatch = nil
	}
	if w.cancel != nil {
		w.cancel()
	}
	w.wg.Wait()
	return err
}
