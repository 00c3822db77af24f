package messenger

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rados/msgr2"
)

// run starts the fake peer's script and returns a channel with its result.
func (p *fakePeer) run(script func(*serverConn) error) chan error {
	res := make(chan error, 1)
	go func() {
		s, err := p.accept()
		if err != nil {
			res <- err
			return
		}
		defer s.nc.Close()
		res <- script(s)
	}()
	return res
}

func fakeConfig(p *fakePeer, auth AuthClient) Config {
	return Config{Addr: p.addr, PeerType: entity.TypeMon, Auth: auth, Features: 0xff, Required: 0x1}
}

func secureAuth() *testAuth {
	return &testAuth{modes: []uint32{ModeSecure, ModeCRC}, sessionKey: []byte("0123456789abcdef"), conSecret: testSecret()}
}

// TestFakeSecureSession runs a full secure-mode handshake with an auth
// round, then exchanges messages both ways (including a 1 MiB data
// segment), checks seq numbering and the piggy-backed ack (and that no
// ACK frame is sent: the session is lossy).
func TestFakeSecureSession(t *testing.T) {
	p := newFakePeer(t)
	auth := secureAuth()
	fromServer := make(chan *Message, 4)
	cfg := fakeConfig(p, auth)
	cfg.Dispatch = func(m *Message) { fromServer <- m }
	cfg.hooks = &hooks{clock: newFakeClock()}
	big := bytes.Repeat([]byte("0123456789abcdefX"), 1<<16)
	res := p.run(func(s *serverConn) error {
		if err := p.handshake(s, serverOpts{mode: ModeSecure, replyMore: true, sessionKey: auth.sessionKey, conSecret: auth.conSecret, features: 0xff}); err != nil {
			return err
		}
		// two client messages, in order, with seq 1 and 2
		var h msgr2.MessageHeader
		for seq := uint64(1); seq <= 2; seq++ {
			f, err := s.recv(msgr2.TagMessage)
			if err != nil {
				return err
			}
			h.Decode(f.Segments[0])
			if h.Seq != seq || h.Type != 42 || h.Priority != 127 || h.AckSeq != 0 {
				return errors.New("bad client header")
			}
			if seq == 2 && !bytes.Equal(f.Segments[3], big) {
				return errors.New("big data differs")
			}
		}
		// one server message: the client sends no ACK frame for it (a
		// lossy session), the next frame is its next message, which
		// piggy-backs ack_seq 1
		hdr := msgr2.MessageHeader{Seq: 1, Tid: 9, Type: 43, Version: 2}
		if err := s.send(msgr2.TagMessage, hdr.Encode(nil), []byte("front"), nil, big); err != nil {
			return err
		}
		f, err := s.recv(msgr2.TagMessage)
		if err != nil {
			return err
		}
		if h.Decode(f.Segments[0]); h.Seq != 3 || h.AckSeq != 1 {
			return errors.New("bad piggy-backed ack")
		}
		return nil
	})
	ctx := context.Background()
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial: %v (peer: %v)", err, peerErr(res))
	}
	defer c.Close()
	if pi := c.Peer(); pi.ConMode != ModeSecure || pi.GlobalID != 3 || !pi.Lossy || pi.Features != 0xff {
		t.Errorf("peer %+v", pi)
	}
	if string(auth.gotDone) != "done" {
		t.Errorf("auth done payload %q", auth.gotDone)
	}
	m1 := &Message{Type: 42, Front: []byte("hello")}
	m2 := &Message{Type: 42, Front: []byte("x"), Data: big}
	if err := c.Send(ctx, m1); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(ctx, m2); err != nil {
		t.Fatal(err)
	}
	if m1.Seq != 1 || m2.Seq != 2 {
		t.Errorf("seqs %d %d", m1.Seq, m2.Seq)
	}
	m := <-fromServer
	if m.Type != 43 || m.Tid != 9 || m.Version != 2 || m.Seq != 1 || string(m.Front) != "front" || !bytes.Equal(m.Data, big) {
		t.Fatalf("received %+v", m.Type)
	}
	if err := c.Send(ctx, &Message{Type: 42}); err != nil {
		t.Fatal(err)
	}
	if err := <-res; err != nil {
		t.Fatal(err)
	}
}

func peerErr(res chan error) error {
	select {
	case err := <-res:
		return err
	case <-time.After(5 * time.Second):
		return errors.New("peer still running")
	}
}

func TestFakeCRCWithSessionKey(t *testing.T) {
	p := newFakePeer(t)
	auth := &testAuth{modes: []uint32{ModeCRC}, sessionKey: []byte("key")}
	res := p.run(func(s *serverConn) error {
		err := p.handshake(s, serverOpts{mode: ModeCRC, sessionKey: auth.sessionKey, features: 0xff})
		io_discard(s) // until the client closes
		return err
	})
	c, err := Dial(context.Background(), fakeConfig(p, auth))
	if err != nil {
		t.Fatalf("Dial: %v (peer: %v)", err, peerErr(res))
	}
	c.Close()
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	if !errors.Is(c.Err(), ErrClosed) {
		t.Errorf("Err after Close: %v", c.Err())
	}
}

// dialFail runs a handshake variant that must make Dial fail.
func dialFail(t *testing.T, auth AuthClient, o serverOpts) error {
	t.Helper()
	p := newFakePeer(t)
	p.run(func(s *serverConn) error { return p.handshake(s, o) })
	cfg := fakeConfig(p, auth)
	_, err := Dial(context.Background(), cfg)
	if err == nil {
		t.Fatal("Dial succeeded")
	}
	if !strings.Contains(err.Error(), p.addr.String()) {
		t.Errorf("error %q does not name %s", err, p.addr)
	}
	return err
}

func TestFakeHandshakeErrors(t *testing.T) {
	auth := func() AuthClient { return &testAuth{modes: []uint32{ModeCRC}, sessionKey: []byte("k")} }
	key := []byte("k")
	other := entity.Addr{Type: entity.AddrMsgr2, Nonce: 1, IP: netipMust("127.0.0.1:1")}
	t.Run("bad signature", func(t *testing.T) {
		err := dialFail(t, auth(), serverOpts{sessionKey: key, badSig: true})
		if !errors.Is(err, ErrAuth) {
			t.Fatal(err)
		}
	})
	t.Run("wrong peer type", func(t *testing.T) {
		err := dialFail(t, auth(), serverOpts{sessionKey: key, peerType: entity.TypeOSD})
		if !errors.Is(err, ErrWrongPeer) {
			t.Fatal(err)
		}
	})
	t.Run("wrong ident addr", func(t *testing.T) {
		err := dialFail(t, auth(), serverOpts{sessionKey: key, identAddr: &other, features: 1})
		if !errors.Is(err, ErrWrongPeer) {
			t.Fatal(err)
		}
	})
	t.Run("missing features", func(t *testing.T) {
		err := dialFail(t, auth(), serverOpts{sessionKey: key, identTag: msgr2.TagIdentMissingFeatures,
			identBody: (&msgr2.IdentMissingFeatures{Missing: 1 << 40}).Encode(nil)})
		var mf *MissingFeaturesError
		if !errors.Is(err, ErrMissingFeatures) || !errors.As(err, &mf) || mf.Missing != 1<<40 {
			t.Fatal(err)
		}
	})
	t.Run("server lacks required", func(t *testing.T) {
		err := dialFail(t, auth(), serverOpts{sessionKey: key, features: 0})
		var mf *MissingFeaturesError
		if !errors.As(err, &mf) || !mf.Ours || mf.Missing != 1 {
			t.Fatal(err)
		}
	})
	t.Run("wait", func(t *testing.T) {
		err := dialFail(t, auth(), serverOpts{sessionKey: key, identTag: msgr2.TagWait})
		if !errors.Is(err, ErrWait) {
			t.Fatal(err)
		}
	})
	t.Run("session reset", func(t *testing.T) {
		err := dialFail(t, auth(), serverOpts{sessionKey: key, identTag: msgr2.TagSessionReset, identBody: []byte{1}})
		if !errors.Is(err, ErrProtocol) || !errors.Is(err, msgr2.ErrSession) {
			t.Fatal(err)
		}
	})
	t.Run("mode not offered", func(t *testing.T) {
		err := dialFail(t, auth(), serverOpts{sessionKey: key, mode: ModeSecure, conSecret: testSecret()})
		if !errors.Is(err, ErrProtocol) {
			t.Fatal(err)
		}
	})
}

func TestFakeMsgr1(t *testing.T) {
	p := newFakePeer(t)
	p.run(func(s *serverConn) error {
		_, err := s.nc.Write([]byte("ceph v027\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
		io_discard(s)
		return err
	})
	_, err := Dial(context.Background(), fakeConfig(p, &NoneAuth{}))
	if !errors.Is(err, ErrNotMsgr2) || !errors.Is(err, msgr2.ErrMsgr1) {
		t.Fatal(err)
	}
}

func io_discard(s *serverConn) {
	buf := make([]byte, 512)
	for {
		if _, err := s.nc.Read(buf); err != nil {
			return
		}
	}
}

// TestFakeCancelDuringHandshake: the peer accepts and then says nothing;
// cancelling the context must end Dial with the context's error.
func TestFakeCancelDuringHandshake(t *testing.T) {
	p := newFakePeer(t)
	accepted := make(chan struct{})
	p.run(func(s *serverConn) error {
		close(accepted)
		io_discard(s)
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-accepted; cancel() }()
	_, err := Dial(ctx, fakeConfig(p, &NoneAuth{}))
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), p.addr.String()) {
		t.Fatalf("got %v", err)
	}
}

func TestFakeDeadlineDuringHandshake(t *testing.T) {
	p := newFakePeer(t)
	p.run(func(s *serverConn) error { io_discard(s); return nil })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := Dial(ctx, fakeConfig(p, &NoneAuth{}))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}

// openFake dials the fake peer with a fake clock and returns the conn, the
// server side and the fault channel.
func openFake(t *testing.T) (*Conn, *serverConn, *fakeClock, chan error, chan *Message, chan string) {
	t.Helper()
	p := newFakePeer(t)
	srv := make(chan *serverConn, 1)
	p.run(func(s *serverConn) error {
		if err := p.handshake(s, serverOpts{features: 0xff}); err != nil {
			return err
		}
		srv <- s
		select {} // the test drives s; the listener cleanup ends the process
	})
	clk := newFakeClock()
	faults := make(chan error, 4)
	msgs := make(chan *Message, 8)
	events := make(chan string, 32)
	cfg := fakeConfig(p, &NoneAuth{})
	cfg.OnFault = func(err error) { faults <- err }
	cfg.Dispatch = func(m *Message) { msgs <- m }
	cfg.hooks = &hooks{clock: clk, event: func(e string) { events <- e }}
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, <-srv, clk, faults, msgs, events
}

func TestFakeKeepalive(t *testing.T) {
	c, s, clk, faults, _, events := openFake(t)
	// tick: the client sends KEEPALIVE2 with the clock's stamp
	clk.advance(10 * time.Second)
	clk.tick()
	f, err := s.recv(msgr2.TagKeepalive2)
	if err != nil {
		t.Fatal(err)
	}
	var ka msgr2.Keepalive2
	ka.Decode(f.Segments[0])
	if !ka.Stamp.Equal(clk.Now()) {
		t.Errorf("stamp %v, want %v", ka.Stamp, clk.Now())
	}
	if err := s.send(msgr2.TagKeepalive2Ack, ka.Encode(nil)); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, "keepalive_ack")
	if !c.LastKeepaliveAck().Equal(ka.Stamp) {
		t.Errorf("last ack %v", c.LastKeepaliveAck())
	}
	// the server's KEEPALIVE2 is echoed in a KEEPALIVE2_ACK
	srvKA := msgr2.Keepalive2{Stamp: time.Unix(1234, 5678)}
	s.send(msgr2.TagKeepalive2, srvKA.Encode(nil))
	if f, err = s.recv(msgr2.TagKeepalive2Ack); err != nil {
		t.Fatal(err)
	}
	var echo msgr2.Keepalive2Ack
	if echo.Decode(f.Segments[0]); !echo.Stamp.Equal(srvKA.Stamp) {
		t.Errorf("echo %v", echo.Stamp)
	}
	// nothing received for 30s: the next tick faults the connection
	clk.advance(30 * time.Second)
	clk.tick()
	err = <-faults
	if !errors.Is(err, ErrKeepalive) || !errors.Is(c.Err(), ErrKeepalive) {
		t.Fatalf("fault %v, Err %v", err, c.Err())
	}
	<-c.Done()
	if err := c.Send(context.Background(), &Message{Type: 1}); !errors.Is(err, ErrKeepalive) {
		t.Errorf("Send after fault: %v", err)
	}
	select {
	case err := <-faults:
		t.Fatalf("second OnFault: %v", err)
	default:
	}
}

func waitEvent(t *testing.T, events chan string, want string) {
	t.Helper()
	for e := range events {
		if e == want {
			return
		}
	}
}

func TestFakePeerClose(t *testing.T) {
	c, s, _, faults, _, _ := openFake(t)
	s.nc.Close()
	err := <-faults
	var oe *OpError
	if !errors.As(err, &oe) || oe.Op != "read" || !strings.Contains(err.Error(), c.RemoteAddr().String()) {
		t.Fatalf("fault %v", err)
	}
	<-c.Done()
	if !errors.Is(c.Send(context.Background(), &Message{}), err) && c.Send(context.Background(), &Message{}) != err {
		t.Error("Send does not return the fault")
	}
	c.Close() // no second OnFault
	select {
	case err := <-faults:
		t.Fatalf("second OnFault: %v", err)
	default:
	}
}

func TestFakeSeqHandling(t *testing.T) {
	c, s, _, faults, msgs, _ := openFake(t)
	send := func(seq uint64) {
		h := msgr2.MessageHeader{Seq: seq, Type: 7}
		if err := s.send(msgr2.TagMessage, h.Encode(nil), []byte{byte(seq)}); err != nil {
			t.Fatal(err)
		}
	}
	send(1)
	send(1) // old: skipped
	send(2)
	if m := <-msgs; m.Seq != 1 {
		t.Fatalf("seq %d", m.Seq)
	}
	if m := <-msgs; m.Seq != 2 {
		t.Fatalf("seq %d", m.Seq)
	}
	send(4) // gap: protocol error
	err := <-faults
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("fault %v", err)
	}
	select {
	case m := <-msgs:
		t.Fatalf("message %d after a gap", m.Seq)
	default:
	}
	_ = c
}

func TestFakeSessionFrameWhenOpen(t *testing.T) {
	_, s, _, faults, _, _ := openFake(t)
	s.send(msgr2.TagSessionRetryGlobal, (&msgr2.SessionRetryGlobal{GlobalSeq: 5}).Encode(nil))
	err := <-faults
	var se *msgr2.SessionError
	if !errors.Is(err, ErrProtocol) || !errors.As(err, &se) || se.Value != 5 {
		t.Fatalf("fault %v", err)
	}
}

func TestFakeCloseIsQuiet(t *testing.T) {
	c, _, _, faults, _, _ := openFake(t)
	var n atomic.Int32
	go func() { <-c.Done(); n.Add(1) }()
	c.Close()
	<-c.Done()
	if !errors.Is(c.Err(), ErrClosed) {
		t.Fatal(c.Err())
	}
	if err := c.Send(context.Background(), &Message{}); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	select {
	case err := <-faults:
		t.Fatalf("OnFault after Close: %v", err)
	default:
	}
}

// TestFakePendingSendGetsFault fills the send queue while the peer reads
// nothing, then has the peer close: the blocked Send must return the
// fault.
func TestFakePendingSendGetsFault(t *testing.T) {
	c, s, _, faults, _, _ := openFake(t)
	data := make([]byte, 1<<20)
	sendErr := make(chan error, 1)
	go func() {
		for {
			if err := c.Send(context.Background(), &Message{Type: 1, Data: data}); err != nil {
				sendErr <- err
				return
			}
		}
	}()
	for len(c.sendq) < cap(c.sendq) {
		runtime.Gosched()
	}
	s.nc.Close()
	err := <-sendErr
	fault := <-faults
	if err != fault || c.Err() != fault {
		t.Fatalf("Send returned %v, fault %v, Err %v", err, fault, c.Err())
	}
}
