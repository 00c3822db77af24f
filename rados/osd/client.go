package osd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
	"github.com/csi-gorbd/csi-gorbd/rados/osdmap"
)

// Conn is the part of a messenger connection the client uses
// (*messenger.Conn implements it).
type Conn interface {
	Send(ctx context.Context, m *messenger.Message) error
	Close() error
}

// Handler receives what arrives on one OSD connection.
type Handler struct {
	// Dispatch is called for every incoming message, in order.
	Dispatch func(*messenger.Message)
	// OnFault is called once when the connection fails.
	OnFault func(error)
	// RxBuffer picks the buffer a message's data segment is received
	// into (see messenger.Config.RxBuffer); a DialFunc that cannot honour
	// it may ignore it.
	RxBuffer func(typ uint16, tid uint64, n int) ([]byte, func())
}

// DialFunc opens an authenticated connection to OSD osd at addrs and
// hands its messages to h. [MessengerDialer] builds one from the
// messenger and an authorizer factory.
type DialFunc func(ctx context.Context, osd int32, addrs entity.AddrVec, h Handler) (Conn, error)

// Config configures a Client.
type Config struct {
	// Dial opens OSD connections (required).
	Dial DialFunc
	// RequestMap, if set, asks the monitors for a map newer than epoch
	// (0: the latest). The client calls it when requests have no up
	// target, when an OSD answers with a newer epoch and when a session
	// cannot be opened. It must not block.
	RequestMap func(newerThan uint32)
	// OnMapMessage, if set, receives every MOSDMap (type [MsgOSDMap]) an
	// OSD sends: OSDs share newer maps with a client whose requests carry
	// an older epoch. It runs on the connection's reader goroutine and
	// must not block; the message is not used after it returns.
	OnMapMessage func(osd int32, m *messenger.Message)
	// Features are our RADOS feature bits, sent in every MOSDOp.
	Features uint64
	// WatchPing is how often watches are checked (0: 5s).
	WatchPing time.Duration
	// DialTimeout bounds one connection attempt (0: 15s).
	DialTimeout time.Duration
}

// Client sends object operations to OSDs. It is safe for concurrent use.
type Client struct {
	cfg Config

	lastTid    atomic.Uint64
	lastCookie atomic.Uint64

	// mapMu orders map changes against submissions: submitting holds it
	// shared, installing a map holds it exclusively.
	mapMu   sync.RWMutex
	om      *osdmap.OSDMap
	mapWait chan struct{} // closed when a newer map is installed

	sessMu   sync.RWMutex
	sessions map[int32]*session

	homeMu   sync.Mutex
	homeless map[uint64]*request

	lingerMu sync.Mutex
	watches  map[uint64]*Watch
	notifies map[uint64]*pendingNotify

	scratch sync.Pool // *osdmap.Mapping

	ctx    context.Context
	cancel context.CancelFunc
	closed atomic.Bool
}

// New returns a client. It sends nothing until it has a map
// ([Client.HandleMap]) and a request.
func New(cfg Config) (*Client, error) {
	if cfg.Dial == nil {
		return nil, errors.New("osd: Config.Dial is required")
	}
	if cfg.WatchPing <= 0 {
		cfg.WatchPing = 5 * time.Second
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 15 * time.Second
	}
	c := &Client{
		cfg:      cfg,
		mapWait:  make(chan struct{}),
		sessions: map[int32]*session{},
		homeless: map[uint64]*request{},
		watches:  map[uint64]*Watch{},
		notifies: map[uint64]*pendingNotify{},
	}
	c.scratch.New = func() any { return new(osdmap.Mapping) }
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Map returns the current map (nil before the first).
func (c *Client) Map() *osdmap.OSDMap {
	c.mapMu.RLock()
	defer c.mapMu.RUnlock()
	return c.om
}

func (c *Client) requestMap(newerThan uint32) {
	if c.cfg.RequestMap != nil {
		c.cfg.RequestMap(newerThan)
	}
}

// WaitForMap blocks until the client holds a map of at least epoch.
func (c *Client) WaitForMap(ctx context.Context, epoch uint32) error {
	for {
		c.mapMu.RLock()
		om, ch := c.om, c.mapWait
		c.mapMu.RUnlock()
		if om != nil && om.Epoch >= epoch {
			return nil
		}
		c.requestMap(0)
		select {
		case <-ch:
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-c.ctx.Done():
			return ErrClosed
		}
	}
}

// Do sends req and waits for its reply or for ctx. On success the ops
// hold their results. A failed request returns an *OpError whose Err is a
// syscall.Errno for OSD results (errors.Is(err, syscall.ENOENT) works),
// or wraps ErrNoPool, ErrClosed or the context's error. A request the
// cluster's pause flags hold back waits for a map without them; if ctx
// ends first the error wraps ErrPaused as well as the context's error.
// Cancelling ctx abandons only this request.
func (c *Client) Do(ctx context.Context, req *Request) error {
	r, err := c.start(req)
	if err != nil {
		return err
	}
	return c.wait(ctx, r)
}

func (c *Client) newRequest(req *Request) (*request, error) {
	if len(req.Ops) == 0 {
		return nil, &OpError{Pool: req.Pool, Object: req.Object, Err: errors.New("no ops")}
	}
	if len(req.Ops) > 0xffff {
		return nil, &OpError{Op: req.Ops[0].Code, Pool: req.Pool, Object: req.Object, Err: errors.New("too many ops")}
	}
	r := &request{req: req, done: make(chan struct{})}
	if len(req.Ops) == 1 && req.Ops[0].Code == OpRead && len(req.Ops[0].dst) > 0 {
		r.rxDst = req.Ops[0].dst
	}
	r.write = req.IsWrite()
	r.flags = req.Flags
	if r.write {
		r.flags |= FlagWrite | FlagOnDisk
	} else {
		r.flags |= FlagRead
	}
	r.mtime = req.MTime
	if r.write && r.mtime.IsZero() {
		r.mtime = time.Now()
	}
	r.tid = c.lastTid.Add(1)
	return r, nil
}

func (c *Client) start(req *Request) (*request, error) {
	r, err := c.newRequest(req)
	if err != nil {
		return nil, err
	}
	if c.closed.Load() {
		return nil, r.opErr(ErrClosed)
	}
	c.submit(r)
	return r, nil
}

func (c *Client) wait(ctx context.Context, r *request) error {
	select {
	case <-r.done:
	case <-ctx.Done():
		c.cancelRequest(r, context.Cause(ctx))
		<-r.done
	}
	if r.rxDst != nil {
		// Wait out a reply being received into the caller's buffer
		// and make sure no later one is.
		r.rxMu.Lock()
		r.rxRevoked = true
		r.rxMu.Unlock()
	}
	return r.err
}

// submit targets r under the current map and queues it.
func (c *Client) submit(r *request) {
	c.mapMu.RLock()
	defer c.mapMu.RUnlock()
	c.placeLocked(r, nil)
}

// placeLocked targets r under c.om and puts it on a session or the
// homeless list (mapMu held). from is the session r currently sits on
// (nil if none), whose lock is NOT held.
func (c *Client) placeLocked(r *request, from *session) {
	if c.om == nil {
		c.addHomeless(r)
		c.requestMap(0)
		return
	}
	mp := c.scratch.Get().(*osdmap.Mapping)
	t, err := calcTarget(c.om, r, mp)
	c.scratch.Put(mp)
	if err != nil {
		if r.claim() {
			r.finish(r.opErr(err))
		}
		return
	}
	r.setTarget(t)
	if t.paused {
		// The continuous map subscription brings the map that lifts
		// the pause; asking again costs one message and covers a lost
		// notification.
		c.requestMap(t.epoch)
	}
	if t.osd < 0 {
		c.addHomeless(r)
		c.requestMap(t.epoch)
		return
	}
	s := c.session(t.osd)
	if s == nil {
		c.addHomeless(r)
		c.requestMap(t.epoch)
		return
	}
	s.add(r)
}

func (c *Client) addHomeless(r *request) {
	r.sess.Store(nil)
	c.homeMu.Lock()
	c.homeless[r.tid] = r
	c.homeMu.Unlock()
}

// cancelRequest removes r from wherever it waits and completes it with
// err, or with a pausedError wrapping err when a paused cluster held it
// back (it was not sent under the current target).
func (c *Client) cancelRequest(r *request, err error) {
	c.mapMu.RLock()
	held := false
	if s := r.sess.Load(); s != nil {
		s.mu.Lock()
		if s.reqs[r.tid] == r {
			delete(s.reqs, r.tid)
			held = r.paused.Load() && !r.sent
		}
		s.mu.Unlock()
	} else {
		held = r.paused.Load()
		c.homeMu.Lock()
		delete(c.homeless, r.tid)
		c.homeMu.Unlock()
	}
	c.mapMu.RUnlock()
	if held {
		err = pausedError{err}
	}
	if r.claim() {
		r.finish(r.opErr(err))
	}
}

// session returns the session for osd under c.om, creating it (and
// starting its dial) when needed. It replaces a session whose OSD changed
// address. mapMu must be held.
func (c *Client) session(osd int32) *session {
	addrs := c.om.Addrs(osd)
	if _, ok := addrs.Msgr2(); !ok {
		return nil
	}
	c.sessMu.RLock()
	s := c.sessions[osd]
	c.sessMu.RUnlock()
	if s != nil && sameAddrs(s.addrs, addrs) {
		return s
	}
	c.sessMu.Lock()
	defer c.sessMu.Unlock()
	if s := c.sessions[osd]; s != nil {
		if sameAddrs(s.addrs, addrs) {
			return s
		}
		delete(c.sessions, osd)
		go s.close(nil) // requests were moved by the map change already
	}
	s = newSession(c, osd, addrs)
	c.sessions[osd] = s
	return s
}

func sameAddrs(a, b entity.AddrVec) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

// HandleMap installs a newer OSDMap (older or equal epochs are ignored)
// and re-targets every in-flight request and watch.
func (c *Client) HandleMap(m *osdmap.OSDMap) {
	if m == nil || c.closed.Load() {
		return
	}
	c.mapMu.Lock()
	if c.om != nil && m.Epoch <= c.om.Epoch {
		c.mapMu.Unlock()
		return
	}
	c.om = m
	close(c.mapWait)
	c.mapWait = make(chan struct{})

	var move []*request
	c.sessMu.Lock()
	sessions := make([]*session, 0, len(c.sessions))
	for osd, s := range c.sessions {
		if !m.IsUp(osd) || !sameAddrs(s.addrs, m.Addrs(osd)) {
			delete(c.sessions, osd)
			s.dead = true
		}
		sessions = append(sessions, s)
	}
	c.sessMu.Unlock()
	mp := c.scratch.Get().(*osdmap.Mapping)
	for _, s := range sessions {
		move = s.retarget(m, mp, move)
		if s.dead {
			go s.close(nil)
		}
	}
	c.homeMu.Lock()
	for tid, r := range c.homeless {
		delete(c.homeless, tid)
		move = append(move, r)
	}
	c.homeMu.Unlock()
	c.scratch.Put(mp)
	for _, r := range move {
		c.placeLocked(r, nil)
	}
	c.homeMu.Lock()
	homeless := len(c.homeless)
	c.homeMu.Unlock()
	epoch := m.Epoch
	c.mapMu.Unlock()

	c.lingerMu.Lock()
	for _, w := range c.watches {
		w.checkTarget()
	}
	c.lingerMu.Unlock()
	if homeless > 0 {
		c.requestMap(epoch)
	}
}

// Close fails every pending request with ErrClosed, ends the watches'
// background work (without unwatching) and closes all connections.
func (c *Client) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	c.cancel()
	c.lingerMu.Lock()
	ws := make([]*Watch, 0, len(c.watches))
	for _, w := range c.watches {
		ws = append(ws, w)
	}
	c.lingerMu.Unlock()
	for _, w := range ws {
		w.stopLoop()
	}
	c.mapMu.Lock()
	c.sessMu.Lock()
	sessions := c.sessions
	c.sessions = map[int32]*session{}
	c.sessMu.Unlock()
	c.homeMu.Lock()
	home := c.homeless
	c.homeless = map[uint64]*request{}
	c.homeMu.Unlock()
	c.mapMu.Unlock()
	for _, s := range sessions {
		s.close(ErrClosed)
	}
	for _, r := range home {
		if r.claim() {
			r.finish(r.opErr(ErrClosed))
		}
	}
	return nil
}

// Stats is a snapshot of the client's state, for tests and diagnostics.
type Stats struct {
	Sessions int
	InFlight int
	Homeless int
	Watches  int
}

// Stats returns counts of sessions and requests.
func (c *Client) Stats() Stats {
	var st Stats
	c.sessMu.Lock()
	ss := make([]*session, 0, len(c.sessions))
	for _, s := range c.sessions {
		ss = append(ss, s)
	}
	c.sessMu.Unlock()
	st.Sessions = len(ss)
	for _, s := range ss {
		s.mu.Lock()
		st.InFlight += len(s.reqs)
		s.mu.Unlock()
	}
	c.homeMu.Lock()
	st.Homeless = len(c.homeless)
	c.homeMu.Unlock()
	c.lingerMu.Lock()
	st.Watches = len(c.watches)
	c.lingerMu.Unlock()
	return st
}

func (c *Client) epoch() uint32 {
	c.mapMu.RLock()
	defer c.mapMu.RUnlock()
	if c.om == nil {
		return 0
	}
	return c.om.Epoch
}

var _ = fmt.Sprintf
