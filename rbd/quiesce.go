package rbd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// Quiescing the users of an image around a snapshot, librbd's way
// (ImageWatcher::notify_quiesce, prepare_quiesce_request): the
// snapshotter sends QUIESCE to the header's watchers with an async
// request id { its client id, a request number }; each watcher holds its
// I/O and acknowledges with ResponseMessage { result } once nothing is in
// flight. The snapshotter resends the same request when the notify times
// out (a watcher still quiescing: notify timeout 5 s,
// rbd_quiesce_notification_attempts 10), takes its snapshots, and sends
// UNQUIESCE with the same id. A watcher that hears nothing more lets its
// I/O go by itself 10 s after it quiesced (2 × the notify timeout); a
// repeated QUIESCE of a held request restarts that clock, which is how a
// slow snapshotter keeps its hold.

const (
	// QuiesceHoldDefault is how long a watcher stays quiesced without
	// UNQUIESCE or a repeated QUIESCE (librbd: 2 × NOTIFY_TIMEOUT).
	QuiesceHoldDefault = 2 * notifyTimeout
	// quiesceAttempts is rbd_quiesce_notification_attempts.
	quiesceAttempts = 10
	// quiesceKeepalive is how often a snapshotter repeats QUIESCE while it
	// works, to keep the watchers' hold from running out.
	quiesceKeepalive = QuiesceHoldDefault / 3
	// quiesceRunTimeout bounds one run of the Quiesce hook (the
	// snapshotter gives up after quiesceAttempts notify timeouts).
	quiesceRunTimeout = quiesceAttempts * notifyTimeout
)

// ErrQuiesce: a user of the image failed to quiesce for a snapshot (or
// never answered); no snapshot was taken. A *QuiesceError carries the
// details.
var ErrQuiesce = errors.New("rbd: quiescing the image's users failed")

// QuiesceError says which image's users did not quiesce and why.
type QuiesceError struct {
	Image  string
	Result int32 // the failing watcher's answer (negative errno), or 0
	Err    error // the notify's own failure (ETIMEDOUT), or nil
}

func (e *QuiesceError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("rbd: %s: quiescing its users: %v", e.Image, e.Err)
	}
	return fmt.Sprintf("rbd: %s: a user could not quiesce: %v", e.Image, syscall.Errno(-e.Result))
}

// Is matches ErrQuiesce.
func (e *QuiesceError) Is(t error) bool { return t == ErrQuiesce }

func (e *QuiesceError) Unwrap() error { return e.Err }

// asyncRequests numbers this process's async requests
// (util::reserve_async_request_id).
var asyncRequests atomic.Uint64

// quiescePayload encodes NotifyMessage v7/c1 { u32 op, AsyncRequestId }
// for QUIESCE and UNQUIESCE (librbd writes version 7).
func quiescePayload(op uint32, id asyncRequestID) []byte {
	e := encoding.NewEncoder(nil)
	m := e.StructBegin(7, 1)
	e.U32(op)
	id.encode(e)
	e.StructEnd(m)
	return e.B
}

// decodeQuiesceID reads the AsyncRequestId after the op of a QUIESCE or
// UNQUIESCE NotifyMessage.
func decodeQuiesceID(b []byte) (asyncRequestID, bool) {
	d := encoding.NewDecoder(b)
	body, _ := d.Struct(1)
	_ = body.U32()
	id := decodeAsyncRequestID(body)
	return id, d.Err() == nil
}

// QuiesceHooks is what an image's user does when a snapshotter asks the
// image's users to quiesce (OnQuiesce). Quiesce holds the user's I/O and
// returns once none of it is in flight; its error is what the
// snapshotter hears (it then takes no snapshot, unless told to ignore
// quiesce errors). Unquiesce lets the I/O go again; it runs exactly once
// after each Quiesce that succeeded: on UNQUIESCE, when Hold runs out,
// or at Close. Nested requests (several snapshotters at once) share one
// Quiesce/Unquiesce pair. Hold is how long to stay quiesced without word
// from the snapshotter (0: QuiesceHoldDefault, librbd's).
type QuiesceHooks struct {
	Quiesce   func(ctx context.Context) error
	Unquiesce func(ctx context.Context)
	Hold      time.Duration
}

// OnQuiesce sets the hooks run for QUIESCE and UNQUIESCE notifies on the
// image's header (`rbd snap create`, `rbd group snap create`, and this
// package's snapshots, ours included). Without hooks the image answers
// at once, as librbd does without quiesce watchers. Set them before the
// image is in use; nil removes them (a quiesce that holds stays held
// until it ends).
func (img *Image) OnQuiesce(h *QuiesceHooks) {
	img.quiesce.mu.Lock()
	defer img.quiesce.mu.Unlock()
	img.quiesce.hooks = h
}

// quiesceState is the watcher side: the requests heard and the hold.
//
// mu guards the fields; it is never held while a hook runs. run
// serialises hook calls (a Quiesce and the Unquiesce that may follow at
// once); hooks may do I/O through the image, so nothing of the image's
// own is locked while run is held.
type quiesceState struct {
	mu      sync.Mutex
	hooks   *QuiesceHooks
	reqs    map[asyncRequestID]*quiesceReq
	holders int  // requests holding the quiesce (acknowledged 0, not ended)
	held    bool // Quiesce ran and succeeded, Unquiesce not yet
	closed  bool

	run sync.Mutex
}

// quiesceReq is one snapshotter's request.
type quiesceReq struct {
	done   chan struct{} // closed when the quiesce has its result
	result int32
	holds  bool        // counted in holders
	timer  *time.Timer // ends the hold when the snapshotter goes quiet
}

// handleQuiesce answers QUIESCE: a new request quiesces (running the
// hook unless already held) and answers with the result; a repeated one
// waits for the same result and restarts the hold.
func (img *Image) handleQuiesce(ctx context.Context, payload []byte) []byte {
	id, ok := decodeQuiesceID(payload)
	if !ok {
		return ackPayload(-int32(syscall.EINVAL))
	}
	q := &img.quiesce
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ackPayload(-int32(syscall.ESHUTDOWN))
	}
	if q.reqs == nil {
		q.reqs = make(map[asyncRequestID]*quiesceReq)
	}
	r, dup := q.reqs[id]
	if !dup {
		r = &quiesceReq{done: make(chan struct{})}
		q.reqs[id] = r
	}
	hooks := q.hooks
	q.mu.Unlock()
	if dup {
		select {
		case <-r.done:
		case <-ctx.Done():
			return ackPayload(-int32(syscall.ESHUTDOWN))
		}
		q.mu.Lock()
		if r.timer != nil {
			r.timer.Reset(hold(hooks))
		}
		q.mu.Unlock()
		return ackPayload(r.result)
	}

	err := img.quiesceHold(ctx, hooks)
	q.mu.Lock()
	if err != nil {
		r.result = -int32(hookErrno(err))
		// Forget it soon: a retry of the same request finds the result
		// meanwhile, as with librbd.
		r.timer = time.AfterFunc(hold(hooks), func() { img.forgetQuiesce(id, r) })
	} else {
		r.holds = true
		q.holders++
		r.timer = time.AfterFunc(hold(hooks), func() { img.endQuiesce(id, false) })
	}
	close(r.done)
	q.mu.Unlock()
	return ackPayload(r.result)
}

// handleUnquiesce answers UNQUIESCE: the request's hold ends (the hook
// runs when it was the last). An unknown request is ignored.
func (img *Image) handleUnquiesce(payload []byte) []byte {
	id, ok := decodeQuiesceID(payload)
	if ok {
		img.background(func(context.Context) { img.endQuiesce(id, true) })
	}
	return nil
}

func hold(h *QuiesceHooks) time.Duration {
	if h == nil || h.Hold <= 0 {
		return QuiesceHoldDefault
	}
	return h.Hold
}

// quiesceHold takes one hold: the first runs the Quiesce hook.
func (img *Image) quiesceHold(ctx context.Context, hooks *QuiesceHooks) error {
	q := &img.quiesce
	q.run.Lock()
	defer q.run.Unlock()
	q.mu.Lock()
	held, closed := q.held, q.closed
	q.mu.Unlock()
	switch {
	case closed:
		return syscall.ESHUTDOWN
	case held || hooks == nil || hooks.Quiesce == nil:
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, quiesceRunTimeout)
	defer cancel()
	if err := hooks.Quiesce(rctx); err != nil {
		return err
	}
	q.mu.Lock()
	q.held = true
	q.mu.Unlock()
	return nil
}

// endQuiesce ends request id's hold (UNQUIESCE, or its hold ran out);
// the last hold runs the Unquiesce hook.
func (img *Image) endQuiesce(id asyncRequestID, stopTimer bool) {
	q := &img.quiesce
	q.run.Lock()
	defer q.run.Unlock()
	q.mu.Lock()
	r := q.reqs[id]
	if r == nil {
		q.mu.Unlock()
		return
	}
	select {
	case <-r.done:
	default:
		// UNQUIESCE overtook its QUIESCE (still quiescing): the timer
		// set when it completes ends it.
		q.mu.Unlock()
		return
	}
	if stopTimer && r.timer != nil {
		r.timer.Stop()
	}
	delete(q.reqs, id)
	last := false
	if r.holds {
		r.holds = false
		q.holders--
		last = q.holders == 0 && q.held
	}
	if last {
		q.held = false
	}
	hooks := q.hooks
	q.mu.Unlock()
	if last && hooks != nil && hooks.Unquiesce != nil {
		hooks.Unquiesce(context.Background())
	}
}

// forgetQuiesce drops a failed request's record.
func (img *Image) forgetQuiesce(id asyncRequestID, r *quiesceReq) {
	q := &img.quiesce
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.reqs[id] == r && !r.holds {
		delete(q.reqs, id)
	}
}

// closeQuiesce ends every hold at Close: the I/O of a closing image's
// user must not stay held.
func (img *Image) closeQuiesce() {
	q := &img.quiesce
	q.run.Lock()
	defer q.run.Unlock()
	q.mu.Lock()
	q.closed = true
	for id, r := range q.reqs {
		if r.timer != nil {
			r.timer.Stop()
		}
		delete(q.reqs, id)
	}
	last := q.held
	q.holders, q.held = 0, false
	hooks := q.hooks
	q.mu.Unlock()
	if last && hooks != nil && hooks.Unquiesce != nil {
		hooks.Unquiesce(context.Background())
	}
}

// hookErrno is the errno a failed hook reports (EIO when it carries none).
func hookErrno(err error) syscall.Errno {
	var en syscall.Errno
	if errors.As(err, &en) && en != 0 {
		return en
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return syscall.ETIMEDOUT
	}
	return syscall.EIO
}

// quiesced is the snapshotter's side of one image's quiesce: its request
// id, to repeat (keepalive) and to end with UNQUIESCE.
type quiesced struct {
	img *Image
	id  asyncRequestID
}

// notifyQuiesce asks the image's watchers to quiesce and waits for their
// answers, resending on notify timeouts (librbd's notify_quiesce). A
// watcher's error (other than EOPNOTSUPP) fails it with a *QuiesceError;
// the watchers that did quiesce are then told to unquiesce.
func (img *Image) notifyQuiesce(ctx context.Context) (*quiesced, error) {
	q := &quiesced{img: img, id: asyncRequestID{gid: img.s.clientID(), handle: img.watch.cookie, id: asyncRequests.Add(1)}}
	if err := q.send(ctx); err != nil {
		q.end(context.WithoutCancel(ctx))
		return nil, err
	}
	return q, nil
}

// send sends QUIESCE (again) and evaluates the answers.
func (q *quiesced) send(ctx context.Context) error {
	img := q.img
	payload := quiescePayload(notifyQuiesce, q.id)
	var err error
	for attempt := 0; attempt < quiesceAttempts; attempt++ {
		var acks [][]byte
		acks, err = img.s.notify(ctx, img.hdr(), payload)
		if errors.Is(err, syscall.ETIMEDOUT) && ctx.Err() == nil {
			continue // a watcher is still quiescing: ask again, same request
		}
		if err != nil {
			return &QuiesceError{Image: img.name, Err: err}
		}
		for _, a := range acks {
			res, ok := decodeAck(a)
			if !ok {
				return &QuiesceError{Image: img.name, Result: -int32(syscall.EINVAL)}
			}
			if res < 0 && res != -int32(syscall.EOPNOTSUPP) {
				return &QuiesceError{Image: img.name, Result: res}
			}
		}
		return nil
	}
	return &QuiesceError{Image: img.name, Err: err}
}

// end sends UNQUIESCE (best effort: a watcher that misses it lets go by
// itself when its hold runs out).
func (q *quiesced) end(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*notifyTimeout)
	defer cancel()
	_, _ = q.img.s.notify(ctx, q.img.hdr(), quiescePayload(notifyUnquiesce, q.id))
}

// quiesceImages quiesces the users of every image at once and returns a
// function that, until called, repeats the requests so the holds stay
// (every quiesceKeepalive), then ends them. On failure the holds taken
// are ended before it returns.
func quiesceImages(ctx context.Context, imgs []*Image) (release func(), err error) {
	qs := make([]*quiesced, len(imgs))
	errs := make([]error, len(imgs))
	var wg sync.WaitGroup
	for i, img := range imgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			qs[i], errs[i] = img.notifyQuiesce(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		endAll(context.WithoutCancel(ctx), qs)
		return nil, err
	}
	stop := make(chan struct{})
	var kw sync.WaitGroup
	kw.Add(1)
	go func() {
		defer kw.Done()
		t := time.NewTicker(quiesceKeepalive)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			for _, q := range qs {
				kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), notifyTimeout)
				_, _ = q.img.s.notify(kctx, q.img.hdr(), quiescePayload(notifyQuiesce, q.id))
				cancel()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stop)
			kw.Wait()
			endAll(context.WithoutCancel(ctx), qs)
		})
	}, nil
}

// endAll sends UNQUIESCE for every request made, concurrently.
func endAll(ctx context.Context, qs []*quiesced) {
	var wg sync.WaitGroup
	for _, q := range qs {
		if q == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			q.end(ctx)
		}()
	}
	wg.Wait()
}
