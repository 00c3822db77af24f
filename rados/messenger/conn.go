package messenger

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rados/msgr2"
)

// sendQueueLen is how many messages Send can queue before it blocks.
const sendQueueLen = 128

// The writer sends up to maxBatch queued messages (and at most about
// maxBatchBytes of payload) with one writev.
const (
	maxBatch      = 32
	maxBatchBytes = 1 << 20
)

// Conn is one msgr2.1 client connection: one reader and one writer
// goroutine. Its methods are safe for concurrent use.
type Conn struct {
	cfg      Config
	nc       net.Conn
	br       *bufio.Reader
	rd       *msgr2.Reader
	wr       *msgr2.Writer
	peer     PeerInfo
	peerType entity.Type
	local    entity.Addr

	sendMu  sync.Mutex
	outSeq  uint64
	sendq   chan *Message
	poke    chan struct{} // reader → writer: keepalive ack pending
	inSeq   atomic.Uint64 // last message sequence received
	kaStamp atomic.Pointer[time.Time]

	clock    clock
	epoch    time.Time
	lastRecv atomic.Int64 // nanoseconds since epoch (monotonic)

	done      chan struct{}
	failOnce  sync.Once
	err       error
	exited    sync.WaitGroup
	lastKAAck atomic.Pointer[time.Time]
}

// Dial connects to cfg.Addr, negotiates the banner, HELLO, authentication
// (via cfg.Auth), AUTH_SIGNATURE and CLIENT_IDENT/SERVER_IDENT, and returns
// an open connection. Errors are *OpError values naming the address
// dialled and wrap one of the package's sentinel errors, a net error or
// the context's error.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	return dial(ctx, cfg)
}

func newConn(cfg Config, nc net.Conn) *Conn {
	return &Conn{
		cfg:   cfg,
		nc:    nc,
		br:    bufio.NewReaderSize(nc, 64<<10),
		wr:    msgr2.NewWriter(),
		sendq: make(chan *Message, sendQueueLen),
		poke:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
}

// Send queues m for sending; it returns when m is queued, the connection
// fails (ErrClosed or the fault) or ctx ends. The messenger assigns Seq.
// The connection keeps references to m's slices until m is written; do
// not modify them after Send.
func (c *Conn) Send(ctx context.Context, m *Message) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	select {
	case <-c.done:
		return c.err
	default:
	}
	c.outSeq++
	m.Seq = c.outSeq
	select {
	case c.sendq <- m:
		return nil
	case <-c.done:
		c.outSeq--
		return c.err
	case <-ctx.Done():
		c.outSeq--
		return context.Cause(ctx)
	}
}

// Peer returns what the server told us in the handshake.
func (c *Conn) Peer() PeerInfo { return c.peer }

// LocalAddr returns the address we identified as in CLIENT_IDENT (type
// any, our IP as the peer sees it, port 0, our nonce).
func (c *Conn) LocalAddr() entity.Addr { return c.local }

// RemoteAddr returns the address dialled.
func (c *Conn) RemoteAddr() entity.Addr { return c.cfg.Addr }

// LastKeepaliveAck returns the stamp of the last KEEPALIVE2_ACK received
// (zero if none).
func (c *Conn) LastKeepaliveAck() time.Time {
	if t := c.lastKAAck.Load(); t != nil {
		return *t
	}
	return time.Time{}
}

// Done is closed when the connection has failed or been closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns the fault that ended the connection (nil while open,
// ErrClosed after Close).
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Close shuts the connection down; it does not call OnFault.
func (c *Conn) Close() error {
	c.fail(ErrClosed, true)
	return nil
}

// fail ends the connection once. byClose suppresses OnFault.
func (c *Conn) fail(err error, byClose bool) {
	c.failOnce.Do(func() {
		if !byClose && !errors.Is(err, ErrClosed) {
			var oe *OpError
			if !errors.As(err, &oe) {
				err = &OpError{Op: "read", Addr: c.cfg.Addr, Err: err}
			}
		}
		c.err = err
		close(c.done)
		c.nc.Close()
		if !byClose && c.cfg.OnFault != nil {
			go func() {
				c.exited.Wait()
				c.cfg.OnFault(err)
			}()
		}
	})
}

func (c *Conn) opFail(op string, err error) {
	select {
	case <-c.done:
		return // already failed; this error is a consequence
	default:
	}
	c.fail(&OpError{Op: op, Addr: c.cfg.Addr, Err: err}, false)
}

func (c *Conn) now() time.Duration { return c.clock.Now().Sub(c.epoch) }

func (c *Conn) start() {
	c.epoch = c.clock.Now()
	c.lastRecv.Store(0)
	c.wr.SetDeferCRC(true)
	if rx := c.cfg.RxBuffer; rx != nil {
		c.rd.SetDataBuffer(func(p *msgr2.Preamble, seg0 []byte, n int) ([]byte, func()) {
			var h msgr2.MessageHeader
			if p.Tag != msgr2.TagMessage || h.Decode(seg0) != nil {
				return nil, nil // the read loop reports a bad header
			}
			return rx(h.Type, h.Tid, n)
		})
	}
	c.exited.Add(2)
	go c.readLoop()
	go c.writeLoop()
}

func (c *Conn) signal() {
	select {
	case c.poke <- struct{}{}:
	default:
	}
}

func (c *Conn) readLoop() {
	defer c.exited.Done()
	var f msgr2.Frame
	var hdr msgr2.MessageHeader
	for {
		if err := c.rd.ReadFrame(&f); err != nil {
			c.opFail("read", readErr(err))
			return
		}
		c.lastRecv.Store(int64(c.now()))
		if f.Aborted {
			continue
		}
		switch f.Tag() {
		case msgr2.TagMessage:
			if err := hdr.Decode(f.Segments[0]); err != nil {
				c.opFail("read", protoErr(err))
				return
			}
			in := c.inSeq.Load()
			if hdr.Seq <= in {
				continue // old message, already seen
			}
			if hdr.Seq != in+1 {
				c.opFail("read", fmt.Errorf("%w: message seq %d, expected %d", ErrProtocol, hdr.Seq, in+1))
				return
			}
			c.inSeq.Store(hdr.Seq)
			m := &Message{
				Type:          hdr.Type,
				Version:       hdr.Version,
				CompatVersion: hdr.CompatVersion,
				Priority:      hdr.Priority,
				Tid:           hdr.Tid,
				Seq:           hdr.Seq,
				Flags:         hdr.Flags,
				DataOff:       hdr.DataOff,
				Front:         f.Segments[1],
				Middle:        f.Segments[2],
				Data:          f.Segments[3],
			}
			if c.cfg.Dispatch != nil {
				select {
				case <-c.done:
					return
				default:
				}
				c.cfg.Dispatch(m)
			}
			// No ACK frame: on a lossy session the server keeps nothing
			// for replay, so it has no use for one (librados' ProtocolV2
			// acks only lossless sessions). The sequence rides along in
			// our next message header.
		case msgr2.TagKeepalive2:
			var ka msgr2.Keepalive2
			if err := ka.Decode(f.Segments[0]); err != nil {
				c.opFail("read", protoErr(err))
				return
			}
			c.kaStamp.Store(&ka.Stamp)
			c.signal()
		case msgr2.TagKeepalive2Ack:
			var ka msgr2.Keepalive2Ack
			if err := ka.Decode(f.Segments[0]); err != nil {
				c.opFail("read", protoErr(err))
				return
			}
			c.lastKAAck.Store(&ka.Stamp)
			c.event("keepalive_ack")
		case msgr2.TagAck:
			var a msgr2.Ack
			if err := a.Decode(f.Segments[0]); err != nil {
				c.opFail("read", protoErr(err))
				return
			}
			// Lossy session: nothing is kept for replay.
		case msgr2.TagSessionReset, msgr2.TagSessionRetry, msgr2.TagSessionRetryGlobal, msgr2.TagSessionReconnectOK:
			c.opFail("read", protoErr(msgr2.DecodeSessionFrame(f.Tag(), f.Segments[0])))
			return
		default:
			c.opFail("read", fmt.Errorf("%w: unexpected %s on an open connection", ErrProtocol, f.Tag()))
			return
		}
	}
}

// readErr classifies a frame read error.
func readErr(err error) error {
	for _, e := range []error{msgr2.ErrBadCRC, msgr2.ErrBadPreamble, msgr2.ErrTooLarge, msgr2.ErrAuthTag,
		msgr2.ErrBadEpilogue, msgr2.ErrCompressed, msgr2.ErrBadPayload} {
		if errors.Is(err, e) {
			return protoErr(err)
		}
	}
	return err
}

func (c *Conn) writeLoop() {
	defer c.exited.Done()
	tick, stop := c.clock.Ticker(c.cfg.KeepaliveInterval)
	defer stop()
	var hdr [msgr2.MessageHeaderLen]byte // copied by Append
	var ctrl [16]byte
	// WriteTo consumes the net.Buffers it is called on; nb is a copy of
	// the slice header, so the buffer lists themselves are reused.
	var nb net.Buffers
	write := func(b [][]byte) error {
		// A peer that stops reading must not block the writer forever
		// (the keepalive check runs on this goroutine).
		c.nc.SetWriteDeadline(time.Now().Add(c.cfg.KeepaliveTimeout))
		nb = b
		_, err := nb.WriteTo(c.nc)
		return err
	}
	frame := func(tag msgr2.Tag, segs ...[]byte) error {
		b, err := c.wr.Frame(tag, segs...)
		if err != nil {
			return err
		}
		return c.wr.Emit(b, write)
	}
	var out [][]byte
	appendMsg := func(m *Message, ack uint64) error {
		h := msgr2.MessageHeader{
			Seq:           m.Seq,
			Tid:           m.Tid,
			Type:          m.Type,
			Priority:      m.Priority,
			Version:       m.Version,
			DataOff:       m.DataOff,
			AckSeq:        ack,
			Flags:         m.Flags,
			CompatVersion: m.CompatVersion,
		}
		if h.Priority == 0 {
			h.Priority = msgr2.PriorityDefault
		}
		h.Put(hdr[:])
		var err error
		out, err = c.wr.Append(out, msgr2.TagMessage, hdr[:], m.Front, m.Middle, m.Data)
		return err
	}
	for {
		select {
		case <-c.done:
			return
		case m := <-c.sendq:
			// Send this message and whatever else is already queued (up
			// to a bound) with one writev.
			in := c.inSeq.Load()
			c.wr.Reset()
			out = out[:0]
			err := appendMsg(m, in)
			size := len(m.Front) + len(m.Middle) + len(m.Data)
		batch:
			for n := 1; err == nil && n < maxBatch && size < maxBatchBytes; n++ {
				select {
				case m = <-c.sendq:
					err = appendMsg(m, in)
					size += len(m.Front) + len(m.Middle) + len(m.Data)
				default:
					break batch
				}
			}
			if err == nil {
				// Large payloads go out in chunks, their crcs summed
				// as they go (msgr2.Writer.SetDeferCRC).
				err = c.wr.Emit(out, write)
			}
			if err != nil {
				c.opFail("write", err)
				return
			}
		case <-c.poke:
			if st := c.kaStamp.Swap(nil); st != nil {
				ka := msgr2.Keepalive2Ack{Stamp: *st}
				if err := frame(msgr2.TagKeepalive2Ack, ka.Encode(ctrl[:0])); err != nil {
					c.opFail("write", err)
					return
				}
			}
		case <-tick:
			idle := c.now() - time.Duration(c.lastRecv.Load())
			if idle >= c.cfg.KeepaliveTimeout {
				c.opFail("keepalive", fmt.Errorf("%w: nothing received for %v", ErrKeepalive, idle.Round(time.Millisecond)))
				return
			}
			ka := msgr2.Keepalive2{Stamp: c.clock.Now()}
			if err := frame(msgr2.TagKeepalive2, ka.Encode(ctrl[:0])); err != nil {
				c.opFail("write", err)
				return
			}
			c.event("keepalive_sent")
		}
	}
}
