package osd

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
	"github.com/csi-gorbd/csi-gorbd/rados/osdmap"
)

// NotifyEvent is a notify received on a watch.
type NotifyEvent struct {
	NotifyID    uint64
	Cookie      uint64 // the watch's cookie
	NotifierGID uint64 // the notifier's global id
	Payload     []byte
}

// WatchHandler handles a notify; its result is the reply sent back to the
// notifier with NOTIFY_ACK (every notify is acknowledged).
type WatchHandler func(NotifyEvent) []byte

// Watch is a registered watch on an object (a linger operation). The
// client keeps it registered: it pings it, and re-registers it after
// reconnects and map changes.
type Watch struct {
	c       *Client
	cookie  uint64
	pool    int64
	ns, oid string
	handler WatchHandler
	onError func(error)

	mu  sync.Mutex
	gen uint32
	osd int32

	kick     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	// handlers counts the handler calls running; Close waits for them.
	// closed (under mu) keeps new calls from starting once Close did.
	handlers sync.WaitGroup
	closed   bool
}

// Cookie returns the watch's cookie (as listed by list-watchers).
func (w *Watch) Cookie() uint64 { return w.cookie }

// Watch registers a watch on an object. handler runs (on its own
// goroutine) for every notify, and not after Close returned (Close waits
// for the calls in progress, so a handler must not call Close); onError, if set, is told when the watch
// was lost or could not be confirmed (notifies may have been missed) and
// is then re-established.
func (c *Client) Watch(ctx context.Context, pool int64, ns, oid string, handler WatchHandler, onError func(error)) (*Watch, error) {
	w := &Watch{
		c: c, cookie: c.lastCookie.Add(1), pool: pool, ns: ns, oid: oid,
		handler: handler, onError: onError, osd: -1,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	c.lingerMu.Lock()
	c.watches[w.cookie] = w
	c.lingerMu.Unlock()
	if err := w.do(ctx, WatchOp(w.cookie, 0)); err != nil {
		c.lingerMu.Lock()
		delete(c.watches, w.cookie)
		c.lingerMu.Unlock()
		return nil, err
	}
	go w.loop()
	return w, nil
}

// do sends one watch op to the watched object and records its OSD.
func (w *Watch) do(ctx context.Context, op Op) error {
	req := &Request{Pool: w.pool, Namespace: w.ns, Object: w.oid, Ops: []Op{op}, Flags: FlagFullTry}
	r, err := w.c.start(req)
	if err != nil {
		return err
	}
	err = w.c.wait(ctx, r)
	if err == nil {
		w.mu.Lock()
		w.osd = r.t.osd
		w.mu.Unlock()
	}
	return err
}

// Close removes the watch from the OSD and stops its upkeep; it returns
// once no handler call runs any more.
func (w *Watch) Close(ctx context.Context) error {
	w.stopLoop()
	<-w.done
	err := w.do(ctx, Unwatch(w.cookie))
	w.c.lingerMu.Lock()
	delete(w.c.watches, w.cookie)
	w.c.lingerMu.Unlock()
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.handlers.Wait()
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTCONN) {
		err = nil
	}
	return err
}

func (w *Watch) stopLoop() { w.stopOnce.Do(func() { close(w.stop) }) }

func (w *Watch) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// checkTarget pokes the watch when its object moved to another OSD.
func (w *Watch) checkTarget() {
	m := w.c.Map()
	if m == nil {
		return
	}
	p := m.Pools[w.pool]
	if p == nil {
		w.poke()
		return
	}
	w.mu.Lock()
	cur := w.osd
	w.mu.Unlock()
	mp := w.c.scratch.Get()
	defer w.c.scratch.Put(mp)
	r := &request{req: &Request{Pool: w.pool, Namespace: w.ns, Object: w.oid}, write: true, flags: FlagFullTry}
	t, err := calcTarget(m, r, mp.(*osdmap.Mapping))
	if err != nil || t.osd != cur {
		w.poke()
	}
}

func (w *Watch) report(err error) {
	if w.onError != nil && err != nil {
		go w.onError(err)
	}
}

func (w *Watch) loop() {
	defer close(w.done)
	t := time.NewTicker(w.c.cfg.WatchPing)
	defer t.Stop()
	broken := false
	for {
		select {
		case <-w.stop:
			return
		case <-w.c.ctx.Done():
			return
		case <-w.kick:
			broken = true
		case <-t.C:
		}
		if broken {
			broken = w.reconnect() != nil
			continue
		}
		w.mu.Lock()
		gen := w.gen
		w.mu.Unlock()
		ctx, cancel := context.WithTimeout(w.c.ctx, 2*w.c.cfg.WatchPing+5*time.Second)
		err := w.do(ctx, WatchPing(w.cookie, gen))
		cancel()
		if err != nil && !errors.Is(err, ErrClosed) {
			w.report(err)
			broken = w.reconnect() != nil
		}
	}
}

// reconnect re-registers the watch (RECONNECT with the next generation),
// falling back to a new WATCH when the OSD no longer knows it.
func (w *Watch) reconnect() error {
	w.mu.Lock()
	w.gen++
	gen := w.gen
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(w.c.ctx, 30*time.Second)
	defer cancel()
	err := w.do(ctx, WatchReconnect(w.cookie, gen))
	if err == nil {
		return nil
	}
	if w.c.closed.Load() {
		return err
	}
	w.report(err)
	return w.do(ctx, WatchOp(w.cookie, 0))
}

// deliver runs the handler and acknowledges the notify; after Close it
// does neither.
func (w *Watch) deliver(ev NotifyEvent) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.handlers.Add(1)
	w.mu.Unlock()
	reply := w.handler(ev)
	w.handlers.Done()
	ctx, cancel := context.WithTimeout(w.c.ctx, 30*time.Second)
	defer cancel()
	req := &Request{Pool: w.pool, Namespace: w.ns, Object: w.oid, Ops: []Op{NotifyAck(ev.NotifyID, w.cookie, reply)}}
	_ = w.c.Do(ctx, req)
}

// kickWatches pokes the watches whose OSD's connection changed.
func (c *Client) kickWatches(osd int32) {
	c.lingerMu.Lock()
	defer c.lingerMu.Unlock()
	for _, w := range c.watches {
		w.mu.Lock()
		mine := w.osd == osd
		w.mu.Unlock()
		if mine {
			w.poke()
		}
	}
}

type pendingNotify struct {
	ch chan *watchNotify
}

func (c *Client) handleWatchNotify(m *messenger.Message) {
	wn, err := decodeWatchNotify(m.Front, m.Data, m.Version)
	if err != nil {
		return
	}
	c.lingerMu.Lock()
	w := c.watches[wn.Cookie]
	pn := c.notifies[wn.Cookie]
	c.lingerMu.Unlock()
	switch wn.Opcode {
	case WatchEventNotify:
		if w != nil {
			ev := NotifyEvent{NotifyID: wn.NotifyID, Cookie: wn.Cookie, NotifierGID: wn.NotifierGID, Payload: wn.Payload}
			go w.deliver(ev)
		}
	case WatchEventNotifyComplete:
		if pn != nil {
			select {
			case pn.ch <- wn:
			default:
			}
		}
	case WatchEventDisconnect:
		if w != nil {
			w.poke()
		}
	}
}

// NotifyResult is what a completed notify reports.
type NotifyResult struct {
	NotifyID uint64
	Acks     []NotifyAckEntry
	Timeouts []NotifyTimeout
}

// Notify sends payload to the object's watchers and waits until all have
// acknowledged or timeout passed (the OSD then answers ETIMEDOUT, returned
// as an error together with the partial result).
func (c *Client) Notify(ctx context.Context, pool int64, ns, oid string, payload []byte, timeout time.Duration) (*NotifyResult, error) {
	cookie := c.lastCookie.Add(1)
	pn := &pendingNotify{ch: make(chan *watchNotify, 4)}
	c.lingerMu.Lock()
	c.notifies[cookie] = pn
	c.lingerMu.Unlock()
	defer func() {
		c.lingerMu.Lock()
		delete(c.notifies, cookie)
		c.lingerMu.Unlock()
	}()
	secs := uint32((timeout + time.Second - 1) / time.Second)
	req := &Request{Pool: pool, Namespace: ns, Object: oid, Ops: []Op{NotifyOp(cookie, secs, payload)}}
	if err := c.Do(ctx, req); err != nil {
		return nil, err
	}
	d := encoding.NewDecoder(req.Ops[0].Out)
	id := d.U64()
	if d.Err() != nil {
		return nil, &OpError{Op: OpNotify, Pool: pool, Object: oid, Err: ErrProtocol}
	}
	for {
		select {
		case wn := <-pn.ch:
			if wn.NotifyID != id {
				continue
			}
			res := &NotifyResult{NotifyID: id}
			acks, tos, err := ParseNotifyReplies(wn.Data)
			if err != nil {
				return nil, &OpError{Op: OpNotify, Pool: pool, Object: oid, Err: err}
			}
			res.Acks, res.Timeouts = acks, tos
			if wn.ReturnCode < 0 {
				return res, &OpError{Op: OpNotify, Pool: pool, Object: oid, Err: errnoErr(wn.ReturnCode)}
			}
			return res, nil
		case <-ctx.Done():
			return nil, &OpError{Op: OpNotify, Pool: pool, Object: oid, Err: context.Cause(ctx)}
		case <-c.ctx.Done():
			return nil, &OpError{Op: OpNotify, Pool: pool, Object: oid, Err: ErrClosed}
		}
	}
}
