package rbd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados"
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

// lockState is where this client stands with the header's exclusive lock,
// written down as krbd does (RBD_LOCK_STATE_*), with librbd's
// post-acquire step (PostAcquireRequest) as a state of its own:
//
//	UNLOCKED ──lock taken──▶ ACQUIRING ──header refreshed, object map loaded──▶ LOCKED
//	    ▲                        │ failure                                      │ release: ours,
//	    │                        ▼                                              │ a peer's REQUEST_LOCK,
//	    └──── locks dropped ── RELEASING ◀─────────────────────────────────────┘ or Close
//
// Writers pass the gate only in LOCKED. Another client's REQUEST_LOCK is
// answered as the owner in LOCKED and RELEASING.
type lockState uint32

const (
	lockUnlocked  lockState = iota // we hold no header lock
	lockAcquiring                  // the header lock is ours; refreshing the header, locking and loading the object map
	lockLocked                     // ours and ready: writes run
	lockReleasing                  // draining writes, then dropping the object map and header locks
)

// exclusiveLock is an image's exclusive lock: its state, the gate writers
// pass, and the protocol (request, hand-over, break of a dead owner).
type exclusiveLock struct {
	img         *Image // the image it guards (set by newImage)
	exclusive   bool   // OpenOptions.Exclusive: never hand the lock over
	deadClients func(entity.NumName) bool

	mu     sync.Mutex    // serialises transitions; held across the wire
	cookie string        // under mu: the cookie we hold the header lock with, "" when none
	state  atomic.Uint32 // lockState; changed under mu, and out of LOCKED only with gate held exclusively
	gate   sync.RWMutex  // writes hold it shared; a release takes it exclusively to drain them
	// endWrite is gate.RUnlock bound once (by newImage): startWrite hands
	// it out without allocating a method value per write.
	endWrite func()

	// announced is closed once the last ACQUIRED_LOCK notify is done
	// (nil: none sent); under mu. It goes out in the background, as
	// librbd's does: a watcher that died without closing its watch
	// would hold a synchronous one for the notify timeout (5 s) before
	// the first write. RELEASED_LOCK waits for it, so that peers never see
	// the two out of order.
	announced chan struct{}

	peerMu sync.Mutex
	peerCh chan struct{} // closed on the next ACQUIRED/RELEASED notify

	acquired atomic.Uint64 // times we took the lock
	released atomic.Uint64 // times we handed it over on request
}

func (l *exclusiveLock) current() lockState { return lockState(l.state.Load()) }

// owner reports whether we hold the lock as far as other clients are
// concerned (answering their requests).
func (l *exclusiveLock) owner() bool {
	s := l.current()
	return s == lockLocked || s == lockReleasing
}

// needed reports whether writes need the lock: a writable image with the
// EXCLUSIVE_LOCK feature.
func (l *exclusiveLock) needed() bool {
	return !l.img.readOnly && l.img.feat()&FeatureExclusiveLock != 0
}

// open takes the lock at Open when it is free (or its owner dead). With
// Exclusive a live owner fails the open with ErrBusy; otherwise the lock
// is requested at the first write.
func (l *exclusiveLock) open(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	lc, err := l.tryLock(ctx)
	if err == nil {
		return l.postAcquire(ctx, lc)
	}
	if errors.Is(err, ErrBusy) && !l.exclusive {
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
	l := &img.lock
	for {
		l.gate.RLock()
		if l.current() == lockLocked || !l.needed() {
			return l.endWrite, nil
		}
		l.gate.RUnlock()
		if err := l.acquire(ctx); err != nil {
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
	if !img.lock.needed() {
		return nil
	}
	return img.lock.acquire(ctx)
}

// OwnsLock reports whether this client currently owns the exclusive lock.
func (img *Image) OwnsLock() bool { return img.lock.owner() }

// LockStats counts how often this image took the exclusive lock and how
// often it handed it over to another client's request.
func (img *Image) LockStats() (acquired, handedOver uint64) {
	return img.lock.acquired.Load(), img.lock.released.Load()
}

// ReleaseLock gives the exclusive lock up now (librbd's rbd_lock_release);
// the next write takes it again.
func (img *Image) ReleaseLock(ctx context.Context) error { return img.lock.release(ctx) }

// acquire takes the lock, asking its owner for it: REQUEST_LOCK, then wait
// for a lock announcement or the backoff, and try again, until ctx ends.
// An owner that refuses (EROFS) fails it with ErrBusy at once.
func (l *exclusiveLock) acquire(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.current() == lockLocked {
		return nil
	}
	img := l.img
	if !img.watch.live() {
		return fmt.Errorf("%w: image %q has no header watch", ErrInvalid, img.name)
	}
	backoff := lockRetryMin
	for {
		wake := l.peerWaiter()
		lc, err := l.tryLock(ctx)
		if err == nil {
			return l.postAcquire(ctx, lc)
		}
		if !errors.Is(err, ErrBusy) || l.exclusive {
			return err
		}
		if l.requestRefused(ctx) {
			return fmt.Errorf("%w: %w: the owner of image %q's lock will not release it", ErrBusy, errOwnerRefuses, img.name)
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

// requestRefused sends REQUEST_LOCK and reports whether the owner refused
// (EROFS: it holds the lock exclusively).
func (l *exclusiveLock) requestRefused(ctx context.Context) bool {
	img := l.img
	replies, _ := img.s.notify(ctx, img.hdr(), notifyPayload(notifyRequestLock, img.s.clientID(), img.watch.cookie))
	for _, r := range replies {
		if res, ok := decodeAck(r); ok && res == -int32(syscall.EROFS) {
			return true
		}
	}
	return false
}

// tryLock takes the header lock once, breaking it first if its owner is
// dead, and returns the cookie it locked with. A live owner gives an
// error matching ErrBusy.
func (l *exclusiveLock) tryLock(ctx context.Context) (string, error) {
	img := l.img
	lc := rbdLockCookie(img.watch.cookie)
	lock := opCall(clsLock, "lock", lockArgs(rbdLockName, LockExclusive, lc, rbdLockTag, "", 0, 0))
	err := img.s.write(ctx, img.hdr(), lock)
	var holder *Locker
	if errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EEXIST) {
		var broke bool
		if broke, holder, err = l.breakDeadOwner(ctx); err == nil {
			err = syscall.EBUSY
			if broke {
				err = img.s.write(ctx, img.hdr(), lock)
			}
		}
	}
	if err != nil {
		if errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EEXIST) {
			le := &LockedError{Image: img.name, Err: err}
			if holder != nil {
				le.Owner, le.Addr = holder.Entity, holder.Addr
			}
			return "", le
		}
		return "", fmt.Errorf("rbd: %s: lock: %w", img.name, err)
	}
	return lc, nil
}

// LockedError says another live client holds an image's exclusive lock,
// and which one (the zero Owner when it could not be read, e.g. the lock
// changed hands meanwhile). It matches ErrBusy.
type LockedError struct {
	Image string
	Owner entity.NumName // client.<global id>
	Addr  entity.Addr    // the owner's address, as `rbd lock ls` shows it
	Err   error          // the cluster's answer (EBUSY)
}

func (e *LockedError) Error() string {
	if e.Owner.Num == 0 && e.Owner.Type == 0 {
		return fmt.Sprintf("rbd: image %q is locked by another client", e.Image)
	}
	return fmt.Sprintf("rbd: image %q is locked by %v at %v", e.Image, e.Owner, e.Addr)
}

// Is matches ErrBusy.
func (e *LockedError) Is(t error) bool { return t == ErrBusy }

func (e *LockedError) Unwrap() error { return e.Err }

// postAcquire runs once the header lock is ours (librbd's
// PostAcquireRequest), in ACQUIRING: re-read the header, which another
// owner may have changed, take the object map's lock and load the map,
// then announce it. Writers see the lock as ours (LOCKED) only after
// that; on failure the lock is given back. mu must be held.
func (l *exclusiveLock) postAcquire(ctx context.Context, lc string) error {
	img := l.img
	l.cookie = lc
	l.state.Store(uint32(lockAcquiring))
	err := img.refresh(ctx)
	if err == nil && img.feat()&FeatureObjectMap != 0 {
		if err = img.om.lock(ctx); err == nil {
			err = img.om.load(ctx)
		}
	}
	if err != nil {
		_ = l.releaseLocked(context.WithoutCancel(ctx))
		return err
	}
	l.state.Store(uint32(lockLocked))
	l.acquired.Add(1)
	done := make(chan struct{})
	l.announced = done
	if !img.background(func(ctx context.Context) {
		defer close(done)
		l.announce(ctx, notifyAcquiredLock)
	}) {
		close(done)
	}
	return nil
}

// announceReleased tells the other watchers we released the lock, after
// the ACQUIRED_LOCK notify in flight, if any. mu must be held.
func (l *exclusiveLock) announceReleased(ctx context.Context) {
	if l.announced != nil {
		select {
		case <-l.announced:
		case <-ctx.Done():
		}
	}
	l.announce(ctx, notifyReleasedLock)
}

// announce tells the other watchers we took or released the lock.
func (l *exclusiveLock) announce(ctx context.Context, op uint32) {
	img := l.img
	_, _ = img.s.notify(ctx, img.hdr(), notifyPayload(op, img.s.clientID(), img.watch.cookie))
}

// handleRequest answers another client's REQUEST_LOCK: nothing unless we
// own the lock; EROFS when we keep it (Exclusive); otherwise 0, and the
// lock is handed over in the background.
func (l *exclusiveLock) handleRequest() []byte {
	if !l.owner() {
		return nil
	}
	if l.exclusive {
		return ackPayload(-int32(syscall.EROFS))
	}
	l.img.background(l.releaseForPeer)
	return ackPayload(0)
}

// releaseForPeer hands the lock over after a REQUEST_LOCK.
func (l *exclusiveLock) releaseForPeer(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.current() != lockLocked {
		return
	}
	if l.releaseLocked(ctx) == nil {
		l.released.Add(1)
		l.announceReleased(ctx)
	}
}

// release gives the lock up (ReleaseLock, Close) and announces it.
func (l *exclusiveLock) release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.current() != lockLocked {
		return nil
	}
	err := l.releaseLocked(ctx)
	if err == nil {
		l.announceReleased(ctx)
	}
	return err
}

// releaseLocked goes through RELEASING to UNLOCKED: it waits for the
// writes in flight, then drops the object map lock and the header lock.
// mu must be held.
func (l *exclusiveLock) releaseLocked(ctx context.Context) error {
	img := l.img
	l.state.Store(uint32(lockReleasing))
	l.gate.Lock()
	defer l.gate.Unlock()
	err := img.om.unlock(ctx)
	cookie := l.cookie
	l.cookie = ""
	l.state.Store(uint32(lockUnlocked))
	if cookie != "" {
		e := img.s.write(ctx, img.hdr(), opCall(clsLock, "unlock", unlockArgs(rbdLockName, cookie)))
		if e != nil && !errors.Is(e, syscall.ENOENT) && err == nil {
			err = fmt.Errorf("rbd: %s: unlock: %w", img.name, e)
		}
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
func (l *exclusiveLock) breakDeadOwner(ctx context.Context) (broke bool, alive *Locker, err error) {
	img := l.img
	li, err := lockInfo(ctx, img.s, img.hdr())
	if err != nil {
		return false, nil, fmt.Errorf("rbd: %s: lock info: %w", img.name, err)
	}
	if len(li.Lockers) == 0 {
		return true, nil, nil // released meanwhile: just retry
	}
	// Owners the caller vouches for are dead whatever their watches say;
	// the watchers are listed only for the others (a restarted plugin
	// taking its own lock back saves the round trip).
	var (
		ws     []watcher
		listed bool
	)
	for _, lk := range li.Lockers {
		if l.deadClients != nil && l.deadClients(lk.Entity) {
			continue
		}
		if !listed {
			listed = true
			if ws, err = img.s.listWatchers(ctx, img.hdr()); err != nil {
				return false, nil, fmt.Errorf("rbd: %s: listing watchers: %w", img.name, err)
			}
		}
		var handle uint64
		fmt.Sscanf(lk.Cookie, "auto %d", &handle)
		for _, w := range ws {
			if w.Addr.IP == lk.Addr.IP && w.Addr.Nonce == lk.Addr.Nonce && (handle == 0 || w.Cookie == handle) {
				return false, &lk, nil // alive
			}
		}
	}
	for _, lk := range li.Lockers {
		if err := blocklist(ctx, img.s, lk.Addr); err != nil {
			return false, nil, fmt.Errorf("rbd: %s: blocklisting dead lock owner %v (%v): %w", img.name, lk.Entity, lk.Addr, err)
		}
		if err := breakLock(ctx, img.s, img.hdr(), lk); err != nil {
			return false, nil, fmt.Errorf("rbd: %s: breaking the lock of %v: %w", img.name, lk.Entity, err)
		}
	}
	return true, nil, nil
}

// lockInfo reads the rbd_lock lock of object oid (cls_lock get_info).
func lockInfo(ctx context.Context, s store, oid string) (LockInfo, error) {
	out, err := s.call(ctx, oid, clsLock, "get_info", getLockInfoArgs(rbdLockName))
	if err != nil {
		return LockInfo{}, err
	}
	return decodeLockInfo(out)
}

// breakLock breaks one holder's rbd_lock lock of object oid; one gone
// already is not an error.
func breakLock(ctx context.Context, s store, oid string, lk Locker) error {
	err := s.write(ctx, oid, opCall(clsLock, "break_lock", breakLockArgs(rbdLockName, lk.Entity, lk.Cookie)))
	if errors.Is(err, syscall.ENOENT) {
		return nil
	}
	return err
}

// blocklist fences a client address cluster-wide (`osd blocklist add`),
// so a dead lock owner can be broken safely. The address is
// "ip:port/nonce", the form the command parses. Pacific renamed the
// command; older monitors only know "osd blacklist".
//
// It then waits for the OSDMap that carries the entry (librbd's
// BreakRequest does the same), so this client's next ops reach the OSDs
// with a map in which the old owner is fenced.
func blocklist(ctx context.Context, s store, a entity.Addr) error {
	addr := fmt.Sprintf("%s/%d", a.IP, a.Nonce)
	_, err := s.monCommand(ctx, map[string]string{"prefix": "osd blocklist", "blocklistop": "add", "addr": addr})
	if errors.Is(err, syscall.EINVAL) {
		_, err = s.monCommand(ctx, map[string]string{"prefix": "osd blacklist", "blacklistop": "add", "addr": addr})
	}
	if err != nil {
		return err
	}
	return s.waitLatestMap(ctx)
}

// Blocklist fences a client's address cluster-wide (`ceph osd blocklist
// add`, the monitors' default expiry) and waits until this connection
// has the OSDMap that carries it: from then on the OSDs refuse the
// client's ops (ESHUTDOWN, EBLOCKLISTED) and drop its watches. Callers
// use it to fence a client they found watching an image that has no
// exclusive lock to break; the lock itself fences its dead owners alone.
func Blocklist(ctx context.Context, io *rados.IOContext, a entity.Addr) error {
	if err := blocklist(ctx, newRadosStore(io), a); err != nil {
		return fmt.Errorf("rbd: blocklisting %v: %w", a, err)
	}
	return nil
}

// peerWaiter returns a channel closed at the next lock announcement.
func (l *exclusiveLock) peerWaiter() <-chan struct{} {
	l.peerMu.Lock()
	defer l.peerMu.Unlock()
	if l.peerCh == nil {
		l.peerCh = make(chan struct{})
	}
	return l.peerCh
}

// wakePeerWaiters wakes the writers waiting for another client's
// ACQUIRED_LOCK or RELEASED_LOCK.
func (l *exclusiveLock) wakePeerWaiters() {
	l.peerMu.Lock()
	defer l.peerMu.Unlock()
	if l.peerCh != nil {
		close(l.peerCh)
		l.peerCh = nil
	}
}
