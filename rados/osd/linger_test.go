package osd

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
)

// TestWatchLifecycle drives a watch through the fake OSD: registration,
// a notify answered with NOTIFY_ACK carrying the handler's reply, a
// DISCONNECT event answered with RECONNECT (next generation), and a
// connection fault answered the same way.
func TestWatchLifecycle(t *testing.T) {
	n := newFakeNet(t)
	// No pings during the test: each op it expects is named.
	c := newTestClientConfig(t, n, Config{WatchPing: time.Hour})
	c.HandleMap(testMap(t, 10, nil))
	ctx := context.Background()
	type res struct {
		w   *Watch
		err error
	}
	ch := make(chan res, 1)
	go func() {
		w, err := c.Watch(ctx, 1, "", "hdr", func(ev NotifyEvent) []byte { return append([]byte("re:"), ev.Payload...) }, nil)
		ch <- res{w, err}
	}()
	reg := n.next(t)
	op := reg.msg.Ops[0]
	if op.Code != OpWatch || op.Args[16] != WatchOpWatch || reg.msg.Flags&FlagWrite == 0 {
		t.Fatalf("registration %+v", reg.msg)
	}
	cookie := binary.LittleEndian.Uint64(op.Args[:8])
	reg.reply(0, 0)
	r := <-ch
	if r.err != nil || r.w.Cookie() != cookie {
		t.Fatalf("watch: %v cookie %d/%d", r.err, r.w.Cookie(), cookie)
	}

	wn := &watchNotify{ProtoVer: 1, Opcode: WatchEventNotify, Cookie: cookie, NotifyID: 555, Payload: []byte("ping"), NotifierGID: 9}
	reg.conn.h.Dispatch(&messenger.Message{Type: MsgWatchNotify, Version: 3, Front: wn.encode()})
	ack := n.next(t)
	if ack.msg.Ops[0].Code != OpNotifyAck {
		t.Fatalf("expected notify-ack, got %v", ack.msg.Ops[0].Code)
	}
	in := ack.msg.Ops[0].In
	if binary.LittleEndian.Uint64(in) != 555 || binary.LittleEndian.Uint64(in[8:]) != cookie || string(in[20:]) != "re:ping" {
		t.Fatalf("notify-ack payload %x", in)
	}
	ack.reply(0, 0)

	wn.Opcode = WatchEventDisconnect
	reg.conn.h.Dispatch(&messenger.Message{Type: MsgWatchNotify, Version: 3, Front: wn.encode()})
	rc := n.next(t)
	if o := rc.msg.Ops[0]; o.Code != OpWatch || o.Args[16] != WatchOpReconnect || binary.LittleEndian.Uint32(o.Args[17:]) != 1 {
		t.Fatalf("after disconnect: %+v", rc.msg.Ops[0])
	}
	rc.reply(0, 0)

	rc.conn.closed.Store(true)
	rc.conn.h.OnFault(context.Canceled)
	rc2 := n.next(t)
	if o := rc2.msg.Ops[0]; o.Code != OpWatch || o.Args[16] != WatchOpReconnect || binary.LittleEndian.Uint32(o.Args[17:]) != 2 {
		t.Fatalf("after fault: %+v", rc2.msg.Ops[0])
	}
	rc2.reply(0, 0)

	done := make(chan error, 1)
	go func() { done <- r.w.Close(ctx) }()
	un := n.next(t)
	if o := un.msg.Ops[0]; o.Code != OpWatch || o.Args[16] != WatchOpUnwatch {
		t.Fatalf("close sent %+v", o)
	}
	un.reply(0, 0)
	if err := waitErr(t, done); err != nil {
		t.Fatal(err)
	}
	if c.Stats().Watches != 0 {
		t.Fatal("watch still registered")
	}
}
