package nbd

import (
	"bufio"
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// serveAll runs s.Serve on a unix socket until the test ends; dial opens
// client connections to it.
func serveAll(t *testing.T, s *Server) (dial func() *rawClient) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := waitErr(t, done); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return func() *rawClient {
		t.Helper()
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(20 * time.Second))
		return &rawClient{t: t, c: c, br: bufio.NewReader(c)}
	}
}

// TestMaxConnsPerExport: an export at its connection cap refuses the next
// NBD_OPT_GO with NBD_REP_ERR_POLICY (the client may choose another
// export) and hangs up on NBD_OPT_EXPORT_NAME; a closed connection frees
// its place; other exports are not affected.
func TestMaxConnsPerExport(t *testing.T) {
	s := newTestServer(t, &Export{Name: "a", Backend: newCounting(1 << 20)}, &Export{Name: "b", Backend: newCounting(1 << 20)})
	s.MaxConnsPerExport = 2
	dial := serveAll(t, s)
	first, second := dial(), dial()
	first.goExport("a", false)
	second.goExport("a", false)

	third := dial()
	third.greet(clientFixedNewstyle | clientNoZeroes)
	third.option(optGo, appendInfoRequest(nil, "a"))
	third.expectReply(optGo, repErrPolicy)
	third.option(optInfo, appendInfoRequest(nil, "a")) // INFO does not use the export
	for rep := third.optReply(); rep.typ != repAck; rep = third.optReply() {
		if rep.typ != repInfo {
			t.Fatalf("NBD_OPT_INFO at the cap: %#x %q", rep.typ, rep.data)
		}
	}
	third.option(optGo, appendInfoRequest(nil, "b"))
	for rep := third.optReply(); rep.typ != repAck; rep = third.optReply() {
		if rep.typ != repInfo {
			t.Fatalf("NBD_OPT_GO b: %#x %q", rep.typ, rep.data)
		}
	}

	// NBD_OPT_EXPORT_NAME has no error reply: the server hangs up.
	fourth, errc, _ := serveOne(t, s.ServeConn)
	fourth.greet(clientFixedNewstyle | clientNoZeroes)
	fourth.option(optExportName, []byte("a"))
	fourth.expectClosed()
	if err := waitErr(t, errc); !errors.Is(err, ErrTooManyConns) {
		t.Fatalf("ServeConn at the cap: %v", err)
	}

	// A disconnect frees a place.
	first.request(cmdDisc, 0, 1, 0, 0, nil)
	first.expectClosed()
	deadline := time.Now().Add(10 * time.Second)
	for {
		fifth := dial()
		fifth.greet(clientFixedNewstyle | clientNoZeroes)
		fifth.option(optGo, appendInfoRequest(nil, "a"))
		rep := fifth.optReply()
		if rep.typ == repInfo {
			break
		}
		if rep.typ != repErrPolicy || time.Now().After(deadline) {
			t.Fatalf("after a disconnect: %#x %q", rep.typ, rep.data)
		}
		time.Sleep(10 * time.Millisecond) // the server notices the disconnect on its own goroutine
	}
}

// TestMaxInFlightPerExport: the in-flight bound of an export holds across
// its connections: with writes held in the backend, two connections with
// 1 MiB each but 1 MiB for the export get 4 writes of 256 KiB into the
// backend, not 8.
func TestMaxInFlightPerExport(t *testing.T) {
	b := newCounting(16 << 20)
	b.gate = make(chan struct{})
	b.entered = make(chan struct{}, 100)
	s := newTestServer(t, &Export{Name: "a", Backend: b})
	s.Options = Options{Workers: 16, MaxInFlight: 1 << 20}
	s.MaxInFlightPerExport = 1 << 20
	dial := serveAll(t, s)
	const perConn, size = 6, 256 << 10
	var clients []*rawClient
	for c := range 2 {
		cl := dial()
		cl.goExport("a", false)
		clients = append(clients, cl)
		go func() {
			for i := range perConn {
				h := appendRequest(nil, requestHeader{typ: cmdWrite, cookie: uint64(i), offset: uint64(c*perConn+i) * size, length: size})
				if _, err := cl.c.Write(append(h, make([]byte, size)...)); err != nil {
					return
				}
			}
		}()
	}
	for range 4 {
		<-b.entered
	}
	select {
	case <-b.entered:
		t.Fatal("a fifth 256 KiB write started with a 1 MiB budget for the export")
	case <-time.After(300 * time.Millisecond):
	}
	for range 2 * perConn {
		b.gate <- struct{}{}
	}
	for _, cl := range clients {
		for range perConn {
			if e, _ := cl.simpleReply(); e != 0 {
				t.Fatal(e)
			}
		}
	}
	if b.top > 4 {
		t.Fatalf("%d writes in the backend at once", b.top)
	}
	for _, cl := range clients {
		cl.c.Close()
	}
}
