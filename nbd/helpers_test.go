package nbd

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/nbd/memory"
)

// serveOne listens on a unix socket, serves the first connection with
// serve and returns the client end and the serve function's result. Real
// sockets (not net.Pipe) so that pipelined requests are buffered.
func serveOne(t *testing.T, serve func(ctx context.Context, c net.Conn) error) (*rawClient, <-chan error, context.CancelFunc) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		l.Close()
		if err != nil {
			errc <- err
			return
		}
		errc <- serve(ctx, c)
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); cancel() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawClient{t: t, c: c, br: bufio.NewReader(c)}, errc, cancel
}

func newTestServer(t *testing.T, exps ...*Export) *Server {
	t.Helper()
	s := &Server{}
	for _, e := range exps {
		if err := s.AddExport(e); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// waitErr returns the serve result, failing the test if it takes too long.
func waitErr(t *testing.T, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("server did not finish")
		return nil
	}
}

// rawClient speaks the NBD wire protocol byte by byte, so tests can send
// anything.
type rawClient struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func (r *rawClient) write(b []byte) {
	r.t.Helper()
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

func (r *rawClient) read(n int) []byte {
	r.t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(r.br, b); err != nil {
		r.t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

// expectClosed checks that the server hung up (EOF or reset), after
// discarding whatever it still sent.
func (r *rawClient) expectClosed() {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, r.br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		r.t.Fatal("server did not close the connection")
	}
}

// greet reads the greeting and sends client flags.
func (r *rawClient) greet(cflags uint32) {
	r.t.Helper()
	g := r.read(18)
	if binary.BigEndian.Uint64(g) != magicInit || binary.BigEndian.Uint64(g[8:]) != magicOption {
		r.t.Fatalf("bad greeting % x", g)
	}
	if f := binary.BigEndian.Uint16(g[16:]); f != flagFixedNewstyle|flagNoZeroes {
		r.t.Fatalf("handshake flags %#x", f)
	}
	r.write(binary.BigEndian.AppendUint32(nil, cflags))
}

func (r *rawClient) option(code uint32, data []byte) {
	r.t.Helper()
	r.write(append(appendOptionHeader(nil, code, uint32(len(data))), data...))
}

type optReply struct {
	code, typ uint32
	data      []byte
}

func (r *rawClient) optReply() optReply {
	r.t.Helper()
	h := r.read(20)
	if m := binary.BigEndian.Uint64(h); m != magicOptionReply {
		r.t.Fatalf("option reply magic %#x", m)
	}
	n := binary.BigEndian.Uint32(h[16:])
	if n > 1<<20 {
		r.t.Fatalf("option reply of %d bytes", n)
	}
	return optReply{binary.BigEndian.Uint32(h[8:]), binary.BigEndian.Uint32(h[12:]), r.read(int(n))}
}

// expectReply reads one option reply and checks its code and type.
func (r *rawClient) expectReply(code, typ uint32) optReply {
	r.t.Helper()
	rep := r.optReply()
	if rep.code != code || rep.typ != typ {
		r.t.Fatalf("option reply (%d, %#x %q), want (%d, %#x)", rep.code, rep.typ, rep.data, code, typ)
	}
	return rep
}

// goExport negotiates name with NBD_OPT_GO and returns size and flags.
func (r *rawClient) goExport(name string, structured bool) (uint64, TransmissionFlags) {
	r.t.Helper()
	r.greet(clientFixedNewstyle | clientNoZeroes)
	if structured {
		r.option(optStructuredReply, nil)
		r.expectReply(optStructuredReply, repAck)
	}
	r.option(optGo, appendInfoRequest(nil, name, infoBlockSize))
	var size uint64
	var flags TransmissionFlags
	for {
		rep := r.optReply()
		if rep.typ == repAck {
			return size, flags
		}
		if rep.typ != repInfo {
			r.t.Fatalf("NBD_OPT_GO: reply %#x %q", rep.typ, rep.data)
		}
		if binary.BigEndian.Uint16(rep.data) == infoExport {
			size = binary.BigEndian.Uint64(rep.data[2:])
			flags = TransmissionFlags(binary.BigEndian.Uint16(rep.data[10:]))
		}
	}
}

func (r *rawClient) request(typ, flags uint16, cookie, off uint64, length uint32, payload []byte) {
	r.t.Helper()
	b := appendRequest(nil, requestHeader{flags: flags, typ: typ, cookie: cookie, offset: off, length: length})
	r.write(append(b, payload...))
}

// simpleReply reads a simple reply header.
func (r *rawClient) simpleReply() (Errno, uint64) {
	r.t.Helper()
	h := r.read(simpleReplySize)
	if m := binary.BigEndian.Uint32(h); m != magicSimpleReply {
		r.t.Fatalf("reply magic %#x", m)
	}
	return Errno(binary.BigEndian.Uint32(h[4:])), binary.BigEndian.Uint64(h[8:])
}

type chunk struct {
	flags, typ uint16
	cookie     uint64
	payload    []byte
}

func (r *rawClient) chunk() chunk {
	r.t.Helper()
	h := r.read(chunkHeaderSize)
	if m := binary.BigEndian.Uint32(h); m != magicStructReply {
		r.t.Fatalf("chunk magic %#x", m)
	}
	n := binary.BigEndian.Uint32(h[16:])
	if n > 64<<20 {
		r.t.Fatalf("chunk of %d bytes", n)
	}
	return chunk{binary.BigEndian.Uint16(h[4:]), binary.BigEndian.Uint16(h[6:]), binary.BigEndian.Uint64(h[8:]), r.read(int(n))}
}

// countingBackend counts backend calls and can hold writes until released.
type countingBackend struct {
	*memory.Backend
	calls    atomic.Int64
	gate     chan struct{} // if non-nil, WriteAt waits for a token
	mu       sync.Mutex
	cur, top int
	entered  chan struct{} // if non-nil, gets a token per WriteAt entered
}

func newCounting(size int64) *countingBackend {
	return &countingBackend{Backend: memory.New(size)}
}

func (b *countingBackend) ReadAt(ctx context.Context, p []byte, off int64) error {
	b.calls.Add(1)
	return b.Backend.ReadAt(ctx, p, off)
}

func (b *countingBackend) WriteAt(ctx context.Context, p []byte, off int64, fua bool) error {
	b.calls.Add(1)
	b.mu.Lock()
	b.cur++
	b.top = max(b.top, b.cur)
	b.mu.Unlock()
	defer func() { b.mu.Lock(); b.cur--; b.mu.Unlock() }()
	if b.entered != nil {
		b.entered <- struct{}{}
	}
	if b.gate != nil {
		select {
		case <-b.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return b.Backend.WriteAt(ctx, p, off, fua)
}

func (b *countingBackend) Flush(ctx context.Context) error {
	b.calls.Add(1)
	return b.Backend.Flush(ctx)
}

func (b *countingBackend) Discard(ctx context.Context, off, n int64) error {
	b.calls.Add(1)
	return b.Backend.Discard(ctx, off, n)
}

func (b *countingBackend) WriteZeroes(ctx context.Context, off, n int64, noHole bool) error {
	b.calls.Add(1)
	return b.Backend.WriteZeroes(ctx, off, n, noHole)
}
