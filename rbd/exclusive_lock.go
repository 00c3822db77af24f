package rbd

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// librbd's exclusive lock (ExclusiveLock, ManagedLock, ImageWatcher): the
// cls lock "rbd_lock" on the header, exclusive, tag "internal", cookie
// "auto <watch handle>". The owner announces ACQUIRED_LOCK and
// RELEASED_LOCK; a writer that finds the lock taken asks the owner with
// REQUEST_LOCK and waits for RELEASED_LOCK (retrying with backoff); an
// owner asked for the lock drains its writes, releases and announces it
// (unless opened Exclusive, which answers EROFS, as krbd "-o exclusive").
// A lock whose owner has no watch on the header any more is dead: the
// owner is blocklisted and the lock broken (BreakRequest).

// Backoff between lock requests while the owner does not release.
const (
	lockRetryMin = 10 * time.Millisecond
	lockRetryMax = time.Second
)

func (img *Image) ownsLock() bool {
	img.ownMu.Lock()
	defer img.ownMu.Unlock()
	return img.cookie != ""
}

func (img *Image) lockCookie() string {
	img.ownMu.Lock()
	defer img.ownMu.Unlock()
	return img.cookie
}

func (img *Image) needsLock() bool {
	img.mu.RLock()
	defer img.mu.RUnlock()
	return !img.readOnly && img.features&FeatureExclusiveLock != 0 // under mu
}

// openLock takes the lock at Open when it is free (or its owner dead).
// With Exclusive a live owner fails the open with ErrBusy; otherwise the
// lock is requested at the first write.
func (img *Image) openLock(ctx context.Context) error {
	img.lockMu.Lock()
	defer img.lockMu.Unlock()
	lc, err := img.tryLock(ctx)
	if err == nil {
		return img.lockAcquired(ctx, lc)
	}
	if errors.Is(err, ErrBusy) && !img.exclusive {
		return nil
	}
	return err
}

// startWrite makes sure we own the exclusive lock (when the image has
// one) and keeps it from being released until done is called: every
// image-changing call runs between startWrite and done.
func (img *Image) startWrite(ctx context.Context) (done func(), err error) {
	if img.readOnly {
		return nil, ErrReadOnly
	}
	for {
		img.ioGate.RLock()
		if !img.needsLock() || img.ownsLock() {
			return img.ioGate.RUnlock, nil
		}
		img.ioGate.RUnlock()
		if err := img.acquire(ctx); err != nil {
			return nil, err
		}
	}
}

// AcquireLock takes the exclusive lock now (librbd's rbd_lock_acquire),
// requesting it from its owner if needed.
func (img *Image) AcquireLock(ctx context.Context) error {
	if img.readOnly {
		return ErrReadOnly
	}
	if !img.needsLock() {
		return nil
	}
	return img.acquire(ctx)
}

// OwnsLock reports whether this client currently owns the exclusive lock.
func (img *Image) OwnsLock() bool { return img.ownsLock() }

// LockStats counts how often this image took the exclusive lock and how
// often it handed it over to another client's request.
func (img *Image) LockStats() (acquired, handedOver uint64) {
	return img.acquired.Load(), img.released.Load()
}

// acquire takes the lock, asking its owner for it: REQUEST_LOCK, then wait
// for a lock announcement or the backoff, and try again, until ctx ends.
// An owner that refuses (EROFS) fails it with ErrBusy at once.
func (img *Image) acquire(ctx context.Context) error {
	img.lockMu.Lock()
	defer img.lockMu.Unlock()
	if img.ownsLock() {
		return nil
	}
	if img.unwatch == nil {
		return fmt.Errorf("%w: image %q has no header watch", ErrInvalid, img.name)
	}
	backoff := lockRetryMin
	for {
		wake := img.peerWaiter()
		lc, err := img.tryLock(ctx)
		if err == nil {
			return img.lockAcquired(ctx, lc)
		}
		if !errors.Is(err, ErrBusy) || img.exclusive {
			return err
		}
		replies, _ := img.s.notify(ctx, img.hdr(), notifyPayload(notifyRequestLock, img.s.clientID(), img.watchCookie))
		for _, r := range replies {
			if res, ok := decodeAck(r); ok && res == -int32(syscall.EROFS) {
				return fmt.Errorf("%w: the owner of image %q's lock will not release it", ErrBusy, img.name)
			}
		}
		t := time.NewTimer(backoff)
		select {
		case <-wake:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: waiting for image %q's exclusive lock: %w", ErrBusy, img.name, ctx.Err())
		}
		t.Stop()
		backoff = min(2*backoff, lockRetryMax)
	}
}

// tryLock takes the header lock once, breaking it first if its owner is
// dead, and returns the cookie it locked with. A live owner gives an
// error matching ErrBusy.
func (img *Image) tryLock(ctx context.Context) (string, error) {
	lc := rbdLockCookie(img.watchCookie)
	lock := opCall(clsLock, "lock", lockArgs(rbdLockName, LockExclusive, lc, rbdLockTag, "", 0, 0))
	err := img.s.write(ctx, img.hdr(), lock)
	if errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EEXIST) {
		var broke bool
		if broke, err = img.breakDeadOwner(ctx); err == nil {
			err = syscall.EBUSY
			if broke {
				err = img.s.write(ctx, img.hdr(), lock)
			}
		}
	}
	if err != nil {
		if errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EEXIST) {
			return "", fmt.Errorf("%w: image %q is locked by another client: %w", ErrBusy, img.name, err)
		}
		return "", fmt.Errorf("rbd: %s: lock: %w", img.name, err)
	}
	return lc, nil
}

// lockAcquired runs after the header lock is ours (librbd's
// PostAcquireRequest): re-read the header, which another owner may have
// changed, take the object map's lock and load the map, then announce it.
// Writers see the lock as ours only after that; on failure the lock is
// given back.
func (img *Image) lockAcquired(ctx context.Context, lc string) error {
	err := img.refresh(ctx)
	if err == nil && img.feat()&FeatureObjectMap != 0 {
		if err = img.lockObjectMap(ctx); err == nil {
			err = img.reloadObjectMap(ctx)
		}
	}
	img.ownMu.Lock()
	img.cookie = lc
	img.ownMu.Unlock()
	if err != nil {
		_ = img.releaseLocked(context.WithoutCancel(ctx))
		return err
	}
	img.acquired.Add(1)
	img.notifyLock(ctx, notifyAcquiredLock)
	return nil
}

func (img *Image) notifyLock(ctx context.Context, op uint32) {
	_, _ = img.s.notify(ctx, img.hdr(), notifyPayload(op, img.s.clientID(), img.watchCookie))
}

// releaseForPeer hands the lock over after a REQUEST_LOCK.
func (img *Image) releaseForPeer() {
	ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
	defer cancel()
	img.lockMu.Lock()
	defer img.lockMu.Unlock()
	if !img.ownsLock() {
		return
	}
	if img.releaseLocked(ctx) == nil {
		img.released.Add(1)
		img.notifyLock(ctx, notifyReleasedLock)
	}
}

// releaseLocked waits for the writes in flight, then drops the object map
// lock and the header lock. lockMu must be held.
func (img *Image) releaseLocked(ctx context.Context) error {
	img.ioGate.Lock()
	defer img.ioGate.Unlock()
	var err error
	img.omMu.Lock()
	if img.omLocked {
		err = img.s.write(ctx, ObjectMapName(img.id, NoSnap), opCall(clsLock, "unlock", unlockArgs(rbdLockName, "")))
		img.omLocked = false
	}
	img.omap = nil
	img.omMu.Unlock()
	img.ownMu.Lock()
	cookie := img.cookie
	img.cookie = ""
	img.ownMu.Unlock()
	if cookie != "" {
		e := img.s.write(ctx, img.hdr(), opCall(clsLock, "unlock", unlockArgs(rbdLockName, cookie)))
		if e != nil && !errors.Is(e, syscall.ENOENT) && err == nil {
			err = fmt.Errorf("rbd: %s: unlock: %w", img.name, e)
		}
	}
	return err
}

// ReleaseLock gives the exclusive lock up now (librbd's rbd_lock_release);
// the next write takes it again.
func (img *Image) ReleaseLock(ctx context.Context) error {
	img.lockMu.Lock()
	defer img.lockMu.Unlock()
	if !img.ownsLock() {
		return nil
	}
	err := img.releaseLocked(ctx)
	if err == nil {
		img.notifyLock(ctx, notifyReleasedLock)
	}
	return err
}

// Close releases the exclusive lock and the header watch, if held.
func (img *Image) Close(ctx context.Context) error {
	err := img.ReleaseLock(ctx)
	if img.unwatch != nil {
		if e := img.unwatch(ctx); err == nil {
			err = e
		}
		img.unwatch = nil
	}
	return err
}

// breakDeadOwner breaks the header lock when its owner is dead: no watch
// on the header from the owner's address with the owner's watch handle
// (the number in its "auto <handle>" cookie). The owner is blocklisted
// first (`osd blocklist add`), so it cannot write after we take over
// (librbd's BreakRequest, krbd's rbd_try_lock). It reports whether the
// lock is gone. An owner OpenOptions.DeadClients names is dead whatever
// its watch says.
func (img *Image) breakDeadOwner(ctx context.Context) (bool, error) {
	out, err := img.s.call(ctx, img.hdr(), clsLock, "get_info", getLockInfoArgs(rbdLockName))
	if err != nil {
		return false, fmt.Errorf("rbd: %s: lock info: %w", img.name, err)
	}
	li, err := decodeLockInfo(out)
	if err != nil {
		return false, err
	}
	if len(li.Lockers) == 0 {
		return true, nil // released meanwhile: just retry
	}
	ws, err := img.s.listWatchers(ctx, img.hdr())
	if err != nil {
		return false, fmt.Errorf("rbd: %s: listing watchers: %w", img.name, err)
	}
	for _, l := range li.Lockers {
		if img.deadClients != nil && img.deadClients(l.Entity) {
			continue // the caller vouches for it: no need to wait for its watch
		}
		var handle uint64
		fmt.Sscanf(l.Cookie, "auto %d", &handle)
		for _, w := range ws {
			if w.Addr.IP == l.Addr.IP && w.Addr.Nonce == l.Addr.Nonce && (handle == 0 || w.Cookie == handle) {
				return false, nil // alive
			}
		}
	}
	for _, l := range li.Lockers {
		if err := blocklist(ctx, img.s, l.Addr); err != nil {
			return false, fmt.Errorf("rbd: %s: blocklisting dead lock owner %v (%v): %w", img.name, l.Entity, l.Addr, err)
		}
		err := img.s.write(ctx, img.hdr(), opCall(clsLock, "break_lock", breakLockArgs(rbdLockName, l.Entity, l.Cookie)))
		if err != nil && !errors.Is(err, syscall.ENOENT) {
			return false, fmt.Errorf("rbd: %s: breaking the lock of %v: %w", img.name, l.Entity, err)
		}
	}
	return true, nil
}

// lockObjectMap takes the object map object's own exclusive cls lock
// (name rbd_lock, empty cookie and tag), breaking a stale holder's lock —
// the previous lock owner's, which we just superseded on the header — as
// librbd's object_map::LockRequest and krbd's rbd_object_map_lock do.
func (img *Image) lockObjectMap(ctx context.Context) error {
	oid := ObjectMapName(img.id, NoSnap)
	lock := opCall(clsLock, "lock", lockArgs(rbdLockName, LockExclusive, "", "", "", 0, 0))
	err := img.s.write(ctx, oid, lock)
	if errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EEXIST) {
		out, gerr := img.s.call(ctx, oid, clsLock, "get_info", getLockInfoArgs(rbdLockName))
		if gerr != nil {
			return fmt.Errorf("rbd: %s: object map lock info: %w", img.name, gerr)
		}
		li, derr := decodeLockInfo(out)
		if derr != nil {
			return derr
		}
		for _, l := range li.Lockers {
			berr := img.s.write(ctx, oid, opCall(clsLock, "break_lock", breakLockArgs(rbdLockName, l.Entity, l.Cookie)))
			if berr != nil && !errors.Is(berr, syscall.ENOENT) {
				return fmt.Errorf("rbd: %s: breaking object map lock of %v: %w", img.name, l.Entity, berr)
			}
		}
		err = img.s.write(ctx, oid, lock)
	}
	if err != nil {
		return fmt.Errorf("rbd: %s: locking the object map: %w", img.name, err)
	}
	img.omMu.Lock()
	img.omLocked = true
	img.omMu.Unlock()
	return nil
}

// blocklist fences a client address cluster-wide (`osd blocklist add`),
// so a dead lock owner can be broken safely. The address is
// "ip:port/nonce", the form the command parses. Pacific renamed the
// command; older monitors only know "osd blacklist".
func blocklist(ctx context.Context, s store, a entity.Addr) error {
	addr := fmt.Sprintf("%s/%d", a.IP, a.Nonce)
	_, err := s.monCommand(ctx, map[string]string{"prefix": "osd blocklist", "blocklistop": "add", "addr": addr})
	if errors.Is(err, syscall.EINVAL) {
		_, err = s.monCommand(ctx, map[string]string{"prefix": "osd blacklist", "blacklistop": "add", "addr": addr})
	}
	return err
}
