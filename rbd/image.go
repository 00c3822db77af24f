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

	// header watch (exclusive_lock.go, watch_notify.go)
	unwatch     func(context.Context) error
	watchCookie uint64
	exclusive   bool
	deadClients func(entity.NumName) bool
	lockMu      sync.Mutex   // serialises lock acquisition and release
	ioGate      sync.RWMutex // writes hold it shared; a release drains them
	ownMu       sync.Mutex   // guards cookie
	cookie      string       // our lock cookie while we own the lock
	peerMu      sync.Mutex
	peerCh      chan struct{} // closed on the next ACQUIRED/RELEASED notify
	refreshing  sync.Mutex
	// hdrGen counts in-memory header changes (refresh results, a local
	// resize): a refresh whose reads started before a change landed
	// reads again instead of storing its stale view.
	hdrGen   atomic.Uint64
	acquired atomic.Uint64 // times we took the lock
	released atomic.Uint64 // times we handed it over on request

	// object map (writers of images with that feature, while they own the lock)
	omap     *ObjectMap
	omLocked bool
	omMu     sync.Mutex
	// omBusy: markObject (io.go) holds it shared while its update is on
	// the wire, without omMu; whoever swaps or snapshots the whole map
	// takes it exclusively first. omPending has a channel per object whose
	// update is in flight, closed when it lands.
	omBusy    sync.RWMutex
	omPending map[uint64]chan struct{}
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
	img := &Image{s: s, name: name, id: id, readOnly: o.ReadOnly || o.Snapshot != "", snapID: NoSnap, exclusive: o.Exclusive, deadClients: o.DeadClients}
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
	if o.internal || img.snapID != NoSnap {
		return img, nil
	}
	if err := img.watchHeader(ctx); err != nil {
		return nil, err
	}
	if !img.readOnly && img.feat()&FeatureExclusiveLock != 0 {
		if err := img.openLock(ctx); err != nil {
			_ = img.Close(context.WithoutCancel(ctx))
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
	// One refresh at a time, so a slow one that read the header earlier
	// cannot overwrite what a later one read (a newer snap context).
	img.refreshing.Lock()
	defer img.refreshing.Unlock()
	for {
		gen := img.hdrGen.Load()
		stale, err := img.refreshOnce(ctx, gen)
		if err != nil || !stale {
			return err
		}
	}
}

// refreshOnce reads the header and stores it unless the in-memory header
// changed since gen (then it reports stale and stores nothing).
func (img *Image) refreshOnce(ctx context.Context, gen uint64) (stale bool, err error) {
	ctx, s, hdr := ctx, img.s, img.hdr()
	out, err := s.call(ctx, hdr, clsRBD, "get_size", snapIDArg(NoSnap))
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return false, fmt.Errorf("%w: header of image %q (%s): %w", ErrNotFound, img.name, img.id, err)
		}
		return false, fmt.Errorf("rbd: %s: get_size: %w", img.name, err)
	}
	order, size, err := decodeGetSize(out)
	if err != nil {
		return false, err
	}
	if out, err = s.call(ctx, hdr, clsRBD, "get_features", getFeaturesArgs(NoSnap, img.readOnly)); err != nil {
		return false, fmt.Errorf("rbd: %s: get_features: %w", img.name, err)
	}
	features, incompat, err := decodeGetFeatures(out)
	if err != nil {
		return false, err
	}
	if err := checkFeatures(img.name, features, incompat, !img.readOnly); err != nil {
		return false, err
	}
	if out, err = s.call(ctx, hdr, clsRBD, "get_object_prefix", nil); err != nil {
		return false, fmt.Errorf("rbd: %s: get_object_prefix: %w", img.name, err)
	}
	prefix, err := decodeString("get_object_prefix", out)
	if err != nil {
		return false, err
	}
	var flags uint64
	if out, err = s.call(ctx, hdr, clsRBD, "get_flags", snapIDArg(NoSnap)); err == nil {
		flags, _ = decodeU64("get_flags", out)
	}
	l := Layout{Order: order}
	if features&FeatureStripingV2 != 0 {
		if out, err = s.call(ctx, hdr, clsRBD, "get_stripe_unit_count", nil); err != nil {
			return false, fmt.Errorf("rbd: %s: get_stripe_unit_count: %w", img.name, err)
		}
		if l.StripeUnit, l.StripeCount, err = decodeStripeUnitCount(out); err != nil {
			return false, err
		}
	}
	if err := l.Validate(); err != nil {
		return false, fmt.Errorf("rbd: %s: %w", img.name, err)
	}
	dataPool := int64(-1)
	if features&FeatureDataPool != 0 {
		if out, err = s.call(ctx, hdr, clsRBD, "get_data_pool", nil); err != nil {
			return false, fmt.Errorf("rbd: %s: get_data_pool: %w", img.name, err)
		}
		if dataPool, err = decodeGetDataPool(out); err != nil {
			return false, err
		}
	}
	if out, err = s.call(ctx, hdr, clsRBD, "get_snapcontext", nil); err != nil {
		return false, fmt.Errorf("rbd: %s: get_snapcontext: %w", img.name, err)
	}
	snapc, err := decodeSnapContext(out)
	if err != nil {
		return false, err
	}
	if !snapc.valid() {
		return false, fmt.Errorf("%w: invalid snap context %+v", ErrMalformed, snapc)
	}
	snaps := make([]SnapshotInfo, 0, len(snapc.Snaps))
	for _, sid := range snapc.Snaps {
		out, err := s.call(ctx, hdr, clsRBD, "snapshot_get", snapIDArg(sid))
		if errors.Is(err, syscall.ENOENT) {
			continue // removed meanwhile
		}
		if err != nil {
			return false, fmt.Errorf("rbd: %s: snapshot_get %d: %w", img.name, sid, err)
		}
		si, err := decodeSnapshotInfo(out)
		if err != nil {
			return false, err
		}
		snaps = append(snaps, si)
	}
	ds := s
	if dataPool >= 0 {
		if ds, err = s.withPool(ctx, dataPool, s.namespace()); err != nil {
			return false, fmt.Errorf("rbd: %s: data pool %d: %w", img.name, dataPool, err)
		}
	}

	img.mu.Lock()
	if img.hdrGen.Load() != gen {
		img.mu.Unlock()
		return true, nil
	}
	gen = img.hdrGen.Add(1)
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
		return img.refreshParentGen(ctx, gen)
	}
	return false, nil
}

// refreshParent reads the parent spec and overlap for the open snapshot
// (parent_get / parent_overlap_get, or the legacy get_parent).
func (img *Image) refreshParent(ctx context.Context) error {
	_, err := img.refreshParentGen(ctx, 0)
	return err
}

// refreshParentGen is refreshParent that, with gen > 0, stores nothing
// and reports stale when the in-memory header changed since gen.
func (img *Image) refreshParentGen(ctx context.Context, gen uint64) (stale bool, err error) {
	if img.feat()&FeatureLayering == 0 {
		return false, nil
	}
	var p ParentSpec
	var overlap uint64
	out, err := img.s.call(ctx, img.hdr(), clsRBD, "parent_get", nil)
	switch {
	case err == nil:
		if p, err = decodeParentGet(out); err != nil {
			return false, err
		}
		if p.PoolID >= 0 {
			out, err := img.s.call(ctx, img.hdr(), clsRBD, "parent_overlap_get", snapIDArg(img.snapID))
			if err != nil {
				return false, fmt.Errorf("rbd: %s: parent_overlap_get: %w", img.name, err)
			}
			var ok bool
			if overlap, ok, err = decodeParentOverlapGet(out); err != nil {
				return false, err
			} else if !ok {
				p = ParentSpec{PoolID: -1}
			}
		}
	case errors.Is(err, syscall.EOPNOTSUPP):
		out, err := img.s.call(ctx, img.hdr(), clsRBD, "get_parent", snapIDArg(img.snapID))
		if err != nil {
			return false, fmt.Errorf("rbd: %s: get_parent: %w", img.name, err)
		}
		if p, overlap, err = decodeLegacyGetParent(out); err != nil {
			return false, err
		}
	case errors.Is(err, syscall.ENOENT):
		p = ParentSpec{PoolID: -1}
	default:
		return false, fmt.Errorf("rbd: %s: parent_get: %w", img.name, err)
	}
	img.mu.Lock()
	defer img.mu.Unlock()
	if gen > 0 && img.hdrGen.Load() != gen {
		return true, nil
	}
	if !p.Exists() {
		img.parent, img.overlap, img.parentImg = ParentSpec{PoolID: -1}, 0, nil
		return false, nil
	}
	if img.parentImg != nil && img.parent == p {
		img.overlap = overlap
		return false, nil
	}
	ps, err := img.s.withPool(ctx, p.PoolID, p.Namespace)
	if err != nil {
		return false, fmt.Errorf("rbd: %s: parent pool %d: %w", img.name, p.PoolID, err)
	}
	img.mu.Unlock()
	pi, err := openParent(ctx, ps, p)
	img.mu.Lock()
	if err == nil && gen > 0 && img.hdrGen.Load() != gen {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("rbd: %s: opening parent %s@%d: %w", img.name, p.ImageID, p.SnapID, err)
	}
	img.parent, img.overlap, img.parentImg = p, overlap, pi
	return false, nil
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

// feat returns the feature bits (a refresh may change them).
func (img *Image) feat() uint64 {
	img.mu.RLock()
	defer img.mu.RUnlock()
	return img.features
}

// Size returns the image size (of the open snapshot, if any).
func (img *Image) Size() uint64 {
	img.mu.RLock()
	defer img.mu.RUnlock()
	return img.size
}

// Refresh re-reads the header, as after a HEADER_UPDATE notify.
func (img *Image) Refresh(ctx context.Context) error { return img.refresh(ctx) }
