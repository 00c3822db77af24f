package rbd

import (
	"context"
	"sync"
	"sync/atomic"
)

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
//   - quiesce: the QuiesceHooks and the holds other clients' snapshots
//     asked for (quiesce.go); Close ends the holds.
//
// Lock order: a lock is taken only while holding none below it.
//
//	lock.mu     exclusive lock transitions (acquire, release, hand-over); held across the wire
//	lock.gate   RW: every write holds it shared from start to end; a release exclusively, to drain writes
//	om.busy     RW: an object map update holds it shared on the wire; whole-map changes exclusively
//	refreshMu   one header refresh at a time; held across the wire (a clone's parent is another
//	            Image, refreshed under the child's refreshMu)
//	leaves      om.mu, lock.peerMu, watch.mu, quiesce.mu, remote.mu: short, never across the wire, nothing taken under them
//
// quiesce.run (one quiesce hook call at a time) is taken with none of
// these held, and the hooks may do I/O through the image.
type Image struct {
	s        store // metadata pool
	name, id string
	readOnly bool
	snapID   uint64 // NoSnap for the head

	st        atomic.Pointer[imageState]
	refreshMu sync.Mutex

	lock    exclusiveLock
	om      objectMap
	watch   headerWatch
	quiesce quiesceState // the hooks and holds of other clients' snapshots (quiesce.go)
	remote  remoteOps    // operation requests through the lock owner (remote_ops.go)

	onUpdate atomic.Pointer[func(context.Context)] // see OnHeaderUpdate
}

// newImage returns an image not yet refreshed.
func newImage(s store, name, id string, readOnly bool) *Image {
	img := &Image{s: s, name: name, id: id, readOnly: readOnly, snapID: NoSnap}
	img.lock.img = img
	img.lock.endWrite = img.lock.gate.RUnlock
	img.om.init(s, id, name)
	return img
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

// OnHeaderUpdate sets fn to run after each header refresh a HEADER_UPDATE
// notify starts (another client's `rbd resize`, `rbd snap create`, `rbd
// config image set`, `rbd image-meta set`, or our own SetMetadata), even
// when the refresh failed. It runs on the image's background goroutines,
// with a context Close cancels (Close waits for it), concurrently for
// notifies that come close together; it must not call Close. nil
// removes it.
func (img *Image) OnHeaderUpdate(fn func(ctx context.Context)) {
	if fn == nil {
		img.onUpdate.Store(nil)
		return
	}
	img.onUpdate.Store(&fn)
}

// Close releases the exclusive lock and the header watch, if held, and
// stops and waits for the background work the watch started.
func (img *Image) Close(ctx context.Context) error {
	w := &img.watch
	w.mu.Lock()
	w.closed = true // no new background work from here on
	w.mu.Unlock()
	err := img.lock.release(ctx)
	if w.cancel != nil {
		w.cancel() // before unwatch, which waits for the notify handlers: a quiesce in progress gives up
	}
	if w.unwatch != nil {
		if e := w.unwatch(ctx); err == nil {
			err = e
		}
		w.unwatch = nil
	}
	w.wg.Wait()
	img.closeQuiesce()
	return err
}
