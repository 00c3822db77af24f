package rbd

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
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
// unlock forgets the map and drops the map object's lock, if held: NONE.
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
// snapshot saves the loaded map as snapshot snap's map and marks the
// head's EXISTS objects EXISTS_CLEAN (object_map_snap_add), as
// removeSnapshot folds snapshot snap's map into the head's
// (object_map_snap_remove), reloads the head's, and removes the
// markSnapshots marks objno in the maps of the snapshots of snapc before
// a copyup that their data will show: EXISTS in the oldest, EXISTS_CLEAN
// in later ones with fast-diff (librbd's C_UpdateObjectMap). Maps that
// view is a view of the loaded map for trim, or nil without one.
func (om *objectMap) view() *objectMapView {
	om.mu.Lock()
	defer om.mu.Unlock()
	if om.m == nil {
		return nil
	}
	return &objectMapView{n: om.m.Len(), get: om.get}
}
