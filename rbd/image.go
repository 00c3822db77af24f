package rbd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
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
	if o.Features&FeatureObjectMap != 0 && l.ObjectCount(size) > maxObjectMapObjects {
		return "", fmt.Errorf("%w: image too large for an object map", ErrInvalid)
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

	if err = s.write(ctx, IDObjectName(name), opCreate(true), opCall(clsRBD, "set_id", stringArg(id))); err != nil {
		if errors.Is(err, syscall.EEXIST) {
			return "", fmt.Errorf("%w: image %q", ErrExists, name)
		}
		return "", fmt.Errorf("rbd: create %q: rbd_id: %w", name, err)
	}
	undo = append(undo, func() { _ = s.write(cleanup, IDObjectName(name), opRemove()) })

	if err = s.write(ctx, DirectoryObject, opCall(clsRBD, "dir_add_image", dirAddArgs(name, id))); err != nil {
		if errors.Is(err, syscall.EEXIST) {
			err = fmt.Errorf("%w: image %q (directory)", ErrExists, name)
		}
		return "", fmt.Errorf("rbd: create %q: directory: %w", name, err)
	}
	undo = append(undo, func() {
		_ = s.write(cleanup, DirectoryObject, opCall(clsRBD, "dir_remove_image", dirAddArgs(name, id)))
	})

	hdr := HeaderObjectName(id)
	if err = s.write(ctx, hdr, opCreate(true),
		opCall(clsRBD, "create", createArgs(size, o.Order, o.Features, DataObjectPrefix(id), dataPool))); err != nil {
		return "", fmt.Errorf("rbd: create %q: header: %w", name, err)
	}
	undo = append(undo, func() { _ = s.write(cleanup, hdr, opRemove()) })

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
		undo = append(undo, func() { _ = s.write(cleanup, om, opRemove()) })
	}
	return id, nil
}

// OpenOptions select how an image is opened.
type OpenOptions struct {
	ReadOnly bool
	Snapshot string // open this snapshot (read-only)
}

// Image is an open image. Methods are safe for concurrent use.
type Image struct {
	s        store // metadata pool
	name, id string
	readOnly bool
	snapID   uint64 // NoSnap for the head

	mu        sync.RWMutex
	size      uint64
	order     uint8
	features  uint64
	flags     uint64
	prefix    string
	layout    Layout
	dataPool  int64
	snapc     SnapContext
	snaps     []SnapshotInfo
	parent    ParentSpec
	overlap   uint64
	data      store // data objects: write snapc or read snap set
	parentImg *Image

	// exclusive lock and object map (writers of images with those features)
	unwatch  func(context.Context) error
	cookie   string
	omap     *ObjectMap
	omLocked bool
	omMu     sync.Mutex
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
	img := &Image{s: s, name: name, id: id, readOnly: o.ReadOnly || o.Snapshot != "", snapID: NoSnap}
	if err := img.refresh(ctx); err != nil {
		return nil, err
	}
	if o.Snapshot != "" {
		found := false
		for _, si := range img.snaps {
			if si.Name == o.Snapshot && si.Namespace.Type == SnapNamespaceUser {
				img.snapID, img.size, found = si.ID, si.Size, true
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: snapshot %q of image %q", ErrNotFound, o.Snapshot, name)
		}
		if err := img.refreshParent(ctx); err != nil {
			return nil, err
		}
		img.data = img.data.withReadSnap(img.snapID)
	}
	if !img.readOnly && img.features&FeatureExclusiveLock != 0 {
		if err := img.acquireLock(ctx); err != nil {
			return nil, err
		}
	}
	return img, nil
}

func (img *Image) hdr() string { return HeaderObjectName(img.id) }

// refresh re-reads the header (librbd's RefreshRequest, krbd's
// rbd_dev_header_info): size, features, prefix, layout, data pool, snap
// context and snapshots, parent.
func (img *Image) refresh(ctx context.Context) error {
	ctx, s, hdr := ctx, img.s, img.hdr()
	out, err := s.call(ctx, hdr, clsRBD, "get_size", snapIDArg(NoSnap))
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("%w: header of image %q (%s): %w", ErrNotFound, img.name, img.id, err)
		}
		return fmt.Errorf("rbd: %s: get_size: %w", img.name, err)
	}
	order, size, err := decodeGetSize(out)
	if err != nil {
		return err
	}
	if out, err = s.call(ctx, hdr, clsRBD, "get_features", getFeaturesArgs(NoSnap, img.readOnly)); err != nil {
		return fmt.Errorf("rbd: %s: get_features: %w", img.name, err)
	}
	features, incompat, err := decodeGetFeatures(out)
	if err != nil {
		return err
	}
	if err := checkFeatures(img.name, features, incompat, !img.readOnly); err != nil {
		return err
	}
	if out, err = s.call(ctx, hdr, clsRBD, "get_object_prefix", nil); err != nil {
		return fmt.Errorf("rbd: %s: get_object_prefix: %w", img.name, err)
	}
	prefix, err := decodeString("get_object_prefix", out)
	if err != nil {
		return err
	}
	var flags uint64
	if out, err = s.call(ctx, hdr, clsRBD, "get_flags", snapIDArg(NoSnap)); err == nil {
		flags, _ = decodeU64("get_flags", out)
	}
	l := Layout{Order: order}
	if features&FeatureStripingV2 != 0 {
		if out, err = s.call(ctx, hdr, clsRBD, "get_stripe_unit_count", nil); err != nil {
			return fmt.Errorf("rbd: %s: get_stripe_unit_count: %w", img.name, err)
		}
		if l.StripeUnit, l.StripeCount, err = decodeStripeUnitCount(out); err != nil {
			return err
		}
	}
	if err := l.Validate(); err != nil {
		return fmt.Errorf("rbd: %s: %w", img.name, err)
	}
	dataPool := int64(-1)
	if features&FeatureDataPool != 0 {
		if out, err = s.call(ctx, hdr, clsRBD, "get_data_pool", nil); err != nil {
			return fmt.Errorf("rbd: %s: get_data_pool: %w", img.name, err)
		}
		if dataPool, err = decodeGetDataPool(out); err != nil {
			return err
		}
	}
	if out, err = s.call(ctx, hdr, clsRBD, "get_snapcontext", nil); err != nil {
		return fmt.Errorf("rbd: %s: get_snapcontext: %w", img.name, err)
	}
	snapc, err := decodeSnapContext(out)
	if err != nil {
		return err
	}
	if !snapc.valid() {
		return fmt.Errorf("%w: invalid snap context %+v", ErrMalformed, snapc)
	}
	snaps := make([]SnapshotInfo, 0, len(snapc.Snaps))
	for _, sid := range snapc.Snaps {
		out, err := s.call(ctx, hdr, clsRBD, "snapshot_get", snapIDArg(sid))
		if errors.Is(err, syscall.ENOENT) {
			continue // removed meanwhile
		}
		if err != nil {
			return fmt.Errorf("rbd: %s: snapshot_get %d: %w", img.name, sid, err)
		}
		si, err := decodeSnapshotInfo(out)
		if err != nil {
			return err
		}
		snaps = append(snaps, si)
	}
	ds := s
	if dataPool >= 0 {
		if ds, err = s.withPool(ctx, dataPool); err != nil {
			return fmt.Errorf("rbd: %s: data pool %d: %w", img.name, dataPool, err)
		}
	}

	img.mu.Lock()
	if img.snapID == NoSnap {
		img.size = size
	}
	img.order, img.features, img.flags, img.prefix, img.layout = order, features, flags, prefix, l
	img.dataPool, img.snapc, img.snaps = dataPool, snapc, snaps
	if img.snapID == NoSnap {
		img.data = ds.withSnapContext(snapc)
	} else {
		img.data = ds.withReadSnap(img.snapID)
	}
	img.mu.Unlock()
	if img.snapID == NoSnap {
		return img.refreshParent(ctx)
	}
	return nil
}

// refreshParent reads the parent spec and overlap for the open snapshot
// (parent_get / parent_overlap_get, or the legacy get_parent).
func (img *Image) refreshParent(ctx context.Context) error {
	if img.features&FeatureLayering == 0 {
		return nil
	}
	var p ParentSpec
	var overlap uint64
	out, err := img.s.call(ctx, img.hdr(), clsRBD, "parent_get", nil)
	switch {
	case err == nil:
		if p, err = decodeParentGet(out); err != nil {
			return err
		}
		if p.PoolID >= 0 {
			out, err := img.s.call(ctx, img.hdr(), clsRBD, "parent_overlap_get", snapIDArg(img.snapID))
			if err != nil {
				return fmt.Errorf("rbd: %s: parent_overlap_get: %w", img.name, err)
			}
			var ok bool
			if overlap, ok, err = decodeParentOverlapGet(out); err != nil {
				return err
			} else if !ok {
				p = ParentSpec{PoolID: -1}
			}
		}
	case errors.Is(err, syscall.EOPNOTSUPP):
		out, err := img.s.call(ctx, img.hdr(), clsRBD, "get_parent", snapIDArg(img.snapID))
		if err != nil {
			return fmt.Errorf("rbd: %s: get_parent: %w", img.name, err)
		}
		if p, overlap, err = decodeLegacyGetParent(out); err != nil {
			return err
		}
	case errors.Is(err, syscall.ENOENT):
		p = ParentSpec{PoolID: -1}
	default:
		return fmt.Errorf("rbd: %s: parent_get: %w", img.name, err)
	}
	img.mu.Lock()
	defer img.mu.Unlock()
	if !p.Exists() {
		img.parent, img.overlap, img.parentImg = ParentSpec{PoolID: -1}, 0, nil
		return nil
	}
	if img.parentImg != nil && img.parent == p {
		img.overlap = overlap
		return nil
	}
	ps, err := img.s.withPool(ctx, p.PoolID)
	if err != nil {
		return fmt.Errorf("rbd: %s: parent pool %d: %w", img.name, p.PoolID, err)
	}
	img.mu.Unlock()
	pi, err := openParent(ctx, ps, p)
	img.mu.Lock()
	if err != nil {
		return fmt.Errorf("rbd: %s: opening parent %s@%d: %w", img.name, p.ImageID, p.SnapID, err)
	}
	img.parent, img.overlap, img.parentImg = p, overlap, pi
	return nil
}

// openParent opens a clone's parent, read-only at its snapshot.
func openParent(ctx context.Context, s store, p ParentSpec) (*Image, error) {
	img := &Image{s: s, id: p.ImageID, readOnly: true, snapID: NoSnap}
	if err := img.refresh(ctx); err != nil {
		return nil, err
	}
	for _, si := range img.snaps {
		if si.ID == p.SnapID {
			img.snapID, img.size = si.ID, si.Size
		}
	}
	if img.snapID == NoSnap {
		return nil, fmt.Errorf("%w: parent snapshot %d", ErrNotFound, p.SnapID)
	}
	if err := img.refreshParent(ctx); err != nil {
		return nil, err
	}
	img.data = img.data.withReadSnap(p.SnapID)
	return img, nil
}

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
	img.mu.RLock()
	defer img.mu.RUnlock()
	i := Info{Name: img.name, ID: img.id, Size: img.size, Order: img.order, ObjectSize: img.layout.ObjectSize(),
		ObjectCount: img.layout.ObjectCount(img.size), ObjectPrefix: img.prefix, Features: img.features,
		Flags: img.flags, Layout: img.layout, DataPool: img.dataPool, Snapshots: append([]SnapshotInfo(nil), img.snaps...),
		Overlap: img.overlap}
	if img.parent.Exists() {
		p := img.parent
		i.Parent = &p
	}
	return i
}

// Size returns the image size (of the open snapshot, if any).
func (img *Image) Size() uint64 {
	img.mu.RLock()
	defer img.mu.RUnlock()
	return img.size
}

// Refresh re-reads the header, as after a HEADER_UPDATE notify.
func (img *Image) Refresh(ctx context.Context) error { return img.refresh(ctx) }

// Close releases the exclusive lock and the header watch, if held.
func (img *Image) Close(ctx context.Context) error {
	var err error
	if img.omLocked {
		err = img.s.write(ctx, ObjectMapName(img.id, NoSnap), opCall(clsLock, "unlock", unlockArgs(rbdLockName, "")))
		img.omLocked = false
	}
	if img.cookie != "" {
		e := img.s.write(ctx, img.hdr(), opCall(clsLock, "unlock", unlockArgs(rbdLockName, img.cookie)))
		if err == nil {
			err = e
		}
		if e == nil {
			_ = img.s.notify(ctx, img.hdr(), notifyPayload(notifyReleasedLock, img.s.clientID(), img.watchHandle()))
		}
		img.cookie = ""
	}
	if img.unwatch != nil {
		if e := img.unwatch(ctx); err == nil {
			err = e
		}
		img.unwatch = nil
	}
	return err
}

// Watch-notify op codes of librbd's NotifyMessage (WatchNotifyTypes.h).
const (
	notifyAcquiredLock = 0
	notifyReleasedLock = 1
	notifyRequestLock  = 2
	notifyHeaderUpdate = 3
)

// notifyPayload encodes NotifyMessage v2/c1 { u32 op, payload }; the lock
// ops carry ClientId { u64 gid, u64 handle }, HEADER_UPDATE nothing.
func notifyPayload(op uint32, gid, handle uint64) []byte {
	e := encoding.NewEncoder(nil)
	m := e.StructBegin(2, 1)
	e.U32(op)
	if op <= notifyRequestLock {
		e.U64(gid)
		e.U64(handle)
	}
	e.StructEnd(m)
	return e.B
}

func (img *Image) watchHandle() uint64 {
	var h uint64
	fmt.Sscanf(img.cookie, "auto %d", &h)
	return h
}

// ackPayload is ResponseMessage { i32 result } (v1/c1).
func ackPayload(result int32) []byte {
	e := encoding.NewEncoder(nil)
	m := e.StructBegin(1, 1)
	e.I32(result)
	e.StructEnd(m)
	return e.B
}

// acquireLock watches the header and takes librbd's exclusive lock. A lock
// held by a live client fails with ErrBusy (the owner is not asked to
// release it); a dead owner's lock is broken after blocklisting it. With
// an object map, the map's own lock is taken and the map loaded.
func (img *Image) acquireLock(ctx context.Context) error {
	handler := func(payload []byte) []byte {
		op, ok := decodeNotifyOp(payload)
		if !ok || op == notifyHeaderUpdate {
			go img.refresh(context.Background())
			return nil
		}
		if op == notifyRequestLock {
			// We keep the lock, as krbd mapped with "exclusive" does.
			return ackPayload(-int32(syscall.EROFS))
		}
		return nil
	}
	cookie, unwatch, err := img.s.watch(ctx, img.hdr(), handler)
	if err != nil {
		return fmt.Errorf("rbd: %s: watching the header: %w", img.name, err)
	}
	img.unwatch = unwatch
	lc := rbdLockCookie(cookie)
	lock := opCall(clsLock, "lock", lockArgs(rbdLockName, LockExclusive, lc, rbdLockTag, "", 0, 0))
	err = img.s.write(ctx, img.hdr(), lock)
	if errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EEXIST) {
		var broke bool
		if broke, err = img.breakDeadOwner(ctx); err == nil {
			err = syscall.EBUSY
			if broke {
				err = img.s.write(ctx, img.hdr(), lock)
			}
		}
	}
	if err != nil {
		_ = unwatch(context.WithoutCancel(ctx))
		img.unwatch = nil
		if errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("%w: image %q is locked by another client: %w", ErrBusy, img.name, err)
		}
		return fmt.Errorf("rbd: %s: lock: %w", img.name, err)
	}
	img.cookie = lc
	_ = img.s.notify(ctx, img.hdr(), notifyPayload(notifyAcquiredLock, img.s.clientID(), cookie))
	if img.features&FeatureObjectMap != 0 {
		if err := img.lockObjectMap(ctx); err != nil {
			_ = img.Close(context.WithoutCancel(ctx))
			return err
		}
		out, err := img.s.call(ctx, ObjectMapName(img.id, NoSnap), clsRBD, "object_map_load", nil)
		if err != nil {
			_ = img.Close(context.WithoutCancel(ctx))
			return fmt.Errorf("rbd: %s: object_map_load: %w", img.name, err)
		}
		if img.omap, err = DecodeObjectMap(out); err != nil {
			_ = img.Close(context.WithoutCancel(ctx))
			return err
		}
	}
	return nil
}

// breakDeadOwner breaks the header lock when its owner is dead: no watch
// on the header from the owner's address with the owner's watch handle
// (the number in its "auto <handle>" cookie). The owner is blocklisted
// first, so it cannot write after we take over (librbd's BreakRequest and
// krbd's rbd_try_lock). It reports whether it broke the lock.
func (img *Image) breakDeadOwner(ctx context.Context) (bool, error) {
	out, err := img.s.call(ctx, img.hdr(), clsLock, "get_info", getLockInfoArgs(rbdLockName))
	if err != nil {
		return false, fmt.Errorf("rbd: %s: lock info: %w", img.name, err)
	}
	li, err := decodeLockInfo(out)
	if err != nil {
		return false, err
	}
	if len(li.Lockers) == 0 {
		return true, nil // released meanwhile: just retry
	}
	ws, err := img.s.listWatchers(ctx, img.hdr())
	if err != nil {
		return false, fmt.Errorf("rbd: %s: listing watchers: %w", img.name, err)
	}
	for _, l := range li.Lockers {
		var handle uint64
		fmt.Sscanf(l.Cookie, "auto %d", &handle)
		for _, w := range ws {
			if w.Addr.IP == l.Addr.IP && w.Addr.Nonce == l.Addr.Nonce && (handle == 0 || w.Cookie == handle) {
				return false, nil // alive
			}
		}
	}
	for _, l := range li.Lockers {
		if err := img.s.blocklist(ctx, l.Addr); err != nil {
			return false, fmt.Errorf("rbd: %s: blocklisting dead lock owner %v (%v): %w", img.name, l.Entity, l.Addr, err)
		}
		err := img.s.write(ctx, img.hdr(), opCall(clsLock, "break_lock", breakLockArgs(rbdLockName, l.Entity, l.Cookie)))
		if err != nil && !errors.Is(err, syscall.ENOENT) {
			return false, fmt.Errorf("rbd: %s: breaking the lock of %v: %w", img.name, l.Entity, err)
		}
	}
	return true, nil
}

// lockObjectMap takes the object map object's own exclusive cls lock
// (name rbd_lock, empty cookie and tag), breaking a stale holder's lock —
// the previous lock owner's, which we just superseded on the header — as
// librbd's object_map::LockRequest and krbd's rbd_object_map_lock do.
func (img *Image) lockObjectMap(ctx context.Context) error {
	oid := ObjectMapName(img.id, NoSnap)
	lock := opCall(clsLock, "lock", lockArgs(rbdLockName, LockExclusive, "", "", "", 0, 0))
	err := img.s.write(ctx, oid, lock)
	if errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EEXIST) {
		out, gerr := img.s.call(ctx, oid, clsLock, "get_info", getLockInfoArgs(rbdLockName))
		if gerr != nil {
			return fmt.Errorf("rbd: %s: object map lock info: %w", img.name, gerr)
		}
		li, derr := decodeLockInfo(out)
		if derr != nil {
			return derr
		}
		for _, l := range li.Lockers {
			berr := img.s.write(ctx, oid, opCall(clsLock, "break_lock", breakLockArgs(rbdLockName, l.Entity, l.Cookie)))
			if berr != nil && !errors.Is(berr, syscall.ENOENT) {
				return fmt.Errorf("rbd: %s: breaking object map lock of %v: %w", img.name, l.Entity, berr)
			}
		}
		err = img.s.write(ctx, oid, lock)
	}
	if err != nil {
		return fmt.Errorf("rbd: %s: locking the object map: %w", img.name, err)
	}
	img.omLocked = true
	return nil
}

// decodeNotifyOp returns the op of a NotifyMessage; an empty payload is a
// legacy header update.
func decodeNotifyOp(b []byte) (uint32, bool) {
	if len(b) == 0 {
		return notifyHeaderUpdate, true
	}
	d := encoding.NewDecoder(b)
	body, _ := d.Struct(1)
	op := body.U32()
	return op, d.Err() == nil
}
