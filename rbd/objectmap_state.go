package rbd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// omState is where an image's live object map stands (librbd's
// ObjectMap with object_map::LockRequest and RefreshRequest; krbd's
// rbd_object_map_open):
//
//	NONE ──lock (after the exclusive lock)──▶ LOCKED ──load──▶ LOADED
//	  ▲                                                          │
//	  └───────────── unlock (the exclusive lock is released) ────┘
//
// Only a writer that owns the exclusive lock has one: read-only and
// snapshot opens, images without OBJECT_MAP and Remove (which takes no
// lock) stay in NONE, where updates do nothing.
type omState uint32

const (
	omNone   omState = iota // no map: updates are no-ops
	omLocked                // the map object's own cls lock is ours; the map is not loaded
	omLoaded                // locked and loaded: every data change updates it first
)

// objectMap is the live object map of an image's head, kept in memory
// while the exclusive lock is ours and updated on the OSD before the
// data changes (each update guarded by lock.assert_locked).
type objectMap struct {
	s        store
	id, name string // the image's, for object names and errors

	state atomic.Uint32 // omState; changed under mu

	// busy: an update (mark) holds it shared while it is on the wire,
	// without mu; whoever replaces, resizes or snapshots the whole map
	// takes it exclusively first.
	busy sync.RWMutex

	mu sync.Mutex
	m  *ObjectMap // under mu: the map in LOADED, else nil
	// pending (under mu) has a channel per object whose update is on the
	// wire, closed when it lands.
	pending map[uint64]chan struct{}
}

func (om *objectMap) init(s store, id, name string) { om.s, om.id, om.name = s, id, name }

func (om *objectMap) current() omState { return omState(om.state.Load()) }

// loaded reports whether updates go to the map (LOADED).
func (om *objectMap) loaded() bool { return om.current() == omLoaded }

func (om *objectMap) oid() string { return ObjectMapName(om.id, NoSnap) }

// lock takes the object map object's own exclusive cls lock (name
// rbd_lock, empty cookie and tag), breaking a stale holder's lock — the
// previous lock owner's, which we just superseded on the header — as
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

// unlock forgets the map and drops the map object's lock, if held: NONE.
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

// knownMissing reports whether the loaded map says objno does not exist.
func (om *objectMap) knownMissing(objno uint64) bool {
	if !om.loaded() {
		return false
	}
	om.mu.Lock()
	defer om.mu.Unlock()
	return om.m != nil && om.m.Get(objno) == ObjectNonexistent
}

// get returns objno's state in the loaded map (NONEXISTENT without one).
func (om *objectMap) get(objno uint64) uint8 {
	om.mu.Lock()
	defer om.mu.Unlock()
	if om.m == nil {
		return ObjectNonexistent
	}
	return om.m.Get(objno)
}

// tracked is the number of objects the loaded map covers (0 without one).
func (om *objectMap) tracked() uint64 {
	om.mu.Lock()
	defer om.mu.Unlock()
	if om.m == nil {
		return 0
	}
	return om.m.Len()
}

// mark records state for objno in the map before the data changes (EXISTS
// before a write, PENDING before a delete); each update is guarded by
// lock.assert_locked on the map object, as krbd and librbd do. Without
// fastDiff an EXISTS_CLEAN object needs no update for a write.
//
// Updates of different objects go out concurrently (mu is not held on
// the wire; a global lock there serialised every writer behind each
// update, a third of librbd's sequential write speed); updates of one
// object are ordered: a second one waits for the first to land and
// re-checks.
func (om *objectMap) mark(ctx context.Context, objno uint64, state uint8, fastDiff bool) error {
	if !om.loaded() {
		return nil
	}
	om.busy.RLock()
	defer om.busy.RUnlock()
	for {
		om.mu.Lock()
		if om.m == nil {
			om.mu.Unlock()
			return nil
		}
		cur := om.m.Get(objno)
		if cur == state || (state == ObjectExists && cur == ObjectExistsClean && !fastDiff) {
			om.mu.Unlock()
			return nil
		}
		if wait := om.pending[objno]; wait != nil {
			om.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if om.pending == nil {
			om.pending = make(map[uint64]chan struct{})
		}
		landed := make(chan struct{})
		om.pending[objno] = landed
		om.mu.Unlock()

		err := om.s.write(ctx, om.oid(), opLockedMap("object_map_update", objectMapUpdateArgs(objno, objno+1, state, nil)))

		om.mu.Lock()
		if err == nil && om.m != nil {
			om.m.Set(objno, state)
		}
		delete(om.pending, objno)
		close(landed)
		om.mu.Unlock()
		if err != nil {
			return fmt.Errorf("rbd: %s: object map update of object %d: %w", om.name, objno, err)
		}
		return nil
	}
}

// resize resizes the map object to count objects (new ones NONEXISTENT)
// and the loaded map with it, then runs then (the header's set_size)
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

// snapshot saves the loaded map as snapshot snap's map and marks the
// head's EXISTS objects EXISTS_CLEAN (object_map_snap_add), as
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

// removeSnapshot folds snapshot snap's map into the head's
// (object_map_snap_remove), reloads the head's, and removes the
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

// markSnapshots marks objno in the maps of the snapshots of snapc before
// a copyup that their data will show: EXISTS in the oldest, EXISTS_CLEAN
// in later ones with fast-diff (librbd's C_UpdateObjectMap). Maps that
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

// view is a view of the loaded map for trim, or nil without one.
func (om *objectMap) view() *objectMapView {
	om.mu.Lock()
	defer om.mu.Unlock()
	if om.m == nil {
		return nil
	}
	return &objectMapView{n: om.m.Len(), get: om.get}
}
