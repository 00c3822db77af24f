package rbd

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// The header watch: librbd's ImageWatcher protocol on rbd_header.<id>.
// Every opened head (read-only ones too) watches the header so that
// HEADER_UPDATE from other clients (`rbd resize`, `rbd snap create`)
// refreshes it; writers use the same watch for the exclusive lock's
// notifications (exclusive_lock.go).

// Watch-notify op codes of librbd's NotifyMessage (WatchNotifyTypes.h).
const (
	notifyAcquiredLock = 0
	notifyReleasedLock = 1
	notifyRequestLock  = 2
	notifyHeaderUpdate = 3
	// 4 … 17 and 20 are progress reports and maintenance operations
	// (flatten, resize, snap create, …, migrate, sparsify, metadata
	// update) that a non-owner asks the lock owner to run; we run resize,
	// snap create (user and group namespaces) and snap remove
	// (remote_ops.go) and answer the others EOPNOTSUPP, after which
	// librbd asks for the lock and runs the operation itself.
	notifyQuiesce   = 18
	notifyUnquiesce = 19
)

// refreshTimeout bounds the header refresh a notify triggers.
const refreshTimeout = 30 * time.Second

// notifyPayload encodes NotifyMessage v2/c1 { u32 op, payload }; the lock
// ops carry ClientId { u64 gid, u64 handle }, HEADER_UPDATE nothing. A v2
// REQUEST_LOCK has no "force" flag (decoded from v3 on), meaning false.
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

// ackPayload is ResponseMessage { i32 result } (v1/c1).
func ackPayload(result int32) []byte {
	e := encoding.NewEncoder(nil)
	m := e.StructBegin(1, 1)
	e.I32(result)
	e.StructEnd(m)
	return e.B
}

// decodeAck reads a ResponseMessage.
func decodeAck(b []byte) (int32, bool) {
	d := encoding.NewDecoder(b)
	body, _ := d.Struct(1)
	r := body.I32()
	return r, d.Err() == nil
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

// headerWatch is an image's watch on its header and the background work
// its notifies start (header refreshes, lock hand-overs). Close marks it
// closed, so no new work starts, cancels what runs and waits for it.
type headerWatch struct {
	cookie  uint64 // the watch handle (our lock cookie's number); set at Open, then fixed
	unwatch func(context.Context) error

	mu     sync.Mutex // guards closed, and wg.Add against Close's Wait
	closed bool
	wg     sync.WaitGroup
	ctx    context.Context // the background work's; cancelled by Close
	cancel context.CancelFunc
}

// watchHeader registers the header watch.
func (img *Image) watchHeader(ctx context.Context) error {
	w := &img.watch
	w.ctx, w.cancel = context.WithCancel(context.Background())
	cookie, unwatch, err := img.s.watch(ctx, img.hdr(), img.handleNotify)
	if err != nil {
		w.cancel()
		return fmt.Errorf("rbd: %s: watching the header: %w", img.name, err)
	}
	w.unwatch, w.cookie = unwatch, cookie
	return nil
}

// live reports whether the watch is registered and the image not closing.
func (w *headerWatch) live() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cookie != 0 && !w.closed
}

// background runs fn on a goroutine of the image's own, unless the image
// is closing (it reports whether fn runs); Close cancels fn's context and
// waits for it.
func (img *Image) background(fn func(ctx context.Context)) bool {
	w := &img.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.ctx == nil {
		return false
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		fn(w.ctx)
	}()
	return true
}

// handleNotify answers a notify on the header as librbd's ImageWatcher
// does: only the lock owner answers lock requests and operation requests
// (a non-empty answer means "I am the owner"); header updates trigger a
// refresh; lock announcements wake writers waiting for the lock.
func (img *Image) handleNotify(payload []byte) []byte {
	op, ok := decodeNotifyOp(payload)
	if !ok {
		return nil
	}
	switch op {
	case notifyHeaderUpdate:
		img.background(img.backgroundRefresh)
		return nil
	case notifyAcquiredLock, notifyReleasedLock:
		img.lock.wakePeerWaiters()
		return nil
	case notifyRequestLock:
		return img.lock.handleRequest()
	case notifyQuiesce:
		// Answered once quiesced (quiesce.go); each notify has a
		// goroutine of its own, so waiting here holds up nothing else.
		return img.handleQuiesce(img.watch.ctx, payload)
	case notifyUnquiesce:
		return img.handleUnquiesce(payload)
	case notifyAsyncComplete, notifyAsyncProgress:
		if _, _, body, ok := decodeNotify(payload); ok {
			img.asyncDone(op, body)
		}
		return nil
	case notifyResize, notifySnapCreate, notifySnapRemove:
		if v, _, body, ok := decodeNotify(payload); ok {
			return img.handleOperation(v, op, body)
		}
		return nil
	}
	if img.lock.owner() {
		return ackPayload(-int32(syscall.EOPNOTSUPP))
	}
	return nil
}

// watchContext is the context of the image's background work (cancelled
// by Close).
func (img *Image) watchContext() context.Context {
	w := &img.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx == nil {
		return context.Background()
	}
	return w.ctx
}

// backgroundRefresh re-reads the header after a HEADER_UPDATE (refreshes
// run one at a time).
func (img *Image) backgroundRefresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	_ = img.refresh(ctx)
	if fn := img.onUpdate.Load(); fn != nil {
		(*fn)(ctx)
	}
}

// notifyUpdate tells the other watchers to re-read the header.
func (img *Image) notifyUpdate(ctx context.Context) {
	_, _ = img.s.notify(ctx, img.hdr(), notifyPayload(notifyHeaderUpdate, 0, 0))
}

// Watcher is another client's watch on an image's header: a user of the
// image (`rbd status` lists them).
type Watcher struct {
	Entity entity.NumName // client.<global id>
	Cookie uint64         // the watch handle
	Addr   entity.Addr
}

// Watchers lists the other clients watching the image's header, leaving
// out this image's own watch.
func (img *Image) Watchers(ctx context.Context) ([]Watcher, error) {
	ws, err := img.s.listWatchers(ctx, img.hdr())
	if err != nil {
		return nil, fmt.Errorf("rbd: %s: listing watchers: %w", img.name, err)
	}
	self := entity.NumName{Type: entity.TypeClient, Num: int64(img.s.clientID())}
	out := make([]Watcher, 0, len(ws))
	for _, w := range ws {
		if img.watch.cookie != 0 && w.Cookie == img.watch.cookie && w.Entity == self {
			continue
		}
		out = append(out, Watcher(w))
	}
	return out, nil
}
