package osd

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
)

// TestReadIntoRxBuffer: a request made of one ReadInto op lends its buffer
// to the connection for the reply's data segment; the reply's Out then
// aliases the caller's buffer. Other requests, other message types,
// replies larger than the buffer and replies for unknown tids get no
// buffer.
func TestReadIntoRxBuffer(t *testing.T) {
	n := newFakeNet(t)
	c := newTestClient(t, n)
	c.HandleMap(testMap(t, 10, nil))

	p := make([]byte, 8)
	req := &Request{Pool: 1, Object: "obj", Ops: []Op{ReadInto(0, p)}}
	ch := doAsync(c, context.Background(), req)
	s := n.next(t)
	rx := s.conn.h.RxBuffer
	if b, _ := rx(MsgOSDOp, s.tid, 5); b != nil {
		t.Fatal("a buffer for a message that is not an op reply")
	}
	if b, _ := rx(MsgOSDOpReply, s.tid+1000, 5); b != nil {
		t.Fatal("a buffer for an unknown tid")
	}
	if b, _ := rx(MsgOSDOpReply, s.tid, 9); b != nil {
		t.Fatal("a buffer for a reply larger than the caller's")
	}
	buf, release := rx(MsgOSDOpReply, s.tid, 5)
	if len(buf) != 5 || &buf[0] != &p[0] || release == nil {
		t.Fatalf("got a buffer of %d bytes (caller's: %v)", len(buf), len(buf) > 0 && &buf[0] == &p[0])
	}
	copy(buf, "hello") // what the messenger's reader does
	release()
	replyData(s, buf) // the message's Data is the buffer the reader filled
	if err := waitErr(t, ch); err != nil {
		t.Fatal(err)
	}
	if out := req.Ops[0].Out; string(out) != "hello" || &out[0] != &p[0] {
		t.Fatalf("Out %q, aliasing the caller's buffer: %v", out, &out[0] == &p[0])
	}
	if b, _ := rx(MsgOSDOpReply, s.tid, 5); b != nil {
		t.Fatal("a buffer after the request completed")
	}

	// Not a lone ReadInto: no loan.
	ch = doAsync(c, context.Background(), &Request{Pool: 1, Object: "obj", Ops: []Op{ReadInto(0, p), Stat()}})
	s = n.next(t)
	if b, _ := s.conn.h.RxBuffer(MsgOSDOpReply, s.tid, 5); b != nil {
		t.Fatal("a buffer for a compound request")
	}
	s.reply(0, 0, []byte("x"), make([]byte, 16))
	if err := waitErr(t, ch); err != nil {
		t.Fatal(err)
	}
}

// replyData answers s, a one-op read, with a message whose Data is data
// itself, as the messenger delivers a segment received into a lent buffer.
func replyData(s sentOp, data []byte) {
	r := &osdOpReply{Oid: s.msg.Oid, PG: s.msg.SPG.PG, Epoch: s.msg.Epoch, UserVersion: 1,
		Ops: []replyOp{{Code: s.msg.Ops[0].Code, Out: data}}}
	front, _ := encodeOSDOpReply(r)
	s.conn.h.Dispatch(&messenger.Message{Type: MsgOSDOpReply, Version: 8, Tid: s.tid, Front: front, Data: data})
}

// TestReadIntoCancelWaitsForRx: a request whose context ends while its
// reply is being received into the caller's buffer returns only once the
// reader let go of the buffer, and lends it to no later reply.
func TestReadIntoCancelWaitsForRx(t *testing.T) {
	n := newFakeNet(t)
	c := newTestClient(t, n)
	c.HandleMap(testMap(t, 10, nil))

	p := make([]byte, 4)
	ctx, cancel := context.WithCancel(context.Background())
	ch := doAsync(c, ctx, &Request{Pool: 1, Object: "obj", Ops: []Op{ReadInto(0, p)}})
	s := n.next(t)
	buf, release := s.conn.h.RxBuffer(MsgOSDOpReply, s.tid, 4)
	if buf == nil {
		t.Fatal("no buffer")
	}
	cancel()
	select {
	case err := <-ch:
		t.Fatalf("Do returned (%v) while its buffer was being filled", err)
	case <-time.After(100 * time.Millisecond):
	}
	copy(buf, "late")
	release()
	if err := waitErr(t, ch); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled read: %v", err)
	}
	if b, _ := s.conn.h.RxBuffer(MsgOSDOpReply, s.tid, 4); b != nil {
		t.Fatal("a buffer lent after Do returned")
	}
	// The reply that follows is dropped and leaves p alone.
	copy(p, "mine")
	s.reply(0, 0, []byte("zzzz"))
	if !bytes.Equal(p, []byte("mine")) {
		t.Fatalf("caller's buffer changed after Do returned: %q", p)
	}
}
