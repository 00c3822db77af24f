package nbd

import (
	"context"
	"testing"
	"time"
)

// TestGatePauseDrainsAndHolds: Pause waits for the write at the backend
// (held there by the test) to finish, then holds every new request, on
// both connections of the export, before the backend, without failing
// it; Resume lets them through in full.
func TestGatePauseDrainsAndHolds(t *testing.T) {
	b := newCounting(1 << 20)
	b.gate = make(chan struct{})
	b.entered = make(chan struct{}, 8)
	g := &Gate{}
	exp := &Export{Backend: b, Gate: g}
	cl, errc, cancel := serveKernel(t, exp, nil)
	cl2, errc2, cancel2 := serveKernel(t, exp, nil)

	cl.request(cmdWrite, 0, 1, 0, 4096, make([]byte, 4096))
	<-b.entered // the write is at the backend

	paused := make(chan error, 1)
	go func() { paused <- g.Pause(context.Background()) }()
	select {
	case err := <-paused:
		t.Fatalf("Pause returned (%v) with a write at the backend", err)
	case <-time.After(100 * time.Millisecond):
	}
	b.gate <- struct{}{} // the write finishes
	if err := <-paused; err != nil {
		t.Fatal(err)
	}
	if e, c := cl.simpleReply(); e != 0 || c != 1 {
		t.Fatalf("the drained write: errno %d cookie %d", e, c)
	}
	if !g.Paused() {
		t.Fatal("not paused")
	}

	calls := b.calls.Load()
	cl.request(cmdRead, 0, 2, 0, 512, nil)
	cl2.request(cmdFlush, 0, 3, 0, 0, nil)
	cl2.request(cmdWrite, 0, 4, 4096, 512, make([]byte, 512))
	time.Sleep(200 * time.Millisecond)
	if n := b.calls.Load(); n != calls {
		t.Fatalf("%d backend calls while paused", n-calls)
	}
	// A pause with a deadline over an idle backend returns at once.
	ctx, c := context.WithTimeout(context.Background(), time.Second)
	if err := g.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	c()
	g.Resume() // nested: still paused
	time.Sleep(50 * time.Millisecond)
	if n := b.calls.Load(); n != calls {
		t.Fatalf("a nested Resume let %d calls through", n-calls)
	}
	close(b.gate) // writes no longer wait at the backend
	g.Resume()
	if e, c := cl.simpleReply(); e != 0 || c != 2 {
		t.Fatalf("held read: errno %d cookie %d", e, c)
	}
	cl.read(512)
	for range 2 {
		if e, c := cl2.simpleReply(); e != 0 || (c != 3 && c != 4) {
			t.Fatalf("held request: errno %d cookie %d", e, c)
		}
	}
	cancel()
	cancel2()
	if err := waitErr(t, errc); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, errc2); err != nil {
		t.Fatal(err)
	}
}

// A Pause that cannot drain in time gives up with ctx's error and leaves
// the gate closed; the connection going away releases its held request.
func TestGatePauseDeadline(t *testing.T) {
	b := newCounting(1 << 20)
	b.gate = make(chan struct{})
	b.entered = make(chan struct{}, 8)
	g := &Gate{}
	cl, errc, cancel := serveKernel(t, &Export{Backend: b, Gate: g}, &Options{DrainTimeout: 100 * time.Millisecond})
	cl.request(cmdWrite, 0, 1, 0, 4096, make([]byte, 4096))
	<-b.entered
	ctx, c := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer c()
	if err := g.Pause(ctx); err == nil {
		t.Fatal("Pause drained a stuck write")
	}
	if !g.Paused() {
		t.Fatal("a failed Pause opened the gate")
	}
	cl.request(cmdRead, 0, 2, 0, 512, nil)
	cancel() // shutdown: the stuck write is cancelled after the drain timeout, the held read fails
	waitErr(t, errc)
	g.Resume()
}
