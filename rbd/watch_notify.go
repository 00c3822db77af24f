package rbd

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
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
	// 4 … 15 and 18 are maintenance operations (flatten, resize, snap
	// create, …) that a non-owner asks the lock owner to run; we run none
	// of them remotely and answer EOPNOTSUPP, after which librbd asks for
	// the lock and runs the operation itself.
	notifyQuiesce   = 16
	notifyUnquiesce = 17
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

// watchHeader registers the header watch.
func (img *Image) watchHeader(ctx context.Context) error {
	cookie, unwatch, err := img.s.watch(ctx, img.hdr(), img.handleNotify)
	if err != nil {
		return fmt.Errorf("rbd: %s: watching the header: %w", img.name, err)
	}
	img.unwatch, img.watchCookie = unwatch, cookie
	return nil
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
		go img.backgroundRefresh()
		return nil
	case notifyAcquiredLock, notifyReleasedLock:
		img.wakePeerWaiters()
		return nil
	case notifyRequestLock:
		if !img.ownsLock() {
			return nil
		}
		if img.exclusive {
			return ackPayload(-int32(syscall.EROFS))
		}
		go img.releaseForPeer()
		return ackPayload(0)
	case notifyQuiesce, notifyUnquiesce:
		// No I/O of ours needs quiescing for a snapshot to be consistent
		// beyond what the OSDs order; librbd acks 0 without quiesce hooks.
		return ackPayload(0)
	}
	if img.ownsLock() {
		return ackPayload(-int32(syscall.EOPNOTSUPP))
	}
	return nil
}

// backgroundRefresh re-reads the header after a HEADER_UPDATE (refreshes
// run one at a time).
func (img *Image) backgroundRefresh() {
	ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
	defer cancel()
	_ = img.refresh(ctx)
}

// notifyHeaderUpdate tells the other watchers to re-read the header.
func (img *Image) notifyUpdate(ctx context.Context) {
	_, _ = img.s.notify(ctx, img.hdr(), notifyPayload(notifyHeaderUpdate, 0, 0))
}

// peerWaiter returns a channel closed at the next lock announcement.
func (img *Image) peerWaiter() <-chan struct{} {
	img.peerMu.Lock()
	defer img.peerMu.Unlock()
	if img.peerCh == nil {
		img.peerCh = make(chan struct{})
	}
	return img.peerCh
}

func (img *Image) wakePeerWaiters() {
	img.peerMu.Lock()
	defer img.peerMu.Unlock()
	if img.peerCh != nil {
		close(img.peerCh)
		img.peerCh = nil
	}
}
