package rbd

import (
	"context"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// quiesceImage is an image with a live background context and hooks that
// record their calls: enough for the watcher side of quiesce.
type quiesceImage struct {
	img    *Image
	mu     sync.Mutex
	calls  []string
	fail   error
	cancel context.CancelFunc
}

func newQuiesceImage(t *testing.T, hold time.Duration) *quiesceImage {
	q := &quiesceImage{img: newImage(nil, "q", "id", false)}
	q.img.watch.ctx, q.cancel = context.WithCancel(context.Background())
	q.img.watch.cancel = q.cancel
	q.img.OnQuiesce(&QuiesceHooks{
		Quiesce: func(ctx context.Context) error {
			q.mu.Lock()
			defer q.mu.Unlock()
			q.calls = append(q.calls, "quiesce")
			return q.fail
		},
		Unquiesce: func(ctx context.Context) {
			q.mu.Lock()
			defer q.mu.Unlock()
			q.calls = append(q.calls, "unquiesce")
		},
		Hold: hold,
	})
	t.Cleanup(func() { q.cancel(); q.img.watch.wg.Wait() })
	return q
}

func (q *quiesceImage) seen() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.calls)
}

func (q *quiesceImage) quiesce(t *testing.T, id asyncRequestID) int32 {
	t.Helper()
	res, ok := decodeAck(q.img.handleQuiesce(q.img.watch.ctx, quiescePayload(notifyQuiesce, id)))
	if !ok {
		t.Fatal("QUIESCE answered with no ResponseMessage")
	}
	return res
}

func (q *quiesceImage) unquiesce(id asyncRequestID) {
	q.img.handleUnquiesce(quiescePayload(notifyUnquiesce, id))
	q.img.watch.wg.Wait()
}

func (q *quiesceImage) want(t *testing.T, calls ...string) {
	t.Helper()
	if got := q.seen(); !slices.Equal(got, calls) {
		t.Fatalf("hook calls %v, want %v", got, calls)
	}
}

func TestQuiesceRequests(t *testing.T) {
	q := newQuiesceImage(t, time.Hour)
	a, b := asyncRequestID{gid: 1, handle: 2, id: 3}, asyncRequestID{gid: 9, handle: 2, id: 3}
	if r := q.quiesce(t, a); r != 0 {
		t.Fatalf("QUIESCE answered %d", r)
	}
	q.want(t, "quiesce")
	// The snapshotter's retry of the same id: the same answer, no
	// second hook call.
	if r := q.quiesce(t, a); r != 0 {
		t.Fatalf("repeated QUIESCE answered %d", r)
	}
	// A second snapshotter shares the hold.
	if r := q.quiesce(t, b); r != 0 {
		t.Fatalf("second QUIESCE answered %d", r)
	}
	q.want(t, "quiesce")
	q.unquiesce(a)
	q.want(t, "quiesce")
	q.unquiesce(a) // unknown by now: ignored
	q.unquiesce(b)
	q.want(t, "quiesce", "unquiesce")
	// A new round quiesces again.
	q.quiesce(t, asyncRequestID{gid: 1, handle: 2, id: 4})
	q.want(t, "quiesce", "unquiesce", "quiesce")
}

func TestQuiesceFailure(t *testing.T) {
	q := newQuiesceImage(t, time.Hour)
	q.fail = syscall.EBUSY
	a := asyncRequestID{gid: 1, id: 1}
	if r := q.quiesce(t, a); r != -int32(syscall.EBUSY) {
		t.Fatalf("failed quiesce answered %d, want -EBUSY", r)
	}
	if r := q.quiesce(t, a); r != -int32(syscall.EBUSY) {
		t.Fatalf("repeated failed quiesce answered %d", r)
	}
	q.unquiesce(a)
	q.want(t, "quiesce") // no Unquiesce without a successful Quiesce
}

func TestQuiesceHoldTimesOut(t *testing.T) {
	q := newQuiesceImage(t, 200*time.Millisecond)
	a := asyncRequestID{gid: 1, id: 1}
	q.quiesce(t, a)
	// A repeated QUIESCE restarts the hold.
	time.Sleep(120 * time.Millisecond)
	q.quiesce(t, a)
	time.Sleep(120 * time.Millisecond)
	q.want(t, "quiesce")
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Equal(q.seen(), []string{"quiesce", "unquiesce"}) {
		if time.Now().After(deadline) {
			t.Fatalf("hold never ran out: %v", q.seen())
		}
		time.Sleep(10 * time.Millisecond)
	}
	q.unquiesce(a) // too late: nothing more
	time.Sleep(50 * time.Millisecond)
	q.want(t, "quiesce", "unquiesce")
}

func TestQuiesceClose(t *testing.T) {
	q := newQuiesceImage(t, time.Hour)
	q.quiesce(t, asyncRequestID{gid: 1, id: 1})
	q.img.closeQuiesce()
	q.want(t, "quiesce", "unquiesce")
	if r := q.quiesce(t, asyncRequestID{gid: 1, id: 2}); r != -int32(syscall.ESHUTDOWN) {
		t.Fatalf("QUIESCE after close answered %d", r)
	}
	q.want(t, "quiesce", "unquiesce")
}

// Without hooks an image answers at once, as librbd without quiesce
// watchers.
func TestQuiesceNoHooks(t *testing.T) {
	img := newImage(nil, "q", "id", false)
	img.watch.ctx = context.Background()
	res, ok := decodeAck(img.handleQuiesce(img.watch.ctx, quiescePayload(notifyQuiesce, asyncRequestID{id: 1})))
	if !ok || res != 0 {
		t.Fatalf("answer %d (%v)", res, ok)
	}
	if res, ok := decodeAck(img.handleQuiesce(img.watch.ctx, []byte{1, 2})); !ok || res != -int32(syscall.EINVAL) {
		t.Fatalf("a malformed QUIESCE answered %d (%v)", res, ok)
	}
}
