package rados

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
	"github.com/csi-gorbd/csi-gorbd/rados/mon"
	"github.com/csi-gorbd/csi-gorbd/rados/osd"
	"github.com/csi-gorbd/csi-gorbd/rados/osdmap"
)

// mapTracker keeps the client's OSDMap current: it decodes the MOSDMap
// batches the monitors send, and those OSDs send when our requests carry
// an older epoch, applies incrementals in epoch order, asks the monitors
// for missing epochs, and hands every new map to the OSD client.
type mapTracker struct {
	mu  sync.Mutex // serialises map changes (batches arrive one by one)
	cur *osdmap.OSDMap

	c *Conn

	// reqMu guards the pending map request: one subscribe goroutine at a
	// time; requests made meanwhile merge into the next one.
	reqMu      sync.Mutex
	reqPending bool
	reqStart   uint32
	reqRunning bool
	decodeErrs atomic.Uint64 // batches we could not use (diagnostics)
	badFull    uint32        // epoch of the last full map that failed to decode (mu)

	// Batches from OSDs go through osdMaps to one worker, so the OSD
	// connection readers never wait for a map decode; a batch that does
	// not fit is dropped and the monitors are asked instead.
	osdMaps    chan *mon.OSDMapMsg
	fromOSD    atomic.Uint64 // epochs installed from OSD-sent batches
	ignoreMons atomic.Bool   // tests: drop monitor batches
	fsid       func() [16]byte
	capture    atomic.Pointer[func(front []byte, version uint16)] // tests: raw OSD batches

	ctx    context.Context
	cancel context.CancelFunc
}

func newMapTracker(c *Conn) *mapTracker {
	t := &mapTracker{c: c, osdMaps: make(chan *mon.OSDMapMsg, 8)}
	t.fsid = func() [16]byte { return c.mc.FSID() }
	t.ctx, t.cancel = context.WithCancel(context.Background())
	go t.osdMapWorker()
	return t
}

// handleOSDMessage is the OSD client's OnMapMessage hook: it runs on an
// OSD connection's reader, so it only decodes the envelope and queues it.
func (t *mapTracker) handleOSDMessage(_ int32, msg *messenger.Message) {
	if f := t.capture.Load(); f != nil {
		(*f)(msg.Front, msg.Version)
	}
	m, err := mon.DecodeMOSDMap(msg.Front, msg.Version)
	if err != nil {
		t.decodeErrs.Add(1)
		return
	}
	if m.FSID != t.fsid() {
		return // not our cluster's maps
	}
	if last := m.Last(); last == 0 || last <= t.epoch() {
		return
	}
	select {
	case t.osdMaps <- m:
	default:
		t.requestNewer(0)
	}
}

func (t *mapTracker) osdMapWorker() {
	for {
		select {
		case <-t.ctx.Done():
			return
		case m := <-t.osdMaps:
			t.handleFrom(m, true)
		}
	}
}

// epoch returns the epoch of the map we hold (0: none).
func (t *mapTracker) epoch() uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cur == nil {
		return 0
	}
	return t.cur.Epoch
}

// handle consumes one MOSDMap. It runs on the monitor reader goroutine:
// decoding is pure computation; requests for more maps go out on their
// own goroutine.
func (t *mapTracker) handle(m *mon.OSDMapMsg) {
	if t.ignoreMons.Load() {
		return
	}
	t.handleFrom(m, false)
}

func (t *mapTracker) handleFrom(m *mon.OSDMapMsg, fromOSD bool) {
	t.mu.Lock()
	var before uint32
	if t.cur != nil {
		before = t.cur.Epoch
	}
	next, want := t.advanceLocked(m)
	if next != nil && fromOSD && next.Epoch > before {
		// Counted before anyone can see the new epoch (under mu, ahead of
		// HandleMap waking WaitForMap callers), so the count is never
		// behind the map.
		t.fromOSD.Add(uint64(next.Epoch - before))
	}
	t.mu.Unlock()
	if next != nil {
		t.c.osd.HandleMap(next)
	}
	if want < 0 && fromOSD && m.Newest > m.Last() {
		// An OSD sends at most osd_map_message_max maps at once and does
		// not follow up: the monitors have the rest.
		want = int64(m.Last()) + 1
	}
	if want >= 0 {
		t.request(uint32(want))
	}
}

// advanceLocked applies what m carries to t.cur. It returns the new map
// (nil if nothing changed) and the epoch to subscribe from when something
// is missing (-1: nothing is; 0: the latest full map).
func (t *mapTracker) advanceLocked(m *mon.OSDMapMsg) (*osdmap.OSDMap, int64) {
	cur := t.cur
	start := cur
	last := m.Last()
	if cur == nil || (cur.Epoch < last && !covers(m, cur.Epoch+1)) {
		// No base to apply incrementals to (first map, or a gap the
		// batch does not bridge): start from the newest full map, if any.
		if len(m.Full) == 0 {
			if cur == nil {
				return nil, 0
			}
			return nil, int64(cur.Epoch) + 1
		}
		fb := m.Full[len(m.Full)-1]
		if cur == nil || fb.Epoch > cur.Epoch {
			om, err := osdmap.Decode(fb.Data)
			if err != nil {
				t.decodeErrs.Add(1)
				// Asking again for the same map would loop: wait for a
				// newer epoch instead.
				if fb.Epoch == t.badFull {
					return nil, -1
				}
				t.badFull = fb.Epoch
				return nil, 0
			}
			cur = om
		}
	}
	for e := cur.Epoch + 1; e <= last; e++ {
		next, ok := nextMap(cur, m, e)
		if !ok {
			t.decodeErrs.Add(1)
			t.install(cur, start)
			return changed(cur, start), int64(cur.Epoch) + 1
		}
		cur = next
	}
	// When the monitor capped the batch (m.Newest > last), the mon client
	// resubscribes from last+1 itself.
	t.install(cur, start)
	return changed(cur, start), -1
}

func (t *mapTracker) install(cur, start *osdmap.OSDMap) {
	if cur != start {
		t.cur = cur
	}
}

func changed(cur, start *osdmap.OSDMap) *osdmap.OSDMap {
	if cur == start {
		return nil
	}
	return cur
}

// covers reports whether m holds a map (incremental or full) for epoch e.
func covers(m *mon.OSDMapMsg, e uint32) bool {
	for _, s := range [][]mon.EpochBlob{m.Incrementals, m.Full} {
		for _, b := range s {
			if b.Epoch == e {
				return true
			}
		}
	}
	return false
}

// nextMap builds epoch e from cur and the batch: the incremental if there
// is one (falling back to the full map if it does not apply), else the
// full map.
func nextMap(cur *osdmap.OSDMap, m *mon.OSDMapMsg, e uint32) (*osdmap.OSDMap, bool) {
	for _, b := range m.Incrementals {
		if b.Epoch != e {
			continue
		}
		inc, err := osdmap.DecodeIncremental(b.Data)
		if err == nil {
			if next, err := cur.Apply(inc); err == nil && next.Epoch == e {
				return next, true
			}
		}
		break
	}
	for _, b := range m.Full {
		if b.Epoch == e {
			om, err := osdmap.Decode(b.Data)
			if err == nil && om.Epoch == e {
				return om, true
			}
			return nil, false
		}
	}
	return nil, false
}

// request asks the monitors for maps from epoch start on (0: the latest
// full map). Requests made while one is being sent merge (the lowest
// start wins; 0 wins over all) into one more subscribe.
func (t *mapTracker) request(start uint32) {
	t.reqMu.Lock()
	if !t.reqPending || start < t.reqStart {
		t.reqStart = start
	}
	t.reqPending = true
	if t.reqRunning {
		t.reqMu.Unlock()
		return
	}
	t.reqRunning = true
	t.reqMu.Unlock()
	go func() {
		for {
			t.reqMu.Lock()
			if !t.reqPending || t.ctx.Err() != nil {
				t.reqRunning = false
				t.reqMu.Unlock()
				return
			}
			s := t.reqStart
			t.reqPending = false
			t.reqMu.Unlock()
			ctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
			_ = t.c.mc.SubscribeOSDMap(ctx, s)
			cancel()
		}
	}()
}

// requestNewer is the OSD client's RequestMap hook: maps after ours.
func (t *mapTracker) requestNewer(uint32) {
	e := t.epoch()
	if e == 0 {
		t.request(0)
		return
	}
	t.request(e + 1)
}

// newOSDClient builds the OSD client: messenger connections authorised
// with OSD service tickets from the monitor session.
func (c *Conn) newOSDClient() (*osd.Client, error) {
	dial := osd.MessengerDialer(osd.DialerConfig{
		Base:     messenger.Config{Features: mon.ClientFeatures, Nonce: rand.Uint32() | 1},
		GlobalID: func() uint64 { return c.mc.GlobalID() },
		Authorizer: func(int32) (messenger.AuthClient, error) {
			ctx, cancel := context.WithTimeout(c.maps.ctx, 15*time.Second)
			defer cancel()
			return c.ServiceAuth(ctx, entity.TypeOSD)
		},
	})
	guarded := func(ctx context.Context, id int32, addrs entity.AddrVec, h osd.Handler) (osd.Conn, error) {
		conn, err := dial(ctx, id, addrs, h)
		var oe *messenger.OpError
		if err != nil && errors.As(err, &oe) && oe.Op == "auth" {
			// The OSD refused our authorizer: fetch a new ticket before
			// the next attempt.
			if cx := c.Cephx(); cx != nil {
				cx.InvalidateTicket(entity.TypeOSD)
			}
		}
		return conn, err
	}
	return osd.New(osd.Config{
		Dial:         guarded,
		RequestMap:   c.maps.requestNewer,
		OnMapMessage: c.maps.handleOSDMessage,
		Features:     mon.ClientFeatures,
	})
}

// OSDMap returns the newest OSDMap the client holds (nil before the
// first arrives). The map must not be modified.
func (c *Conn) OSDMap() *osdmap.OSDMap { return c.osd.Map() }

// OSDClient exposes the object client to the other rados layers.
func (c *Conn) OSDClient() *osd.Client { return c.osd }

// WaitForOSDMap blocks until the client holds an OSDMap of at least epoch
// (1: any map).
func (c *Conn) WaitForOSDMap(ctx context.Context, epoch uint32) error {
	if epoch == 0 {
		epoch = 1
	}
	return c.osd.WaitForMap(ctx, epoch)
}

// WaitForLatestOSDMap asks the monitors for their newest OSDMap epoch and
// waits until the client has it, so that changes made before the call
// (a pool created by a command, a snapshot) are visible.
func (c *Conn) WaitForLatestOSDMap(ctx context.Context) error {
	newest, _, err := c.mc.GetVersion(ctx, "osdmap")
	if err != nil {
		return err
	}
	return c.WaitForOSDMap(ctx, uint32(newest))
}
