package rbd

import (
	"context"
	"errors"
	"fmt"
	"syscall"
)

// SnapshotOptions select how a snapshot is taken.
type SnapshotOptions struct {
	// SkipQuiesce takes it without asking the image's users to quiesce
	// (`rbd snap create --skip-quiesce`).
	SkipQuiesce bool
	// IgnoreQuiesceError takes it even when a user failed to quiesce
	// (`--ignore-quiesce-error`); the users that did are released after.
	IgnoreQuiesceError bool
}

// CreateSnapshot makes a user snapshot of the head as `rbd snap create`
// does: the image's users (watchers, this client included) are asked to
// quiesce first and released after (quiesce.go), so that a filesystem on
// a volume another client serves is consistent in the snapshot.
func (img *Image) CreateSnapshot(ctx context.Context, name string) (uint64, error) {
	return img.CreateSnapshotOpts(ctx, name, nil)
}

// CreateSnapshotOpts is CreateSnapshot with options (nil: the defaults).
// A failed quiesce fails it with an error matching ErrQuiesce.
func (img *Image) CreateSnapshotOpts(ctx context.Context, name string, opts *SnapshotOptions) (uint64, error) {
	if img.readOnly {
		return 0, ErrReadOnly
	}
	if name == "" {
		return 0, fmt.Errorf("%w: empty snapshot name", ErrInvalid)
	}
	var o SnapshotOptions
	if opts != nil {
		o = *opts
	}
	return img.snapshotWith(ctx, name, SnapshotNamespace{}, o)
}

// snapshotWith quiesces the image's users (unless o says not to), takes
// snapshot name in namespace ns and releases them.
func (img *Image) snapshotWith(ctx context.Context, name string, ns SnapshotNamespace, o SnapshotOptions) (uint64, error) {
	if !o.SkipQuiesce {
		release, err := quiesceImages(ctx, []*Image{img})
		if err != nil && !o.IgnoreQuiesceError {
			return 0, err
		}
		if release != nil {
			defer release()
		}
	}
	return img.createSnapshot(ctx, name, ns)
}

// createSnapshot adds snapshot name in namespace ns (librbd's
// SnapshotCreateRequest after the quiesce): the snapshot id comes from
// the monitors (self-managed snaps of the data pool), then snapshot_add
// on the header, then the object map copy; later writes carry the new
// snap context so the OSDs preserve the snapshot's data.
func (img *Image) createSnapshot(ctx context.Context, name string, ns SnapshotNamespace) (uint64, error) {
	done, err := img.startWrite(ctx)
	if errors.Is(err, errOwnerRefuses) {
		return img.remoteSnapCreate(ctx, name, ns) // the owner keeps the lock: it snapshots (remote_ops.go)
	}
	if err != nil {
		return 0, err
	}
	defer done()
	for attempt := 0; ; attempt++ {
		st := img.state()
		id, err := st.data.allocSnapID(ctx)
		if err != nil {
			return 0, fmt.Errorf("rbd: %s: allocating a snapshot id: %w", img.name, err)
		}
		err = img.s.write(ctx, img.hdr(), opCall(clsRBD, "snapshot_add", snapshotAddArgs(id, name, ns)))
		if err != nil {
			_ = st.data.releaseSnapID(context.WithoutCancel(ctx), id)
			if errors.Is(err, syscall.ESTALE) && attempt < 3 {
				// Someone else's snapshot raced ours with a newer seq.
				if err := img.refresh(ctx); err != nil {
					return 0, err
				}
				continue
			}
			if errors.Is(err, syscall.EEXIST) {
				return 0, fmt.Errorf("%w: snapshot %q of image %q", ErrExists, name, img.name)
			}
			return 0, fmt.Errorf("rbd: %s: snapshot_add: %w", img.name, err)
		}
		if err := img.om.snapshot(ctx, id); err != nil {
			return 0, err
		}
		if err := img.refresh(ctx); err != nil {
			return 0, err
		}
		img.notifyUpdate(ctx)
		return id, nil
	}
}

// RemoveSnapshot deletes a user snapshot (librbd's SnapshotRemoveRequest).
// A protected snapshot is refused (ErrBusy). One that still has clone v2
// children is not deleted but moved to the trash snapshot namespace
// (snapshot_trash_add), as librbd does; it is removed when its last child
// is removed or flattened. Otherwise the snapshot's object map is folded
// into the head's (object_map_snap_remove), the record removed and the id
// released so the OSDs trim its clones.
func (img *Image) RemoveSnapshot(ctx context.Context, name string) error {
	return img.dropSnapshot(ctx, name, false)
}

// TrashSnapshot moves user snapshot name into the trash snapshot namespace
// (snapshot_trash_add, which also sets the SNAP_TRASH op feature): it
// keeps its id and data for its clone children but no longer shows as a
// user snapshot; its name becomes free. RemoveSnapshot does this by itself
// when the snapshot has children.
func (img *Image) TrashSnapshot(ctx context.Context, name string) error {
	return img.dropSnapshot(ctx, name, true)
}

// dropSnapshot removes user snapshot name, or moves it to the trash when
// trash is set or it has clone children; a protected one is refused.
func (img *Image) dropSnapshot(ctx context.Context, name string, trash bool) error {
	si, err := img.userSnapshot(name)
	if err != nil {
		return err
	}
	return img.dropSnap(ctx, si, trash)
}

// dropSnap is dropSnapshot for a snapshot of any namespace but the trash.
func (img *Image) dropSnap(ctx context.Context, si SnapshotInfo, trash bool) error {
	done, err := img.startWrite(ctx)
	if errors.Is(err, errOwnerRefuses) && !trash {
		return img.remoteSnapRemove(ctx, si) // the owner keeps the lock: it removes (remote_ops.go)
	}
	if err != nil {
		return err
	}
	defer done()
	if err := img.checkUnprotected(ctx, si); err != nil {
		return err
	}
	if !trash {
		children, err := img.snapshotChildren(ctx, si.ID)
		if err != nil {
			return err
		}
		trash = len(children) > 0
	}
	if trash {
		return img.trashSnapshot(ctx, si)
	}
	return img.removeSnapshot(ctx, si)
}

// RemoveSnapshotByID removes a snapshot of any namespace (user or trash)
// by id; it refuses (ErrBusy) while the snapshot is protected or has
// clone children.
func (img *Image) RemoveSnapshotByID(ctx context.Context, id uint64) error {
	done, err := img.startWrite(ctx)
	if errors.Is(err, errOwnerRefuses) {
		for _, s := range img.state().snaps {
			if s.ID == id {
				return img.remoteSnapRemove(ctx, s) // the owner keeps the lock (remote_ops.go)
			}
		}
		return fmt.Errorf("%w: snapshot id %d of image %q", ErrNotFound, id, img.name)
	}
	if err != nil {
		return err
	}
	defer done()
	var si *SnapshotInfo
	for _, s := range img.state().snaps {
		if s.ID == id {
			si = &s
		}
	}
	if si == nil {
		return fmt.Errorf("%w: snapshot id %d of image %q", ErrNotFound, id, img.name)
	}
	if err := img.checkUnprotected(ctx, *si); err != nil {
		return err
	}
	if children, err := img.snapshotChildren(ctx, id); err != nil {
		return err
	} else if len(children) > 0 {
		return fmt.Errorf("%w: snapshot %d has %d clone children", ErrBusy, id, len(children))
	}
	return img.removeSnapshot(ctx, *si)
}

// startSnapshotWrite finds user snapshot name and starts a write
// (startWrite) that changes it.
func (img *Image) startSnapshotWrite(ctx context.Context, name string) (si SnapshotInfo, done func(), err error) {
	if si, err = img.userSnapshot(name); err != nil {
		return si, nil, err
	}
	done, err = img.startWrite(ctx)
	return si, done, err
}

// userSnapshot finds a user-namespace snapshot by name.
func (img *Image) userSnapshot(name string) (SnapshotInfo, error) {
	if si, ok := img.state().userSnapshot(name); ok {
		return si, nil
	}
	return SnapshotInfo{}, fmt.Errorf("%w: snapshot %q of image %q", ErrNotFound, name, img.name)
}

func (img *Image) checkUnprotected(ctx context.Context, si SnapshotInfo) error {
	out, err := img.s.call(ctx, img.hdr(), clsRBD, "get_protection_status", snapIDArg(si.ID))
	if err != nil {
		return nil // no protection status: nothing protects it
	}
	if ps, _ := decodeProtectionStatus(out); ps != ProtectionUnprotected {
		return fmt.Errorf("%w: snapshot %q is protected", ErrBusy, si.Name)
	}
	return nil
}

// snapshotChildren lists the clone v2 children of a snapshot
// (children_list on the header; ENOENT means none).
func (img *Image) snapshotChildren(ctx context.Context, snap uint64) ([]ChildSpec, error) {
	out, err := img.s.call(ctx, img.hdr(), clsRBD, "children_list", snapIDArg(snap))
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.EOPNOTSUPP) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("rbd: %s: children_list: %w", img.name, err)
	}
	return decodeChildrenList(out)
}

func (img *Image) trashSnapshot(ctx context.Context, si SnapshotInfo) error {
	if err := img.s.write(ctx, img.hdr(), opCall(clsRBD, "snapshot_trash_add", u64Arg(si.ID))); err != nil {
		if errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("%w: snapshot %q is protected: %w", ErrBusy, si.Name, err)
		}
		return fmt.Errorf("rbd: %s: snapshot_trash_add: %w", img.name, err)
	}
	if err := img.refresh(ctx); err != nil {
		return err
	}
	img.notifyUpdate(ctx)
	return nil
}

// removeSnapshot deletes a snapshot record and releases its id; the
// caller holds the lock (startWrite).
func (img *Image) removeSnapshot(ctx context.Context, si SnapshotInfo) error {
	if img.om.loaded() {
		if err := img.om.removeSnapshot(ctx, si.ID); err != nil {
			return err
		}
	}
	// Asked before snapshot_remove, which drops the parent spec with the
	// last snapshot using it.
	parent, lastUser := img.lastParentUser(ctx, si.ID)
	if err := img.s.write(ctx, img.hdr(), opCall(clsRBD, "snapshot_remove", u64Arg(si.ID))); err != nil {
		return fmt.Errorf("rbd: %s: snapshot_remove: %w", img.name, err)
	}
	if lastUser {
		if err := img.detachParentSpec(ctx, parent); err != nil {
			return err
		}
	}
	st := img.state()
	if err := st.data.releaseSnapID(ctx, si.ID); err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("rbd: %s: releasing snapshot id %d: %w", img.name, si.ID, err)
	}
	if err := img.refresh(ctx); err != nil {
		return err
	}
	img.notifyUpdate(ctx)
	return nil
}

// lastParentUser reports whether snapshot snap is the last user of this
// clone's parent link: it has a parent overlap while the head (flattened
// without DEEP_FLATTEN) and every other snapshot have none. Removing it
// must then detach the child from the parent snapshot, as librbd's
// SnapshotRemoveRequest::detach_child does; otherwise the parent keeps a
// child that no longer exists. Errors read as "not the last user".
func (img *Image) lastParentUser(ctx context.Context, snap uint64) (ParentSpec, bool) {
	if img.feat()&FeatureLayering == 0 {
		return ParentSpec{}, false
	}
	out, err := img.s.call(ctx, img.hdr(), clsRBD, "parent_get", nil)
	if err != nil {
		return ParentSpec{}, false
	}
	p, err := decodeParentGet(out)
	if err != nil || !p.Exists() {
		return ParentSpec{}, false
	}
	overlap := func(id uint64) (has, known bool) {
		out, err := img.s.call(ctx, img.hdr(), clsRBD, "parent_overlap_get", snapIDArg(id))
		if err != nil {
			return false, false
		}
		_, ok, err := decodeParentOverlapGet(out)
		return ok, err == nil
	}
	if has, known := overlap(snap); !has || !known {
		return ParentSpec{}, false
	}
	others := []uint64{NoSnap}
	for _, s := range img.state().snaps {
		if s.ID != snap {
			others = append(others, s.ID)
		}
	}
	for _, id := range others {
		if has, known := overlap(id); has || !known {
			return ParentSpec{}, false // still used, or unknown: keep the link
		}
	}
	return p, true
}
