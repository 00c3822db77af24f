package rbd

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// CreateSnapshot makes a user snapshot of the head (librbd's
// SnapshotCreateRequest, without quiescing other clients): the snapshot id
// comes from the monitors (self-managed snaps of the data pool), then
// snapshot_add on the header, then the object map copy; later writes carry
// the new snap context so the OSDs preserve the snapshot's data.
func (img *Image) CreateSnapshot(ctx context.Context, name string) (uint64, error) {
	if img.readOnly {
		return 0, ErrReadOnly
	}
	if name == "" {
		return 0, fmt.Errorf("%w: empty snapshot name", ErrInvalid)
	}
	for attempt := 0; ; attempt++ {
		st := img.state()
		id, err := st.data.allocSnapID(ctx)
		if err != nil {
			return 0, fmt.Errorf("rbd: %s: allocating a snapshot id: %w", img.name, err)
		}
		err = img.s.write(ctx, img.hdr(), opCall(clsRBD, "snapshot_add", snapshotAddArgs(id, name, SnapshotNamespace{})))
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
		if img.omap != nil {
			if err := img.snapshotObjectMap(ctx, id); err != nil {
				return 0, err
			}
		}
		if err := img.refresh(ctx); err != nil {
			return 0, err
		}
		_ = img.s.notify(ctx, img.hdr(), notifyPayload(notifyHeaderUpdate, 0, 0))
		return id, nil
	}
}

// snapshotObjectMap saves the head map as the snapshot's map and marks the
// head's EXISTS objects EXISTS_CLEAN (object_map_snap_add), as
// object_map::SnapshotCreateRequest does.
func (img *Image) snapshotObjectMap(ctx context.Context, snap uint64) error {
	img.omMu.Lock()
	defer img.omMu.Unlock()
	var e encoding.Encoder
	img.omap.Encode(&e)
	if err := img.s.write(ctx, ObjectMapName(img.id, snap), opCall(clsRBD, "object_map_save", e.B)); err != nil {
		return fmt.Errorf("rbd: %s: saving the snapshot object map: %w", img.name, err)
	}
	err := img.s.write(ctx, ObjectMapName(img.id, NoSnap),
		opCall(clsLock, "assert_locked", assertLockedArgs(rbdLockName, LockExclusive, "", "")),
		opCall(clsRBD, "object_map_snap_add", nil))
	if err != nil {
		return fmt.Errorf("rbd: %s: object_map_snap_add: %w", img.name, err)
	}
	for i := uint64(0); i < img.omap.Len(); i++ {
		if img.omap.Get(i) == ObjectExists {
			img.omap.Set(i, ObjectExistsClean)
		}
	}
	return nil
}

// RemoveSnapshot deletes a user snapshot (SnapshotRemoveRequest): it
// refuses protected snapshots and ones with clone children, folds the
// snapshot's object map into the head's (object_map_snap_remove), removes
// the snapshot record, and releases the id so the OSDs trim its clones.
func (img *Image) RemoveSnapshot(ctx context.Context, name string) error {
	if img.readOnly {
		return ErrReadOnly
	}
	img.mu.RLock()
	var si *SnapshotInfo
	for i := range img.snaps {
		if img.snaps[i].Name == name && img.snaps[i].Namespace.Type == SnapNamespaceUser {
			si = &img.snaps[i]
		}
	}
	img.mu.RUnlock()
	if si == nil {
		return fmt.Errorf("%w: snapshot %q of image %q", ErrNotFound, name, img.name)
	}
	if si.ChildCount > 0 {
		return fmt.Errorf("%w: snapshot %q has %d clone children", ErrBusy, name, si.ChildCount)
	}
	out, err := img.s.call(ctx, img.hdr(), clsRBD, "get_protection_status", snapIDArg(si.ID))
	if err == nil {
		if ps, _ := decodeProtectionStatus(out); ps != ProtectionUnprotected {
			return fmt.Errorf("%w: snapshot %q is protected", ErrBusy, name)
		}
	}
	if img.omap != nil {
		som := ObjectMapName(img.id, si.ID)
		out, err := img.s.call(ctx, som, clsRBD, "object_map_load", nil)
		switch {
		case err == nil:
			err = img.s.write(ctx, ObjectMapName(img.id, NoSnap),
				opCall(clsLock, "assert_locked", assertLockedArgs(rbdLockName, LockExclusive, "", "")),
				opCall(clsRBD, "object_map_snap_remove", out))
			if err != nil {
				return fmt.Errorf("rbd: %s: object_map_snap_remove: %w", img.name, err)
			}
			if err := img.reloadObjectMap(ctx); err != nil {
				return err
			}
		case !errors.Is(err, syscall.ENOENT):
			return fmt.Errorf("rbd: %s: loading the snapshot object map: %w", img.name, err)
		}
		if err := img.s.write(ctx, som, opRemove()); err != nil && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("rbd: %s: removing the snapshot object map: %w", img.name, err)
		}
	}
	if err := img.s.write(ctx, img.hdr(), opCall(clsRBD, "snapshot_remove", u64Arg(si.ID))); err != nil {
		return fmt.Errorf("rbd: %s: snapshot_remove: %w", img.name, err)
	}
	st := img.state()
	if err := st.data.releaseSnapID(ctx, si.ID); err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("rbd: %s: releasing snapshot id %d: %w", img.name, si.ID, err)
	}
	if err := img.refresh(ctx); err != nil {
		return err
	}
	_ = img.s.notify(ctx, img.hdr(), notifyPayload(notifyHeaderUpdate, 0, 0))
	return nil
}

func (img *Image) reloadObjectMap(ctx context.Context) error {
	out, err := img.s.call(ctx, ObjectMapName(img.id, NoSnap), clsRBD, "object_map_load", nil)
	if err != nil {
		return fmt.Errorf("rbd: %s: object_map_load: %w", img.name, err)
	}
	m, err := DecodeObjectMap(out)
	if err != nil {
		return err
	}
	img.omMu.Lock()
	img.omap = m
	img.omMu.Unlock()
	return nil
}
