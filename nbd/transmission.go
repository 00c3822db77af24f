package nbd

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/csi-gorbd/csi-gorbd/nbd/qos"
)

// request is one transmission-phase request on its way from the reader
// through a worker to the writer, which turns it into the reply. Requests
// and their payload buffers are pooled.
type request struct {
	requestHeader
	buf    *[]byte   // payload: write data, or read result
	charge int64     // bytes charged to the in-flight budget
	errno  Errno     // set by validation or execution
	start  time.Time // when it was handed to the workers (only with an Observer)
}

var requestPool = sync.Pool{New: func() any { return new(request) }}

// conn is the transmission phase of one connection.
type conn struct {
	nc   net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	exp  *Export
	opts Options

	minBlock   uint32
	maxPayload uint32
	fastZero   [2]bool // indexed by NO_HOLE
	lim        *qos.Limiter
	obs        Observer

	// bctx is handed to the backend: it survives the cancellation of the
	// serving context (in-flight requests finish) and is cancelled when
	// the connection fails or the drain timeout expires.
	bctx    context.Context
	bcancel context.CancelCauseFunc
	// stopRead is closed to make the reader give up waiting for budget.
	stopRead  chan struct{}
	abortOnce sync.Once
	abortErr  error

	budget  *inflight // this connection's payload bytes in flight
	shared  *inflight // the export's, shared with its other connections (nil: none)
	reqs    chan *request
	replies chan *request
	hdr     [32]byte // writer scratch
}

func newConn(nc net.Conn, br *bufio.Reader, bw *bufio.Writer, exp *Export, opts Options) *conn {
	c := &conn{
		nc: nc, br: br, bw: bw, exp: exp, opts: opts,
		minBlock:   exp.minBlock(),
		maxPayload: exp.maxPayload(),
		lim:        exp.Limiter,
		obs:        exp.Observer,
		stopRead:   make(chan struct{}),
		budget:     newInflight(opts.MaxInFlight),
		reqs:       make(chan *request, opts.Workers),
		replies:    make(chan *request, 2*opts.Workers),
	}
	if fz, ok := exp.Backend.(FastZeroer); ok {
		c.fastZero[0], c.fastZero[1] = fz.FastZero(false), fz.FastZero(true)
	}
	return c
}

// abort tears the connection down after a fatal error: the reader stops,
// backend calls are cancelled, blocked socket I/O returns.
func (c *conn) abort(err error) {
	c.abortOnce.Do(func() {
		c.abortErr = err
		close(c.stopRead)
		c.bcancel(err)
		c.nc.SetDeadline(time.Now())
	})
}

func (c *conn) run(ctx context.Context) error {
	c.bctx, c.bcancel = context.WithCancelCause(context.WithoutCancel(ctx))
	defer c.bcancel(nil)

	// Graceful shutdown: stop reading at once, give in-flight requests
	// DrainTimeout to finish, then abort.
	done := make(chan struct{})
	defer close(done)
	stop := context.AfterFunc(ctx, func() {
		c.nc.SetReadDeadline(time.Now())
		t := time.NewTimer(c.opts.DrainTimeout)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			c.abort(context.Cause(ctx))
		}
	})
	defer stop()

	var workers sync.WaitGroup
	for range c.opts.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			c.work()
		}()
	}
	writeErr := make(chan error, 1)
	go func() { writeErr <- c.write() }()

	rerr := c.read(ctx)
	close(c.reqs)
	workers.Wait()
	close(c.replies)
	werr := <-writeErr

	switch {
	case rerr != nil && ctx.Err() != nil && isTimeout(rerr):
		rerr = nil // our own read deadline: shutdown
	case rerr != nil && c.abortErr != nil:
		rerr = c.abortErr
	}
	if rerr == nil && werr != nil && ctx.Err() == nil {
		return werr
	}
	return rerr
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// read is the reader loop: it decodes requests, reads write payloads into
// pooled buffers and hands requests to the workers. It returns nil on
// NBD_CMD_DISC or EOF between requests.
func (c *conn) read(ctx context.Context) error {
	var hdr [requestSize]byte
	for {
		if ctx.Err() != nil {
			return nil
		}
		if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
			if err == io.EOF {
				return nil
			}
			if err == io.ErrUnexpectedEOF {
				return protoErrorf("transmission", "connection closed inside a request header")
			}
			return err
		}
		h, err := parseRequest(hdr[:])
		if err != nil {
			return err
		}
		if h.typ == cmdDisc {
			return nil
		}
		r := requestPool.Get().(*request)
		*r = request{requestHeader: h}
		r.errno = c.validate(&r.requestHeader)

		switch {
		case h.typ == cmdWrite && r.errno != 0:
			// Skip the payload without buffering it, as long as that is
			// safe; a huge length is either a broken or a hostile client.
			if h.length > max(2*c.maxPayload, DefaultMaxPayload) {
				requestPool.Put(r)
				return protoErrorf("transmission", "write of %d bytes exceeds the maximum payload", h.length)
			}
			if _, err := io.CopyN(io.Discard, c.br, int64(h.length)); err != nil {
				requestPool.Put(r)
				return truncated(err)
			}
		case h.typ == cmdWrite && h.length > 0:
			r.charge = int64(h.length)
			if !c.acquire(r.charge) {
				requestPool.Put(r)
				return nil
			}
			r.buf = getBuf(int(h.length))
			if _, err := io.ReadFull(c.br, *r.buf); err != nil {
				c.release(r.charge)
				putBuf(r.buf)
				requestPool.Put(r)
				return truncated(err)
			}
		case h.typ == cmdRead && r.errno == 0 && h.length > 0:
			r.charge = int64(h.length)
			if !c.acquire(r.charge) {
				requestPool.Put(r)
				return nil
			}
		}
		if c.obs != nil {
			if op, ok := opOf(h.typ); ok {
				r.start = time.Now()
				c.obs.Begin(op)
			}
		}
		c.reqs <- r
	}
}

// acquire charges n payload bytes to the connection's budget, then to the
// export's; false when the reader is told to stop while waiting.
func (c *conn) acquire(n int64) bool {
	if !c.budget.acquire(c.stopRead, n) {
		return false
	}
	if c.shared != nil && !c.shared.acquire(c.stopRead, n) {
		c.budget.release(n)
		return false
	}
	return true
}

// release returns what acquire charged.
func (c *conn) release(n int64) {
	c.budget.release(n)
	if c.shared != nil {
		c.shared.release(n)
	}
}

func truncated(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return protoErrorf("transmission", "connection closed inside a write payload")
	}
	return err
}

// validate checks a request against the export without touching the
// backend; a nonzero result is sent as the reply.
func (c *conn) validate(h *requestHeader) Errno {
	switch h.typ {
	case cmdRead, cmdWrite, cmdTrim, cmdWriteZeroes:
	case cmdFlush:
		return 0
	default:
		return EINVAL
	}
	if c.exp.ReadOnly && h.typ != cmdRead {
		return EPERM
	}
	size := uint64(c.exp.Backend.Size())
	end := h.offset + uint64(h.length)
	if end < h.offset || end > size {
		return EINVAL
	}
	if c.minBlock > 1 && (h.offset|uint64(h.length))&uint64(c.minBlock-1) != 0 {
		return EINVAL
	}
	if (h.typ == cmdRead || h.typ == cmdWrite) && h.length > c.maxPayload {
		return EINVAL
	}
	if h.typ == cmdWriteZeroes && h.flags&cmdFlagFastZero != 0 {
		noHole := 0
		if h.flags&cmdFlagNoHole != 0 {
			noHole = 1
		}
		if !c.fastZero[noHole] {
			return ENOTSUP
		}
	}
	return 0
}

// work executes requests until the reader closes the queue. A limited
// request first waits for the export's Limiter, in this worker.
func (c *conn) work() {
	for r := range c.reqs {
		var throttled time.Duration
		if r.errno == 0 && r.length > 0 || r.errno == 0 && r.typ == cmdFlush {
			var err error
			if c.lim != nil {
				throttled, err = c.throttle(r)
			}
			if err == nil {
				err = c.gated(r)
			}
			r.errno = ErrnoOf(err)
		}
		if c.obs != nil && !r.start.IsZero() {
			op, _ := opOf(r.typ)
			c.obs.End(op, r.length, time.Since(r.start), throttled, r.errno)
		}
		c.replies <- r
	}
}

// throttle waits until the Limiter lets r run.
func (c *conn) throttle(r *request) (time.Duration, error) {
	op, ok := opOf(r.typ)
	if !ok || !qosOps[op].limited {
		return 0, nil
	}
	return c.lim.Wait(c.bctx, qosOps[op].op, uint64(r.length))
}

func (c *conn) execute(r *request) error {
	b := c.exp.Backend
	off := int64(r.offset)
	fua := r.flags&cmdFlagFUA != 0
	switch r.typ {
	case cmdRead:
		r.buf = getBuf(int(r.length))
		return b.ReadAt(c.bctx, *r.buf, off)
	case cmdWrite:
		return b.WriteAt(c.bctx, *r.buf, off, fua)
	case cmdFlush:
		return b.Flush(c.bctx)
	case cmdTrim:
		if err := b.Discard(c.bctx, off, int64(r.length)); err != nil {
			return err
		}
	case cmdWriteZeroes:
		if err := b.WriteZeroes(c.bctx, off, int64(r.length), r.flags&cmdFlagNoHole != 0); err != nil {
			return err
		}
	}
	if fua {
		return b.Flush(c.bctx)
	}
	return nil
}

// write is the writer loop: it sends replies in completion order, flushing
// the buffered writer whenever no further reply is ready, and recycles the
// requests. After a write error it keeps draining without writing.
func (c *conn) write() error {
	var err error
	for r := range c.replies {
		if err == nil {
			err = c.writeReply(r)
			if err == nil && len(c.replies) == 0 {
				err = c.bw.Flush()
			}
			if err != nil {
				c.abort(err)
			}
		}
		c.release(r.charge)
		if r.buf != nil {
			putBuf(r.buf)
		}
		*r = request{}
		requestPool.Put(r)
	}
	if err == nil {
		err = c.bw.Flush()
	}
	return err
}

func (c *conn) writeReply(r *request) error {
	var data []byte
	if r.typ == cmdRead && r.errno == 0 && r.buf != nil {
		data = *r.buf
	}
	var h []byte
	switch {
	case !c.opts.Structured:
		h = putSimpleReply(c.hdr[:], r.errno, r.cookie)
	case r.errno != 0:
		h = putErrorChunk(c.hdr[:], replyFlagDone, r.cookie, r.errno)
	case data != nil:
		h = putOffsetDataHeader(c.hdr[:], replyFlagDone, r.cookie, r.offset, uint32(len(data)))
	default:
		h = putChunkHeader(c.hdr[:], replyFlagDone, replyNone, r.cookie, 0)
	}
	if _, err := c.bw.Write(h); err != nil {
		return err
	}
	if data != nil {
		_, err := c.bw.Write(data)
		return err
	}
	return nil
}
