package osd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
	"github.com/csi-gorbd/csi-gorbd/rados/osdmap"
)

// The client tests run the real client against in-process fake OSD
// connections that decode what the client sends with the package's own
// codecs; the wire format itself is checked against real OSDs by the
// integration tests and the captured vectors.

type sentOp struct {
	osd  int32
	tid  uint64
	msg  *osdOpMsg
	conn *fakeConn
}

type fakeNet struct {
	t       *testing.T
	ops     chan sentOp
	acks    chan *osdBackoff
	mu      sync.Mutex
	conns   []*fakeConn
	dialErr map[int32]error
	dials   atomic.Int32
	mapReqs atomic.Int32
}

type fakeConn struct {
	net    *fakeNet
	osd    int32
	h      Handler
	closed atomic.Bool
}

func newFakeNet(t *testing.T) *fakeNet {
	return &fakeNet{t: t, ops: make(chan sentOp, 64), acks: make(chan *osdBackoff, 8), dialErr: map[int32]error{}}
}

func (n *fakeNet) dial(ctx context.Context, osd int32, addrs entity.AddrVec, h Handler) (Conn, error) {
	n.dials.Add(1)
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.dialErr[osd]; err != nil {
		return nil, err
	}
	c := &fakeConn{net: n, osd: osd, h: h}
	n.conns = append(n.conns, c)
	return c, nil
}

func (c *fakeConn) Send(ctx context.Context, m *messenger.Message) error {
	if c.closed.Load() {
		return messenger.ErrClosed
	}
	switch m.Type {
	case MsgOSDOp:
		om, err := decodeOSDOp(m.Front, m.Data)
		if err != nil {
			c.net.t.Errorf("client sent a bad MOSDOp: %v", err)
			return nil
		}
		c.net.ops <- sentOp{osd: c.osd, tid: m.Tid, msg: om, conn: c}
	case MsgOSDBackoff:
		b, err := decodeOSDBackoff(m.Front)
		if err != nil {
			c.net.t.Errorf("client sent a bad MOSDBackoff: %v", err)
		}
		c.net.acks <- b
	}
	return nil
}

func (c *fakeConn) Close() error { c.closed.Store(true); return nil }

// reply answers a received op.
func (s sentOp) reply(result int32, attempt int32, outs ...[]byte) {
	r := &osdOpReply{Oid: s.msg.Oid, PG: s.msg.SPG.PG, Result: result, Epoch: s.msg.Epoch, Attempt: attempt, UserVersion: 42}
	for i, o := range s.msg.Ops {
		ro := replyOp{Code: o.Code}
		if i < len(outs) {
			ro.Out = outs[i]
		}
		r.Ops = append(r.Ops, ro)
	}
	front, data := encodeOSDOpReply(r)
	s.conn.h.Dispatch(&messenger.Message{Type: MsgOSDOpReply, Version: 8, Tid: s.tid, Front: front, Data: data})
}

func (n *fakeNet) next(t *testing.T) sentOp {
	t.Helper()
	select {
	case s := <-n.ops:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no op sent")
	}
	return sentOp{}
}

func (n *fakeNet) none(t *testing.T) {
	t.Helper()
	select {
	case s := <-n.ops:
		t.Fatalf("unexpected op to osd.%d tid %d", s.osd, s.tid)
	case <-time.After(50 * time.Millisecond):
	}
}

// testMap is the osdmaptool-made 6-OSD map with every OSD up at a
// loopback address, at epoch e, changed by mut.
func testMap(t *testing.T, e uint32, mut func(*osdmap.OSDMap)) *osdmap.OSDMap {
	t.Helper()
	b, err := os.ReadFile("testdata/simple6.osdmap")
	if err != nil {
		t.Fatal(err)
	}
	m, err := osdmap.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	m.Epoch = e
	for o := int32(0); o < m.MaxOSD; o++ {
		m.SetWeight(o, osdmap.WeightIn)
		m.SetUp(o)
		a, err := entity.ParseAddr(fmt.Sprintf("v2:127.0.0.1:%d/1", 6800+o))
		if err != nil {
			t.Fatal(err)
		}
		m.OSDAddrs[o] = entity.AddrVec{a}
	}
	if mut != nil {
		mut(m)
	}
	return m
}

func newTestClient(t *testing.T, n *fakeNet) *Client {
	return newTestClientConfig(t, n, Config{})
}

// newTestClientConfig is newTestClient with cfg's other fields kept.
func newTestClientConfig(t *testing.T, n *fakeNet, cfg Config) *Client {
	cfg.Dial = n.dial
	cfg.RequestMap = func(uint32) { n.mapReqs.Add(1) }
	cfg.Features = 1
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func primaryOf(t *testing.T, m *osdmap.OSDMap, pool int64, oid string) int32 {
	r := &request{req: &Request{Pool: pool, Object: oid}}
	tg, err := calcTarget(m, r, new(osdmap.Mapping))
	if err != nil {
		t.Fatal(err)
	}
	return tg.osd
}

// waitStats polls c.Stats until ok holds (or fails the test after 10 s):
// for counts that goroutines the test started change on their own time.
func waitStats(t *testing.T, c *Client, what string, ok func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := c.Stats()
		if ok(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want %s", st, what)
		}
		time.Sleep(time.Millisecond)
	}
}

func doAsync(c *Client, ctx context.Context, req *Request) chan error {
	ch := make(chan error, 1)
	go func() { ch <- c.Do(ctx, req) }()
	return ch
}

func TestDoReply(t *testing.T) {
	n := newFakeNet(t)
	c := newTestClient(t, n)
	c.HandleMap(testMap(t, 10, nil))
	req := &Request{Pool: 1, Object: "obj", Ops: []Op{Read(0, 5), Stat()}}
	ch := doAsync(c, context.Background(), req)
	s := n.next(t)
	if s.osd != primaryOf(t, c.Map(), 1, "obj") || s.msg.Oid != "obj" || s.msg.Flags&FlagRead == 0 || s.msg.Attempt != 0 || s.msg.Epoch != 10 {
		t.Fatalf("sent %+v to osd.%d", s.msg, s.osd)
	}
	s.reply(0, 0, []byte("hello"))
	if err := waitErr(t, ch); err != nil {
		t.Fatal(err)
	}
	if string(req.Ops[0].Out) != "hello" || req.Version != 42 {
		t.Fatalf("out %q version %d", req.Ops[0].Out, req.Version)
	}
	// A failing op: OpError with the errno and the failing op.
	req = &Request{Pool: 1, Object: "obj", Ops: []Op{Stat()}}
	ch = doAsync(c, context.Background(), req)
	n.next(t).reply(-int32(syscall.ENOENT), 0)
	err := waitErr(t, ch)
	var oe *OpError
	if !errors.Is(err, syscall.ENOENT) || !errors.As(err, &oe) || oe.Op != OpStat || oe.Object != "obj" {
		t.Fatalf("err %v", err)
	}
}

// TestResendSameTid moves a write to another OSD with a new map: it keeps
// its tid, the stale reply of the first attempt is ignored.
func TestResendSameTid(t *testing.T) {
	n := newFakeNet(t)
	c := newTestClient(t, n)
	m := testMap(t, 10, nil)
	c.HandleMap(m)
	req := &Request{Pool: 1, Object: "obj", Ops: []Op{WriteFull([]byte("x"))}}
	ch := doAsync(c, context.Background(), req)
	first := n.next(t)
	old := first.osd
	c.HandleMap(testMap(t, 11, func(m *osdmap.OSDMap) { m.OSDState[old] &^= osdmap.StateUp; m.OSDWeight[old] = 0 }))
	second := n.next(t)
	if second.osd == old || second.tid != first.tid || second.msg.Attempt != 1 || second.msg.Epoch != 11 ||
		second.msg.Flags&FlagRetry == 0 || !second.msg.MTime.Equal(first.msg.MTime) {
		t.Fatalf("resend to osd.%d tid %d attempt %d (first osd.%d tid %d)", second.osd, second.tid, second.msg.Attempt, old, first.tid)
	}
	first.reply(0, 0) // stale: the session is gone
	second.reply(0, 1)
	if err := waitErr(t, ch); err != nil {
		t.Fatal(err)
	}
}

// TestForceResend: the pool's last_force_op_resend makes the client
// resend to the same OSD.
func TestForceResend(t *testing.T) {
	n := newFakeNet(t)
	c := newTestClient(t, n)
	c.HandleMap(testMap(t, 10, nil))
	ch := doAsync(c, context.Background(), &Request{Pool: 1, Object: "o", Ops: []Op{Stat()}})
	first := n.next(t)
	c.HandleMap(testMap(t, 11, nil)) // nothing changed: no resend
	n.none(t)
	c.HandleMap(testMap(t, 12, func(m *osdmap.OSDMap) { m.Pools[1].LastForceOpResend = 12 }))
	second := n.next(t)
	if second.tid != first.tid || second.osd != first.osd || second.msg.Attempt != 1 {
		t.Fatalf("forced resend %+v", second)
	}
	first.reply(0, 0) // reply to attempt 0 is ignored
	select {
	case err := <-ch:
		t.Fatalf("completed by a stale reply: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	second.reply(0, 1)
	if err := waitErr(t, ch); err != nil {
		t.Fatal(err)
	}
}

func TestReconnectResends(t *testing.T) {
	n := newFakeNet(t)
	c := newTestClient(t, n)
	c.HandleMap(testMap(t, 10, nil))
	ch := doAsync(c, context.Background(), &Request{Pool: 1, Object: "o", Ops: []Op{Stat()}})
	first := n.next(t)
	first.conn.closed.Store(true)
	first.conn.h.OnFault(errors.New("reset"))
	second := n.next(t)
	if second.conn == first.conn || second.tid != first.tid || second.msg.Attempt != 1 {
		t.Fatalf("after fault: %+v", second)
	}
	second.reply(0, 1)
	if err := waitErr(t, ch); err != nil {
		t.Fatal(err)
	}
}

func TestCancelOnlyThatOp(t *testing.T) {
	n := newFakeNet(t)
	c := newTestClient(t, n)
	c.HandleMap(testMap(t, 10, nil))
	ctx, cancel := context.WithCancel(context.Background())
	a := doAsync(c, ctx, &Request{Pool: 1, Object: "a", Ops: []Op{Stat()}})
	b := doAsync(c, context.Background(), &Request{Pool: 1, Object: "b", Ops: []Op{Stat()}})
	s1, s2 := n.next(t), n.next(t)
	if s1.msg.Oid == "b" {
		s1, s2 = s2, s1
	}
	cancel()
	if err := waitErr(t, a); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled op: %v", err)
	}
	s1.reply(0, 0) // late reply to the cancelled op: dropped
	s2.reply(0, 0)
	if err := waitErr(t, b); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.InFlight != 0 || st.Homeless != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFullPausedErrors(t *testing.T) {
	n := newFakeNet(t)
	c := newTestClient(t, n)
	ctx := context.Background()
	c.HandleMap(testMap(t, 10, func(m *osdmap.OSDMap) { m.Pools[1].Flags |= osdmap.PoolFlagFull }))
	if err := c.Do(ctx, &Request{Pool: 1, Object: "o", Ops: []Op{Write(0, []byte("x"))}}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write to a full pool: %v", err)
	}
	// FULL_TRY lets it through; reads are fine.
	ch := doAsync(c, ctx, &Request{Pool: 1, Object: "o", Flags: FlagFullTry, Ops: []Op{Delete()}})
	n.next(t).reply(0, 0)
	if err := waitErr(t, ch); err != nil {
		t.Fatal(err)
	}
	c.HandleMap(testMap(t, 11, func(m *osdmap.OSDMap) { m.Pools[1].Flags |= osdmap.PoolFlagFull | osdmap.PoolFlagFullQuota }))
	if err := c.Do(ctx, &Request{Pool: 1, Object: "o", Ops: []Op{CallWrite("x", "y", nil)}}); !errors.Is(err, syscall.EDQUOT) {
		t.Fatalf("write over quota: %v", err)
	}
	// A full pool stays a prompt error while the cluster is paused.
	c.HandleMap(testMap(t, 12, func(m *osdmap.OSDMap) {
		m.Flags |= osdmap.FlagPauseWrite
		m.Pools[1].Flags |= osdmap.PoolFlagFull
	}))
	if err := c.Do(ctx, &Request{Pool: 1, Object: "o", Ops: []Op{Write(0, []byte("x"))}}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write to a full pool of a paused cluster: %v", err)
	}
	// A write in flight when the pool fills fails at once.
	c.HandleMap(testMap(t, 13, nil))
	ch = doAsync(c, ctx, &Request{Pool: 1, Object: "o", Ops: []Op{Write(0, []byte("x"))}})
	n.next(t)
	c.HandleMap(testMap(t, 14, func(m *osdmap.OSDMap) { m.Pools[1].Flags |= osdmap.PoolFlagFull }))
	if err := waitErr(t, ch); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("in-flight write when full: %v", err)
	}
	if err := c.Do(ctx, &Request{Pool: 99, Object: "o", Ops: []Op{Stat()}}); !errors.Is(err, ErrNoPool) || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("missing pool: %v", err)
	}
}

// TestPauseWaits: under pausewr a write waits (unsent) for a map without
// the flag, bounded by its context, whose end then fails it with an error
// matching ErrPaused, EAGAIN and the context's error; reads still go out.
// A write sent before the pause stays in flight and completes; one held
// back goes out when the flag is lifted. pauserd holds reads the same way.
func TestPauseWaits(t *testing.T) {
	n := newFakeNet(t)
	c := newTestClient(t, n)
	bg := context.Background()
	c.HandleMap(testMap(t, 10, nil))
	early := doAsync(c, bg, &Request{Pool: 1, Object: "early", Ops: []Op{Write(0, []byte("e"))}})
	sentEarly := n.next(t)

	pauseWR := func(m *osdmap.OSDMap) { m.Flags |= osdmap.FlagPauseWrite }
	c.HandleMap(testMap(t, 11, pauseWR))
	maps := n.mapReqs.Load()
	short, cancel := context.WithTimeout(bg, 30*time.Millisecond)
	defer cancel()
	err := c.Do(short, &Request{Pool: 1, Object: "o", Ops: []Op{Truncate(0)}})
	if !errors.Is(err, ErrPaused) || !errors.Is(err, syscall.EAGAIN) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("paused write with a deadline: %v", err)
	}
	if n.mapReqs.Load() == maps {
		t.Error("a paused write asked for no newer map")
	}
	held := doAsync(c, bg, &Request{Pool: 1, Object: "o", Ops: []Op{Write(0, []byte("w"))}})
	rd := doAsync(c, bg, &Request{Pool: 1, Object: "o", Ops: []Op{Read(0, 1)}})
	if s := n.next(t); s.msg.Ops[0].Code != OpRead {
		t.Fatalf("sent %v under pausewr, want only the read", s.msg.Ops[0].Code)
	} else {
		s.reply(0, 0, []byte("r"))
	}
	if err := waitErr(t, rd); err != nil {
		t.Fatal(err)
	}
	sentEarly.reply(0, 0)
	if err := waitErr(t, early); err != nil {
		t.Fatalf("write in flight when the pause came: %v", err)
	}
	// A newer map that keeps the flag (and a reconnect) sends nothing.
	c.HandleMap(testMap(t, 12, pauseWR))
	n.mu.Lock()
	conns := append([]*fakeConn(nil), n.conns...)
	n.mu.Unlock()
	for _, fc := range conns {
		fc.h.OnFault(errors.New("connection reset"))
	}
	n.none(t)
	// held's goroutine may not have queued it yet on a loaded machine.
	waitStats(t, c, "the held write queued", func(st Stats) bool { return st.InFlight == 1 })
	c.HandleMap(testMap(t, 13, nil))
	s := n.next(t)
	if s.msg.Oid != "o" || s.msg.Ops[0].Code != OpWrite || s.msg.Epoch != 13 {
		t.Fatalf("after unpause sent %s %v at epoch %d", s.msg.Oid, s.msg.Ops[0].Code, s.msg.Epoch)
	}
	s.reply(0, s.msg.Attempt)
	if err := waitErr(t, held); err != nil {
		t.Fatalf("held write after unpause: %v", err)
	}

	c.HandleMap(testMap(t, 14, func(m *osdmap.OSDMap) { m.Flags |= osdmap.FlagPauseRead }))
	rd = doAsync(c, bg, &Request{Pool: 1, Object: "o", Ops: []Op{Stat()}})
	n.none(t)
	c.HandleMap(testMap(t, 15, nil))
	s = n.next(t)
	s.reply(0, s.msg.Attempt, make([]byte, 16))
	if err := waitErr(t, rd); err != nil {
		t.Fatalf("held read after unpause: %v", err)
	}
	if st := c.Stats(); st.InFlight != 0 || st.Homeless != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestHomeless: with no OSD up a request waits for a map, bounded by its
// context, and goes out when a map brings an OSD up.
func TestHomeless(t *testing.T) {
	n := newFakeNet(t)
	c := newTestClient(t, n)
	down := func(m *osdmap.OSDMap) {
		for o := range m.OSDState {
			m.OSDState[o] &^= osdmap.StateUp
		}
	}
	c.HandleMap(testMap(t, 10, down))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := c.Do(ctx, &Request{Pool: 1, Object: "o", Ops: []Op{Stat()}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("homeless: %v", err)
	}
	if n.mapReqs.Load() == 0 {
		t.Error("no newer map requested")
	}
	ch := doAsync(c, context.Background(), &Request{Pool: 1, Object: "o", Ops: []Op{Stat()}})
	n.none(t)
	c.HandleMap(testMap(t, 11, nil))
	n.next(t).reply(0, 0)
	if err := waitErr(t, ch); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Homeless != 0 || st.InFlight != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBackoffBlockUnblock(t *testing.T) {
	n := newFakeNet(t)
	c := newTestClient(t, n)
	c.HandleMap(testMap(t, 10, nil))
	ch := doAsync(c, context.Background(), &Request{Pool: 1, Object: "o", Ops: []Op{Stat()}})
	s := n.next(t)
	b := &osdBackoff{SPG: s.msg.SPG, Epoch: 10, Op: BackoffBlock, ID: 7,
		Begin: HObject{Pool: 1, Hash: 0, Snap: 0}, End: HObject{Max: true}}
	s.conn.h.Dispatch(&messenger.Message{Type: MsgOSDBackoff, Version: 1, Front: b.encode(nil)})
	ack := <-n.acks
	if ack.Op != BackoffAckBlock || ack.ID != 7 || ack.SPG != b.SPG {
		t.Fatalf("ack %+v", ack)
	}
	// A new request to the same pg is held back.
	ch2 := doAsync(c, context.Background(), &Request{Pool: 1, Object: "o", Ops: []Op{Read(0, 1)}})
	n.none(t)
	b.Op = BackoffUnblock
	s.conn.h.Dispatch(&messenger.Message{Type: MsgOSDBackoff, Version: 1, Front: b.encode(nil)})
	r1, r2 := n.next(t), n.next(t)
	if r1.tid != s.tid || r1.msg.Attempt != 1 || r2.msg.Ops[0].Code != OpRead {
		t.Fatalf("after unblock: %+v %+v", r1, r2)
	}
	r1.reply(0, 1)
	r2.reply(0, 0, []byte("z"))
	if err := waitErr(t, ch); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, ch2); err != nil {
		t.Fatal(err)
	}
}

func TestCloseFailsPending(t *testing.T) {
	n := newFakeNet(t)
	c := newTestClient(t, n)
	c.HandleMap(testMap(t, 10, nil))
	ch := doAsync(c, context.Background(), &Request{Pool: 1, Object: "o", Ops: []Op{Stat()}})
	n.next(t)
	c.Close()
	if err := waitErr(t, ch); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
	if err := c.Do(context.Background(), &Request{Pool: 1, Object: "o", Ops: []Op{Stat()}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("do after close: %v", err)
	}
}

func waitErr(t *testing.T, ch chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("request did not complete")
	}
	return nil
}
