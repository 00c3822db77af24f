package rbd

import (
	"context"
	"errors"
	"fmt"
	"syscall"
)

// imageState is what a header refresh read (librbd's RefreshRequest,
// krbd's rbd_dev_header_info): immutable once published in Image.st, so
// the I/O path reads it without locks. A change makes a new one.
type imageState struct {
	size     uint64 // of the head, or of the open snapshot
	order    uint8
	features uint64
	flags    uint64
	prefix   string // data object name prefix
	layout   Layout
	dataPool int64       // -1: none
	snapc    SnapContext // the image's snapshots, newest first
	snaps    []SnapshotInfo

	parent    ParentSpec // PoolID -1: none
	overlap   uint64
	parentImg *Image // open at the parent snapshot; nil without a parent

	// data addresses the data objects: writes carry snapc (the head), or
	// reads see the open snapshot.
	data store
}

// state returns the image state the last refresh (or resize) published.
func (img *Image) state() *imageState { return img.st.Load() }

// userSnapshot finds a user-namespace snapshot by name.
func (st *imageState) userSnapshot(name string) (SnapshotInfo, bool) {
	for _, si := range st.snaps {
		if si.Name == name && si.Namespace.Type == SnapNamespaceUser {
			return si, true
		}
	}
	return SnapshotInfo{}, false
}

// snapshotByID finds a snapshot of any namespace but the trash by id.
func (st *imageState) snapshotByID(id uint64) (SnapshotInfo, bool) {
	for _, si := range st.snaps {
		if si.ID == id && si.Namespace.Type != SnapNamespaceTrash {
			return si, true
		}
	}
	return SnapshotInfo{}, false
}

// refresh re-reads the header: size, features, prefix, layout, data pool,
// snap context and snapshots, parent; then publishes the new state.
func (img *Image) refresh(ctx context.Context) error {
	// One refresh at a time, so a slow one that read the header earlier
	// cannot overwrite what a later one read (a newer snap context).
	img.refreshMu.Lock()
	defer img.refreshMu.Unlock()
	for {
		base := img.st.Load()
		n, err := img.readState(ctx, base)
		if err != nil {
			return err
		}
		if img.st.CompareAndSwap(base, n) {
			return nil
		}
		// A local change (resize) landed while we read: read again.
	}
}

// readState reads the header into a new state; base is the current one
// (nil at Open), whose open parent is reused when the link is unchanged.
func (img *Image) readState(ctx context.Context, base *imageState) (*imageState, error) {
	n, ds, err := img.readHeader(ctx)
	if err != nil {
		return nil, err
	}
	if img.snapID != NoSnap {
		// An open snapshot keeps its size and parent link; reads see it.
		n.size = base.size
		n.data = ds.withReadSnap(img.snapID)
		n.parent, n.overlap, n.parentImg = base.parent, base.overlap, base.parentImg
		return n, nil
	}
	n.data = ds.withSnapContext(n.snapc)
	if err := img.readParentLink(ctx, n, base); err != nil {
		return nil, err
	}
	return n, nil
}

// readHeader reads the header's fields (all but the parent link) and
// returns them with the store of the data objects.
func (img *Image) readHeader(ctx context.Context) (*imageState, store, error) {
	s, hdr := img.s, img.hdr()
	out, err := s.call(ctx, hdr, clsRBD, "get_size", snapIDArg(NoSnap))
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return nil, nil, fmt.Errorf("%w: header of image %q (%s): %w", ErrNotFound, img.name, img.id, err)
		}
		return nil, nil, fmt.Errorf("rbd: %s: get_size: %w", img.name, err)
	}
	n := &imageState{dataPool: -1, parent: ParentSpec{PoolID: -1}}
	if n.order, n.size, err = decodeGetSize(out); err != nil {
		return nil, nil, err
	}
	if out, err = s.call(ctx, hdr, clsRBD, "get_features", getFeaturesArgs(NoSnap, img.readOnly)); err != nil {
		return nil, nil, fmt.Errorf("rbd: %s: get_features: %w", img.name, err)
	}
	var incompat uint64
	if n.features, incompat, err = decodeGetFeatures(out); err != nil {
		return nil, nil, err
	}
	if err := checkFeatures(img.name, n.features, incompat, !img.readOnly); err != nil {
		return nil, nil, err
	}
	if out, err = s.call(ctx, hdr, clsRBD, "get_object_prefix", nil); err != nil {
		return nil, nil, fmt.Errorf("rbd: %s: get_object_prefix: %w", img.name, err)
	}
	if n.prefix, err = decodeString("get_object_prefix", out); err != nil {
		return nil, nil, err
	}
	if out, err = s.call(ctx, hdr, clsRBD, "get_flags", snapIDArg(NoSnap)); err == nil {
		n.flags, _ = decodeU64("get_flags", out)
	}
	if n.layout, err = img.readLayout(ctx, n.order, n.features); err != nil {
		return nil, nil, err
	}
	ds := s
	if n.features&FeatureDataPool != 0 {
		if out, err = s.call(ctx, hdr, clsRBD, "get_data_pool", nil); err != nil {
			return nil, nil, fmt.Errorf("rbd: %s: get_data_pool: %w", img.name, err)
		}
		if n.dataPool, err = decodeGetDataPool(out); err != nil {
			return nil, nil, err
		}
	}
	if n.dataPool >= 0 {
		if ds, err = s.withPool(ctx, n.dataPool, s.namespace()); err != nil {
			return nil, nil, fmt.Errorf("rbd: %s: data pool %d: %w", img.name, n.dataPool, err)
		}
	}
	if n.snapc, n.snaps, err = img.readSnapshots(ctx); err != nil {
		return nil, nil, err
	}
	return n, ds, nil
}

// readLayout reads the striping parameters (STRIPINGV2) and checks the
// layout.
func (img *Image) readLayout(ctx context.Context, order uint8, features uint64) (Layout, error) {
	l := Layout{Order: order}
	if features&FeatureStripingV2 != 0 {
		out, err := img.s.call(ctx, img.hdr(), clsRBD, "get_stripe_unit_count", nil)
		if err != nil {
			return l, fmt.Errorf("rbd: %s: get_stripe_unit_count: %w", img.name, err)
		}
		if l.StripeUnit, l.StripeCount, err = decodeStripeUnitCount(out); err != nil {
			return l, err
		}
	}
	if err := l.Validate(); err != nil {
		return l, fmt.Errorf("rbd: %s: %w", img.name, err)
	}
	return l, nil
}

// readSnapshots reads the snap context and each snapshot's record.
func (img *Image) readSnapshots(ctx context.Context) (SnapContext, []SnapshotInfo, error) {
	out, err := img.s.call(ctx, img.hdr(), clsRBD, "get_snapcontext", nil)
	if err != nil {
		return SnapContext{}, nil, fmt.Errorf("rbd: %s: get_snapcontext: %w", img.name, err)
	}
	snapc, err := decodeSnapContext(out)
	if err != nil {
		return SnapContext{}, nil, err
	}
	if !snapc.valid() {
		return SnapContext{}, nil, fmt.Errorf("%w: invalid snap context %+v", ErrMalformed, snapc)
	}
	snaps := make([]SnapshotInfo, 0, len(snapc.Snaps))
	for _, sid := range snapc.Snaps {
		out, err := img.s.call(ctx, img.hdr(), clsRBD, "snapshot_get", snapIDArg(sid))
		if errors.Is(err, syscall.ENOENT) {
			continue // removed meanwhile
		}
		if err != nil {
			return SnapContext{}, nil, fmt.Errorf("rbd: %s: snapshot_get %d: %w", img.name, sid, err)
		}
		si, err := decodeSnapshotInfo(out)
		if err != nil {
			return SnapContext{}, nil, err
		}
		snaps = append(snaps, si)
	}
	return snapc, snaps, nil
}

// readParentLink fills in n's parent spec and overlap at the open
// snapshot (parent_get / parent_overlap_get, or the legacy get_parent)
// and opens the parent, unless base already has it open.
func (img *Image) readParentLink(ctx context.Context, n, base *imageState) error {
	n.parent, n.overlap, n.parentImg = ParentSpec{PoolID: -1}, 0, nil
	if n.features&FeatureLayering == 0 {
		return nil
	}
	p, overlap, err := img.readParentSpec(ctx)
	if err != nil || !p.Exists() {
		return err
	}
	if base != nil && base.parentImg != nil && base.parent == p {
		n.parent, n.overlap, n.parentImg = p, overlap, base.parentImg
		return nil
	}
	ps, err := img.s.withPool(ctx, p.PoolID, p.Namespace)
	if err != nil {
		return fmt.Errorf("rbd: %s: parent pool %d: %w", img.name, p.PoolID, err)
	}
	pi, err := openParent(ctx, ps, p)
	if err != nil {
		return fmt.Errorf("rbd: %s: opening parent %s@%d: %w", img.name, p.ImageID, p.SnapID, err)
	}
	n.parent, n.overlap, n.parentImg = p, overlap, pi
	return nil
}

// readParentSpec reads the parent spec and the overlap at the open
// snapshot; a spec that does not Exist means no parent.
func (img *Image) readParentSpec(ctx context.Context) (ParentSpec, uint64, error) {
	none := ParentSpec{PoolID: -1}
	out, err := img.s.call(ctx, img.hdr(), clsRBD, "parent_get", nil)
	switch {
	case err == nil:
		p, err := decodeParentGet(out)
		if err != nil || p.PoolID < 0 {
			return p, 0, err
		}
		out, err := img.s.call(ctx, img.hdr(), clsRBD, "parent_overlap_get", snapIDArg(img.snapID))
		if err != nil {
			return none, 0, fmt.Errorf("rbd: %s: parent_overlap_get: %w", img.name, err)
		}
		overlap, ok, err := decodeParentOverlapGet(out)
		if err != nil {
			return none, 0, err
		}
		if !ok {
			return none, 0, nil
		}
		return p, overlap, nil
	case errors.Is(err, syscall.EOPNOTSUPP):
		out, err := img.s.call(ctx, img.hdr(), clsRBD, "get_parent", snapIDArg(img.snapID))
		if err != nil {
			return none, 0, fmt.Errorf("rbd: %s: get_parent: %w", img.name, err)
		}
		return decodeLegacyGetParent(out)
	case errors.Is(err, syscall.ENOENT):
		return none, 0, nil
	}
	return none, 0, fmt.Errorf("rbd: %s: parent_get: %w", img.name, err)
}

// viewSnapshot turns a freshly opened head (not yet shared) into a view of
// snapshot si: its size, reads at it, its parent link.
func (img *Image) viewSnapshot(ctx context.Context, si SnapshotInfo) error {
	cur := img.state()
	n := *cur
	img.snapID = si.ID
	n.size = si.Size
	n.data = cur.data.withReadSnap(si.ID)
	if err := img.readParentLink(ctx, &n, cur); err != nil {
		return err
	}
	img.st.Store(&n)
	return nil
}

// openParent opens a clone's parent, read-only at its snapshot.
func openParent(ctx context.Context, s store, p ParentSpec) (*Image, error) {
	img := newImage(s, "", p.ImageID, true)
	if err := img.refresh(ctx); err != nil {
		return nil, err
	}
	for _, si := range img.state().snaps {
		if si.ID == p.SnapID {
			return img, img.viewSnapshot(ctx, si)
		}
	}
	return nil, fmt.Errorf("%w: parent snapshot %d", ErrNotFound, p.SnapID)
}

// publishSize publishes a size this client just set (resize): set_size
// clips the parent overlap too. A refresh reading meanwhile reads again.
func (img *Image) publishSize(size uint64) {
	for {
		cur := img.state()
		n := *cur
		n.size = size
		n.overlap = min(n.overlap, size)
		if img.st.CompareAndSwap(cur, &n) {
			return
		}
	}
}
