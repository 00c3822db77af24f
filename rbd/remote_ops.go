package rbd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// Maintenance operations through the lock owner (librbd's ImageWatcher
// operation requests). Resize, snapshot create and snapshot remove need
// the exclusive lock. When its owner keeps it (OpenOptions.Exclusive:
// krbd "-o exclusive", a node plugin holding a volume alone) a client
// that needs such an operation asks the owner to run it instead:
//
//	requester                         owner
//	RESIZE, SNAP_CREATE, SNAP_REMOVE ─▶ acks 0 (accepted), runs it
//	{request id, args}             ◀─ ASYNC_COMPLETE {request id, result}
//
// (NotifyMessage v7; testdata/<release>/notify holds what each release's
// librbd sends.) An older librbd sent SNAP_REMOVE without a request id and
// waited for the result in the ack, in the same message version; the
// owner tells the two apart by what follows the snapshot namespace and
// answers each its way. Our requests carry the id. The
// request id {client gid, watch handle, counter} makes a repeated request
// (a requester's retry) run once: the owner remembers the requests it
// runs and, for a while, their results. A requester waits for the
// completion no longer than asyncRequestTimeout after the last sign of
// progress (librbd's rbd_request_timed_out_seconds).
//
// The owner side also serves librbd: `rbd resize` or `rbd snap create` of
// an image a client holds Exclusive send these requests first.

// Watch-notify op codes of the operation requests.
const (
	notifyAsyncProgress = 4
	notifyAsyncComplete = 5
	notifyResize        = 7
	notifySnapCreate    = 8
	notifySnapRemove    = 9
)

// notifyRequestVersion is the NotifyMessage version of our requests.
const notifyRequestVersion = 7

const (
	asyncRequestTimeout = 30 * time.Second
	// asyncResultKeep is how long an owner remembers a finished request's
	// result for a requester's retry.
	asyncResultKeep = 10 * time.Minute
)

// errOwnerRefuses: another client owns the exclusive lock and keeps it
// (it answered our REQUEST_LOCK with EROFS). It matches ErrBusy.
var errOwnerRefuses = errors.New("the owner keeps the exclusive lock")

// asyncRequestID is librbd's AsyncRequestId { ClientId { u64 gid, u64
// handle }, u64 request_id }.
type asyncRequestID struct {
	gid, handle, id uint64
}

func (r asyncRequestID) encode(e *encoding.Encoder) {
	e.U64(r.gid)
	e.U64(r.handle)
	e.U64(r.id)
}

func decodeAsyncRequestID(d *encoding.Decoder) asyncRequestID {
	return asyncRequestID{gid: d.U64(), handle: d.U64(), id: d.U64()}
}

// remoteOps is an image's share of the protocol: the requests it waits
// for as a requester and those it runs as the owner. mu is a leaf lock.
type remoteOps struct {
	mu      sync.Mutex
	next    uint64
	waiting map[asyncRequestID]*remoteWait // our requests in flight
	running map[asyncRequestID]bool        // requests we run for others
	results map[asyncRequestID]remoteResult
}

type remoteWait struct {
	done     chan int32    // the owner's result
	progress chan struct{} // a sign of life (ASYNC_PROGRESS)
}

type remoteResult struct {
	r  int32
	at time.Time
}

// remoteMessage encodes NotifyMessage v7 { u32 op, body }.
func remoteMessage(op uint32, body func(e *encoding.Encoder)) []byte {
	e := encoding.NewEncoder(nil)
	m := e.StructBegin(notifyRequestVersion, 1)
	e.U32(op)
	body(e)
	e.StructEnd(m)
	return e.B
}

// decodeNotify splits a NotifyMessage into its version, op and body.
func decodeNotify(b []byte) (version uint8, op uint32, body *encoding.Decoder, ok bool) {
	d := encoding.NewDecoder(b)
	body, h := d.Struct(1)
	op = body.U32()
	return h.Version, op, body, d.Err() == nil
}

// errnoOf is the negative errno an operation's error answers with.
func errnoOf(err error) int32 {
	var en syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrExists):
		return -int32(syscall.EEXIST)
	case errors.Is(err, ErrNotFound):
		return -int32(syscall.ENOENT)
	case errors.Is(err, ErrBusy):
		return -int32(syscall.EBUSY)
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrUnsupportedFeature):
		return -int32(syscall.EINVAL)
	case errors.Is(err, ErrReadOnly):
		return -int32(syscall.EROFS)
	case errors.As(err, &en):
		return -int32(en)
	}
	return -int32(syscall.EIO)
}

// remoteErr turns an owner's result back into this package's errors.
func remoteErr(what string, r int32) error {
	if r >= 0 {
		return nil
	}
	en := syscall.Errno(-r)
	switch en {
	case syscall.EEXIST:
		return fmt.Errorf("%w: %s by the lock owner: %w", ErrExists, what, en)
	case syscall.ENOENT:
		return fmt.Errorf("%w: %s by the lock owner: %w", ErrNotFound, what, en)
	case syscall.EBUSY:
		return fmt.Errorf("%w: %s by the lock owner: %w", ErrBusy, what, en)
	case syscall.EINVAL:
		return fmt.Errorf("%w: %s by the lock owner: %w", ErrInvalid, what, en)
	}
	return fmt.Errorf("rbd: %s by the lock owner: %w", what, en)
}

// --- requester ---

// remoteRequest asks the lock owner to run an operation and waits for
// its result: op's body is written by body (which gets the request id
// for an async request); async requests complete with ASYNC_COMPLETE.
func (img *Image) remoteRequest(ctx context.Context, what string, op uint32, async bool, body func(e *encoding.Encoder, id asyncRequestID)) error {
	if img.watch.cookie == 0 {
		return fmt.Errorf("%w: image %q has no header watch to hear the owner", ErrInvalid, img.name)
	}
	ro := &img.remote
	ro.mu.Lock()
	ro.next++
	id := asyncRequestID{gid: img.s.clientID(), handle: img.watch.cookie, id: ro.next}
	var w *remoteWait
	if async {
		w = &remoteWait{done: make(chan int32, 1), progress: make(chan struct{}, 1)}
		if ro.waiting == nil {
			ro.waiting = map[asyncRequestID]*remoteWait{}
		}
		ro.waiting[id] = w
	}
	ro.mu.Unlock()
	if async {
		defer func() {
			ro.mu.Lock()
			delete(ro.waiting, id)
			ro.mu.Unlock()
		}()
	}
	replies, err := img.s.notify(ctx, img.hdr(), remoteMessage(op, func(e *encoding.Encoder) { body(e, id) }))
	if err != nil && len(replies) == 0 {
		return fmt.Errorf("rbd: %s: %s through the lock owner: %w", img.name, what, err)
	}
	var acks []int32
	for _, b := range replies {
		if r, ok := decodeAck(b); ok {
			acks = append(acks, r)
		}
	}
	switch {
	case len(acks) == 0:
		return fmt.Errorf("%w: %s: no lock owner answered (the lock changed hands?)", ErrBusy, what)
	case len(acks) > 1:
		return fmt.Errorf("rbd: %s: %s: %d clients answered as the lock owner", img.name, what, len(acks))
	case acks[0] < 0 || !async:
		return remoteErr(what, acks[0])
	}
	t := time.NewTimer(asyncRequestTimeout)
	defer t.Stop()
	for {
		select {
		case r := <-w.done:
			return remoteErr(what, r)
		case <-w.progress:
			t.Reset(asyncRequestTimeout)
		case <-t.C:
			return fmt.Errorf("rbd: %s: %s: the lock owner did not finish within %v: %w", img.name, what, asyncRequestTimeout, syscall.ETIMEDOUT)
		case <-ctx.Done():
			return fmt.Errorf("rbd: %s: %s: waiting for the lock owner: %w", img.name, what, ctx.Err())
		}
	}
}

// asyncDone handles ASYNC_COMPLETE and ASYNC_PROGRESS for our requests.
func (img *Image) asyncDone(op uint32, body *encoding.Decoder) {
	id := decodeAsyncRequestID(body)
	var r int32
	if op == notifyAsyncComplete {
		r = body.I32()
	}
	if body.Err() != nil {
		return
	}
	ro := &img.remote
	ro.mu.Lock()
	w := ro.waiting[id]
	ro.mu.Unlock()
	if w == nil {
		return
	}
	ch := w.progress
	if op == notifyAsyncComplete {
		select {
		case w.done <- r:
		default:
		}
		return
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (img *Image) remoteResize(ctx context.Context, size uint64) error {
	err := img.remoteRequest(ctx, fmt.Sprintf("resize to %d", size), notifyResize, true, func(e *encoding.Encoder, id asyncRequestID) {
		e.U64(size)
		id.encode(e)
		e.Bool(true) // allow_shrink, as Resize
	})
	if err != nil {
		return err
	}
	return img.refresh(ctx)
}

// remoteSnapCreate asks the owner for snapshot name in namespace ns. The
// users were quiesced already (snapshotWith), as librbd's group snapshot
// does before it asks: the owner is told to skip that.
func (img *Image) remoteSnapCreate(ctx context.Context, name string, ns SnapshotNamespace) (uint64, error) {
	err := img.remoteRequest(ctx, fmt.Sprintf("snapshot %q create", name), notifySnapCreate, true, func(e *encoding.Encoder, id asyncRequestID) {
		e.String(name)
		encodeSnapshotNamespace(e, ns)
		id.encode(e)
		e.U64(snapCreateSkipNotifyQuiesce) // flags
	})
	if err != nil {
		return 0, err
	}
	if err := img.refresh(ctx); err != nil {
		return 0, err
	}
	for _, si := range img.state().snaps {
		if si.Name == name && si.Namespace.Type == ns.Type {
			return si.ID, nil
		}
	}
	return 0, fmt.Errorf("%w: snapshot %q of image %q after the owner took it", ErrNotFound, name, img.name)
}

// librbd's SNAP_CREATE flags.
const (
	snapCreateSkipNotifyQuiesce   = 1 << 1
	snapCreateIgnoreQuiesceErrors = 1 << 2
)

func (img *Image) remoteSnapRemove(ctx context.Context, si SnapshotInfo) error {
	err := img.remoteRequest(ctx, fmt.Sprintf("snapshot %q remove", si.Name), notifySnapRemove, true, func(e *encoding.Encoder, id asyncRequestID) {
		e.String(si.Name)
		encodeSnapshotNamespace(e, si.Namespace)
		id.encode(e)
	})
	if err != nil {
		return err
	}
	return img.refresh(ctx)
}

// --- owner ---

// opRequest is a decoded operation request.
type opRequest struct {
	op     uint32
	async  bool // id is set: answer with ASYNC_COMPLETE
	id     asyncRequestID
	size   uint64 // RESIZE
	shrink bool   // RESIZE: allow_shrink
	name   string // SNAP_*
	ns     SnapshotNamespace
	flags  uint64 // SNAP_CREATE
}

// decodeOperation reads the body of RESIZE, SNAP_CREATE or SNAP_REMOVE
// of NotifyMessage version v.
func decodeOperation(v uint8, op uint32, body *encoding.Decoder) (opRequest, error) {
	r := opRequest{op: op}
	switch op {
	case notifyResize: // u64 size, AsyncRequestId, bool allow_shrink (v4+)
		r.size = body.U64()
		r.id, r.async = decodeAsyncRequestID(body), true
		r.shrink = true
		if v >= 4 {
			r.shrink = body.Bool()
		}
	case notifySnapCreate: // string name, SnapshotNamespace (v5+), AsyncRequestId and u64 flags (v7+)
		r.name = body.String()
		if v >= 5 {
			r.ns = decodeSnapshotNamespace(body)
		}
		if v < 7 {
			return r, fmt.Errorf("%w: SNAP_CREATE v%d has no request id", ErrInvalid, v)
		}
		r.id, r.async = decodeAsyncRequestID(body), true
		r.flags = body.U64()
	case notifySnapRemove: // string name, SnapshotNamespace (v6+), AsyncRequestId (Reef+)
		r.name = body.String()
		if v >= 6 {
			r.ns = decodeSnapshotNamespace(body)
		}
		if body.Err() == nil && body.Len() >= 24 {
			r.id, r.async = decodeAsyncRequestID(body), true
		}
	default:
		return r, fmt.Errorf("%w: operation %d", ErrInvalid, op)
	}
	if err := body.Err(); err != nil {
		return r, fmt.Errorf("%w: operation %d: %w", ErrMalformed, op, err)
	}
	if op != notifyResize && r.name == "" {
		return r, fmt.Errorf("%w: operation %d without a snapshot name", ErrInvalid, op)
	}
	return r, nil
}

// handleOperation answers an operation request as the lock owner; a
// client that does not own the lock stays silent (the owner answers).
func (img *Image) handleOperation(version uint8, op uint32, body *encoding.Decoder) []byte {
	if !img.lock.owner() {
		return nil
	}
	if img.lock.current() != lockLocked {
		return ackPayload(-int32(syscall.ERESTART)) // releasing: ask again
	}
	r, err := decodeOperation(version, op, body)
	if err != nil {
		// A pre-Pacific SNAP_CREATE: refusing it makes librbd ask for
		// the lock, which an Exclusive owner refuses in turn.
		return ackPayload(-int32(syscall.EOPNOTSUPP))
	}
	var fn func(ctx context.Context) error
	switch op {
	case notifyResize:
		fn = func(ctx context.Context) error {
			if !r.shrink && r.size < img.Size() {
				return fmt.Errorf("%w: shrinking is not allowed", ErrInvalid)
			}
			return img.Resize(ctx, r.size)
		}
	case notifySnapCreate:
		if r.ns.Type != SnapNamespaceUser && r.ns.Type != SnapNamespaceGroup {
			return ackPayload(-int32(syscall.EOPNOTSUPP))
		}
		// The owner quiesces the users unless the requester did (a
		// group snapshot quiesces all its images first).
		opts := SnapshotOptions{SkipQuiesce: r.flags&snapCreateSkipNotifyQuiesce != 0,
			IgnoreQuiesceError: r.flags&snapCreateIgnoreQuiesceErrors != 0}
		fn = func(ctx context.Context) error {
			_, err := img.snapshotWith(ctx, r.name, r.ns, opts)
			return err
		}
	case notifySnapRemove:
		fn = func(ctx context.Context) error { return img.removeSnapshotFor(ctx, r.ns, r.name) }
	}
	if r.async {
		return img.runAsync(r.id, fn)
	}
	// An old SNAP_REMOVE: the ack carries the result (each notify is
	// delivered on a goroutine of its own, so running it here blocks
	// nothing else).
	ctx, cancel := context.WithTimeout(img.watchContext(), refreshTimeout)
	defer cancel()
	return ackPayload(errnoOf(fn(ctx)))
}

// removeSnapshotFor removes the snapshot a SNAP_REMOVE names: a user
// snapshot as RemoveSnapshot does (a snapshot with clone children goes
// to the trash namespace), a trashed one by id.
func (img *Image) removeSnapshotFor(ctx context.Context, ns SnapshotNamespace, name string) error {
	if ns.Type == SnapNamespaceUser {
		return img.RemoveSnapshot(ctx, name)
	}
	for _, s := range img.state().snaps {
		if s.Namespace.Type == ns.Type && s.Name == name {
			return img.RemoveSnapshotByID(ctx, s.ID)
		}
	}
	return fmt.Errorf("%w: %s snapshot %q of image %q", ErrNotFound, ns.Type, name, img.name)
}

// runAsync starts fn for request id unless it runs or ran already, and
// returns the ack: 0 (accepted) or a finished repeat's result. The
// result goes to every watcher in ASYNC_COMPLETE.
func (img *Image) runAsync(id asyncRequestID, fn func(ctx context.Context) error) []byte {
	ro := &img.remote
	ro.mu.Lock()
	now := time.Now()
	for k, v := range ro.results {
		if now.Sub(v.at) > asyncResultKeep {
			delete(ro.results, k)
		}
	}
	if res, ok := ro.results[id]; ok {
		ro.mu.Unlock()
		return ackPayload(res.r)
	}
	if ro.running[id] {
		ro.mu.Unlock()
		return ackPayload(0)
	}
	if ro.running == nil {
		ro.running = map[asyncRequestID]bool{}
		ro.results = map[asyncRequestID]remoteResult{}
	}
	ro.running[id] = true
	ro.mu.Unlock()
	started := img.background(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
		defer cancel()
		r := errnoOf(fn(ctx))
		ro.mu.Lock()
		delete(ro.running, id)
		ro.results[id] = remoteResult{r: r, at: time.Now()}
		ro.mu.Unlock()
		_, _ = img.s.notify(ctx, img.hdr(), remoteMessage(notifyAsyncComplete, func(e *encoding.Encoder) {
			id.encode(e)
			e.I32(r)
		}))
	})
	if !started { // closing: the requester asks again (and finds no owner)
		ro.mu.Lock()
		delete(ro.running, id)
		ro.mu.Unlock()
		return ackPayload(-int32(syscall.ERESTART))
	}
	return ackPayload(0)
}
