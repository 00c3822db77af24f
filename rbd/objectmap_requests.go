package rbd

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// The object map's whole-map requests (librbd's object_map::LockRequest,
// RefreshRequest, ResizeRequest, SnapshotCreateRequest and
// SnapshotRemoveRequest): they move it between the states of
// objectmap_state.go or change all of it at once, with no update in flight.

// librbd's object_map::LockRequest and krbd's rbd_object_map_lock do.
func (om *objectMap) lock(ctx context.Context) error {
	lock := opCall(clsLock, "lock", lockArgs(rbdLockName, LockExclusive, "", "", "", 0, 0))
	err := om.s.write(ctx, om.oid(), lock)
	if errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EEXIST) {
		li, gerr := lockInfo(ctx, om.s, om.oid())
		if gerr != nil {
			return fmt.Errorf("rbd: %s: object map lock info: %w", om.name, gerr)
		}
		for _, lk := range li.Lockers {
			if berr := breakLock(ctx, om.s, om.oid(), lk); berr != nil {
				return fmt.Errorf("rbd: %s: breaking object map lock of %v: %w", om.name, lk.Entity, berr)
			}
		}
		err = om.s.write(ctx, om.oid(), lock)
	}
	if err != nil {
		return fmt.Errorf("rbd: %s: locking the object map: %w", om.name, err)
	}
	om.mu.Lock()
	om.state.Store(uint32(omLocked))
	om.mu.Unlock()
	return nil
}

// load (re)reads the head's map from the OSD (object_map_load): LOADED.
func (om *objectMap) load(ctx context.Context) error {
	om.busy.Lock() // no update in flight
	defer om.busy.Unlock()
	out, err := om.s.call(ctx, om.oid(), clsRBD, "object_map_load", nil)
	if err != nil {
		return fmt.Errorf("rbd: %s: object_map_load: %w", om.name, err)
	}
	m, err := DecodeObjectMap(out)
	if err != nil {
		return err
	}
	om.mu.Lock()
	om.m = m
	om.state.Store(uint32(omLoaded))
	om.mu.Unlock()
	return nil
}

// The exclusive lock's release calls it with its writers drained.
func (om *objectMap) unlock(ctx context.Context) error {
	om.mu.Lock()
	held := om.current() != omNone
	om.m = nil
	om.state.Store(uint32(omNone))
	om.mu.Unlock()
	if !held {
		return nil
	}
	return om.s.write(ctx, om.oid(), opCall(clsLock, "unlock", unlockArgs(rbdLockName, "")))
}

// while still no update is in flight.
func (om *objectMap) resize(ctx context.Context, count uint64, then func() error) error {
	om.busy.Lock() // no update in flight
	defer om.busy.Unlock()
	if err := om.s.write(ctx, om.oid(), opLockedMap("object_map_resize", objectMapResizeArgs(count, ObjectNonexistent))); err != nil {
		return fmt.Errorf("rbd: %s: object_map_resize: %w", om.name, err)
	}
	om.mu.Lock()
	if om.m != nil {
		nm := NewObjectMap(count)
		for i := uint64(0); i < count && i < om.m.Len(); i++ {
			nm.Set(i, om.m.Get(i))
		}
		om.m = nm
	}
	om.mu.Unlock()
	return then()
}

// object_map::SnapshotCreateRequest does.
func (om *objectMap) snapshot(ctx context.Context, snap uint64) error {
	om.busy.Lock() // no update in flight
	defer om.busy.Unlock()
	om.mu.Lock()
	if om.m == nil {
		om.mu.Unlock()
		return nil
	}
	var e encoding.Encoder
	om.m.Encode(&e)
	om.mu.Unlock()
	if err := om.s.write(ctx, ObjectMapName(om.id, snap), opCall(clsRBD, "object_map_save", e.B)); err != nil {
		return fmt.Errorf("rbd: %s: saving the snapshot object map: %w", om.name, err)
	}
	if err := om.s.write(ctx, om.oid(), opLockedMap("object_map_snap_add", nil)); err != nil {
		return fmt.Errorf("rbd: %s: object_map_snap_add: %w", om.name, err)
	}
	om.mu.Lock()
	defer om.mu.Unlock()
	for i := uint64(0); om.m != nil && i < om.m.Len(); i++ {
		if om.m.Get(i) == ObjectExists {
			om.m.Set(i, ObjectExistsClean)
		}
	}
	return nil
}

// snapshot's map object.
func (om *objectMap) removeSnapshot(ctx context.Context, snap uint64) error {
	som := ObjectMapName(om.id, snap)
	out, err := om.s.call(ctx, som, clsRBD, "object_map_load", nil)
	switch {
	case err == nil:
		if err := om.s.write(ctx, om.oid(), opLockedMap("object_map_snap_remove", out)); err != nil {
			return fmt.Errorf("rbd: %s: object_map_snap_remove: %w", om.name, err)
		}
		if err := om.load(ctx); err != nil {
			return err
		}
	case !errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("rbd: %s: loading the snapshot object map: %w", om.name, err)
	}
	if err := om.s.remove(ctx, som); err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("rbd: %s: removing the snapshot object map: %w", om.name, err)
	}
	return nil
}

// are gone are skipped.
func (om *objectMap) markSnapshots(ctx context.Context, snapc SnapContext, objno uint64, fastDiff bool) error {
	for i := len(snapc.Snaps) - 1; i >= 0; i-- {
		state := ObjectExists
		if i < len(snapc.Snaps)-1 && fastDiff {
			state = ObjectExistsClean
		}
		snap := snapc.Snaps[i]
		err := om.s.write(ctx, ObjectMapName(om.id, snap),
			opCall(clsRBD, "object_map_update", objectMapUpdateArgs(objno, objno+1, state, nil)))
		if err != nil && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("rbd: %s: object map of snapshot %d, object %d: %w", om.name, snap, objno, err)
		}
	}
	return nil
}
