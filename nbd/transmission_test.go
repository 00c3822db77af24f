package nbd

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// serveKernel serves b like the kernel path does: transmission only.
func serveKernel(t *testing.T, exp *Export, opts *Options) (*rawClient, <-chan error, context.CancelFunc) {
	return serveOne(t, func(ctx context.Context, c net.Conn) error {
		return ServeTransmission(ctx, c, exp, opts)
	})
}

func TestTransmissionSimple(t *testing.T) {
	b := newCounting(1 << 20)
	cl, errc, _ := serveKernel(t, &Export{Backend: b}, nil)

	data := make([]byte, 8192)
	rand.NewChaCha8([32]byte{1}).Read(data)
	cl.request(cmdWrite, cmdFlagFUA, 1, 4096, uint32(len(data)), data)
	if e, c := cl.simpleReply(); e != 0 || c != 1 {
		t.Fatalf("write: %d %d", e, c)
	}
	cl.request(cmdRead, 0, 2, 4096, 8192, nil)
	if e, c := cl.simpleReply(); e != 0 || c != 2 {
		t.Fatalf("read: %d %d", e, c)
	}
	if got := cl.read(8192); !bytes.Equal(got, data) {
		t.Fatal("read back differs")
	}
	cl.request(cmdTrim, 0, 3, 4096, 4096, nil)
	cl.request(cmdWriteZeroes, cmdFlagNoHole, 4, 8192, 4096, nil)
	cl.request(cmdFlush, 0, 5, 0, 0, nil)
	for range 3 {
		if e, _ := cl.simpleReply(); e != 0 {
			t.Fatalf("errno %d", e)
		}
	}
	cl.request(cmdRead, 0, 6, 4096, 8192, nil)
	cl.simpleReply()
	if got := cl.read(8192); !bytes.Equal(got, make([]byte, 8192)) {
		t.Fatal("trim/write-zeroes did not zero")
	}
	// FAST_ZERO: memory punches holes fast, but not with NO_HOLE.
	cl.request(cmdWriteZeroes, cmdFlagFastZero, 7, 0, 4096, nil)
	if e, _ := cl.simpleReply(); e != 0 {
		t.Fatalf("fast zero: %d", e)
	}
	calls := b.calls.Load()
	cl.request(cmdWriteZeroes, cmdFlagFastZero|cmdFlagNoHole, 8, 0, 4096, nil)
	if e, _ := cl.simpleReply(); e != ENOTSUP {
		t.Fatalf("fast zero with no-hole: %d, want ENOTSUP", e)
	}
	if b.calls.Load() != calls {
		t.Fatal("backend called for a failed fast zero")
	}
	// Zero-length requests succeed without touching the backend.
	cl.request(cmdRead, 0, 9, 0, 0, nil)
	cl.request(cmdWrite, 0, 10, 0, 0, nil)
	for range 2 {
		if e, _ := cl.simpleReply(); e != 0 {
			t.Fatalf("zero length: %d", e)
		}
	}
	if b.calls.Load() != calls {
		t.Fatal("backend called for zero-length requests")
	}
	cl.request(cmdDisc, 0, 11, 0, 0, nil)
	cl.expectClosed()
	if err := waitErr(t, errc); err != nil {
		t.Fatal(err)
	}
}

// TestRejectedRequests: invalid requests get an errno, the backend is not
// called, and the connection carries on.
func TestRejectedRequests(t *testing.T) {
	for _, structured := range []bool{false, true} {
		b := newCounting(1 << 20)
		exp := &Export{Backend: b, MaxPayload: 64 << 10, MinBlockSize: 512, PreferredBlockSize: 4096}
		cl, errc, _ := serveKernel(t, exp, &Options{Structured: structured})
		cases := []struct {
			name   string
			typ    uint16
			flags  uint16
			off    uint64
			length uint32
			send   int // payload bytes to send
			want   Errno
		}{
			{"read past end", cmdRead, 0, 1 << 20, 512, 0, EINVAL},
			{"read straddling end", cmdRead, 0, 1<<20 - 512, 1024, 0, EINVAL},
			{"offset overflow", cmdRead, 0, 1<<64 - 512, 1024, 0, EINVAL},
			{"read oversize", cmdRead, 0, 0, 128 << 10, 0, EINVAL},
			{"read unaligned", cmdRead, 0, 100, 512, 0, EINVAL},
			{"write past end", cmdWrite, 0, 1 << 20, 512, 512, EINVAL},
			{"write oversize skipped", cmdWrite, 0, 0, 128 << 10, 128 << 10, EINVAL},
			{"trim past end", cmdTrim, 0, 0, 2 << 20, 0, EINVAL},
			{"zeroes overflow", cmdWriteZeroes, 0, 1 << 63, 1 << 31, 0, EINVAL},
			{"cache", cmdCache, 0, 0, 512, 0, EINVAL},
			{"block status", cmdBlockStatus, 0, 0, 512, 0, EINVAL},
			{"unknown", 0x7777, 0, 0, 0, 0, EINVAL},
		}
		for i, c := range cases {
			cl.request(c.typ, c.flags, uint64(i), c.off, c.length, make([]byte, c.send))
			var errno Errno
			var cookie uint64
			if structured {
				ch := cl.chunk()
				if ch.typ != replyError || ch.flags != replyFlagDone || len(ch.payload) != 6 {
					t.Fatalf("%s: chunk %+v", c.name, ch)
				}
				errno, cookie = Errno(binary.BigEndian.Uint32(ch.payload)), ch.cookie
			} else {
				errno, cookie = cl.simpleReply()
			}
			if errno != c.want || cookie != uint64(i) {
				t.Errorf("%s (structured %v): errno %d cookie %d, want %d", c.name, structured, errno, cookie, c.want)
			}
		}
		if n := b.calls.Load(); n != 0 {
			t.Errorf("backend called %d times", n)
		}
		cl.request(cmdFlush, 0, 100, 0, 0, nil)
		if structured {
			if ch := cl.chunk(); ch.typ != replyNone || ch.cookie != 100 {
				t.Fatalf("flush chunk %+v", ch)
			}
		} else if e, _ := cl.simpleReply(); e != 0 {
			t.Fatal(e)
		}
		cl.c.Close()
		if err := waitErr(t, errc); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadOnly(t *testing.T) {
	b := newCounting(1 << 20)
	cl, errc, _ := serveKernel(t, &Export{Backend: b, ReadOnly: true}, nil)
	cl.request(cmdWrite, 0, 1, 0, 4096, make([]byte, 4096))
	cl.request(cmdTrim, 0, 2, 0, 4096, nil)
	cl.request(cmdWriteZeroes, 0, 3, 0, 4096, nil)
	for range 3 {
		if e, _ := cl.simpleReply(); e != EPERM {
			t.Fatalf("errno %d, want EPERM", e)
		}
	}
	cl.request(cmdRead, 0, 4, 0, 4096, nil)
	if e, _ := cl.simpleReply(); e != 0 {
		t.Fatal(e)
	}
	cl.read(4096)
	if b.calls.Load() != 1 {
		t.Fatalf("backend calls %d, want 1", b.calls.Load())
	}
	cl.c.Close()
	waitErr(t, errc)
}

// TestTransmissionHangups: input that ends the connection.
func TestTransmissionHangups(t *testing.T) {
	cases := map[string]func(cl *rawClient){
		"bad magic": func(cl *rawClient) { cl.write(bytes.Repeat([]byte{0xee}, 28)) },
		"huge write": func(cl *rawClient) {
			cl.request(cmdWrite, 0, 1, 0, 0xffffffff, nil)
		},
		"truncated header": func(cl *rawClient) {
			cl.write(appendRequest(nil, requestHeader{typ: cmdRead, length: 512})[:20])
			cl.c.(*net.UnixConn).CloseWrite()
		},
		"truncated payload": func(cl *rawClient) {
			cl.request(cmdWrite, 0, 1, 0, 4096, make([]byte, 100))
			cl.c.(*net.UnixConn).CloseWrite()
		},
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			cl, errc, _ := serveKernel(t, &Export{Backend: newCounting(1 << 20)}, nil)
			f(cl)
			cl.expectClosed()
			if err := waitErr(t, errc); err == nil {
				t.Fatal("ServeTransmission returned nil")
			}
		})
	}
}

// TestBadMagicAfterPipelined: requests before a bad magic are answered
// before the hang-up.
func TestBadMagicAfterPipelined(t *testing.T) {
	cl, errc, _ := serveKernel(t, &Export{Backend: newCounting(1 << 20)}, nil)
	var b []byte
	for i := range 10 {
		b = appendRequest(b, requestHeader{typ: cmdRead, cookie: uint64(i), offset: uint64(i) * 4096, length: 4096})
	}
	b = append(b, make([]byte, 28)...)
	cl.write(b)
	seen := map[uint64]bool{}
	for range 10 {
		e, c := cl.simpleReply()
		if e != 0 {
			t.Fatal(e)
		}
		cl.read(4096)
		seen[c] = true
	}
	if len(seen) != 10 {
		t.Fatalf("cookies %v", seen)
	}
	cl.expectClosed()
	if _, ok := waitErr(t, errc).(*ProtocolError); !ok {
		t.Fatal("want a ProtocolError")
	}
}

// TestInFlightBound: with writes held in the backend, the server stops
// reading once MaxInFlight bytes are buffered.
func TestInFlightBound(t *testing.T) {
	b := newCounting(16 << 20)
	b.gate = make(chan struct{})
	b.entered = make(chan struct{}, 100)
	cl, errc, _ := serveKernel(t, &Export{Backend: b}, &Options{Workers: 16, MaxInFlight: 1 << 20})
	const n, size = 12, 256 << 10
	go func() {
		for i := range n {
			b := appendRequest(nil, requestHeader{typ: cmdWrite, cookie: uint64(i), offset: uint64(i) * size, length: size})
			if _, err := cl.c.Write(append(b, make([]byte, size)...)); err != nil {
				return
			}
		}
	}()
	for range 4 {
		<-b.entered
	}
	select {
	case <-b.entered:
		t.Fatal("a fifth 256 KiB write started with a 1 MiB budget")
	case <-time.After(300 * time.Millisecond):
	}
	for range n {
		b.gate <- struct{}{}
		if e, _ := cl.simpleReply(); e != 0 {
			t.Fatal(e)
		}
	}
	if b.top > 4 {
		t.Fatalf("%d writes in the backend at once", b.top)
	}
	cl.c.Close()
	waitErr(t, errc)
}

// TestPipelinedConcurrent: requests are executed concurrently, so replies
// can overtake a blocked one.
func TestPipelinedConcurrent(t *testing.T) {
	b := newCounting(1 << 20)
	b.gate = make(chan struct{})
	cl, errc, _ := serveKernel(t, &Export{Backend: b}, nil)
	cl.request(cmdWrite, 0, 1, 0, 512, make([]byte, 512)) // blocks in the backend
	cl.request(cmdRead, 0, 2, 0, 512, nil)
	if e, c := cl.simpleReply(); e != 0 || c != 2 {
		t.Fatalf("first reply %d cookie %d, want the read", e, c)
	}
	cl.read(512)
	b.gate <- struct{}{}
	if _, c := cl.simpleReply(); c != 1 {
		t.Fatalf("cookie %d", c)
	}
	cl.c.Close()
	waitErr(t, errc)
}

// TestGracefulShutdown: cancelling the context lets an in-flight request
// finish and reply, then closes.
func TestGracefulShutdown(t *testing.T) {
	b := newCounting(1 << 20)
	b.gate = make(chan struct{})
	b.entered = make(chan struct{}, 1)
	cl, errc, cancel := serveKernel(t, &Export{Backend: b}, nil)
	cl.request(cmdWrite, 0, 42, 0, 512, make([]byte, 512))
	<-b.entered
	cancel()
	time.Sleep(50 * time.Millisecond) // let the reader stop; not a correctness condition
	b.gate <- struct{}{}
	if e, c := cl.simpleReply(); e != 0 || c != 42 {
		t.Fatalf("reply %d %d", e, c)
	}
	cl.expectClosed()
	if err := waitErr(t, errc); err != nil {
		t.Fatalf("ServeTransmission: %v", err)
	}
}

// TestDrainTimeout: a backend that never returns is cancelled after the
// drain timeout.
func TestDrainTimeout(t *testing.T) {
	b := newCounting(1 << 20)
	b.gate = make(chan struct{}) // never released
	b.entered = make(chan struct{}, 1)
	cl, errc, cancel := serveKernel(t, &Export{Backend: b}, &Options{DrainTimeout: 100 * time.Millisecond})
	cl.request(cmdWrite, 0, 42, 0, 512, make([]byte, 512))
	<-b.entered
	cancel()
	cl.expectClosed()
	waitErr(t, errc)
}
