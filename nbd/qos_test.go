package nbd

import (
	"runtime"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/nbd/qos"
)

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu sync.Mutex
	counts
}

type counts struct {
	begun     [NumOps]int
	ended     [NumOps]int
	bytes     [NumOps]uint64
	errs      [NumOps]int
	throttled time.Duration
	inflight  int
}

func (r *recorder) Begin(op Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.begun[op]++
	r.inflight++
}

func (r *recorder) End(op Op, n uint32, latency, throttled time.Duration, errno Errno) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended[op]++
	r.inflight--
	r.bytes[op] += uint64(n)
	r.throttled += throttled
	if errno != 0 {
		r.errs[op]++
	}
	if latency < throttled {
		panic("latency shorter than the throttled part of it")
	}
}

func (r *recorder) snapshot() counts {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts
}

// TestLimiterHoldsOnlyLimitedRequests: a write limited to one byte per
// second waits (for decades) while reads, flushes and requests the
// limit does not cover pass it on other workers; removing the limit
// releases the write, which then succeeds; the Observer sees every
// request with its bytes, errors and the time the write was held.
func TestLimiterHoldsOnlyLimitedRequests(t *testing.T) {
	b := newCounting(1 << 20)
	lim := qos.New(qos.Limits{WriteBPS: qos.Limit{Rate: 1}})
	obs := &recorder{}
	cl, errc, cancel := serveKernel(t, &Export{Backend: b, Limiter: lim, Observer: obs}, nil)

	cl.request(cmdWrite, 0, 1, 0, 4096, make([]byte, 4096)) // 4096 s at 1 B/s
	// Held by the limiter before anything else: a worker that reached the
	// limiter only after the release below would not wait at all.
	waitHeld(t, lim)
	cl.request(cmdRead, 0, 2, 0, 4096, nil)
	if e, c := cl.simpleReply(); e != 0 || c != 2 {
		t.Fatalf("read behind a held write: errno %d cookie %d", e, c)
	}
	cl.read(4096)
	cl.request(cmdFlush, 0, 3, 0, 0, nil)
	if e, c := cl.simpleReply(); e != 0 || c != 3 {
		t.Fatalf("flush behind a held write: errno %d cookie %d", e, c)
	}
	cl.request(cmdRead, 0, 4, 1<<20, 4096, nil) // beyond the end: refused, not held
	if e, c := cl.simpleReply(); e != EINVAL || c != 4 {
		t.Fatalf("read past the end: errno %d cookie %d", e, c)
	}
	if s := obs.snapshot(); s.begun[OpWrite] != 1 || s.ended[OpWrite] != 0 || s.inflight != 1 {
		t.Fatalf("observer while the write is held: %+v", s)
	}

	lim.Set(qos.Limits{})
	if e, c := cl.simpleReply(); e != 0 || c != 1 {
		t.Fatalf("released write: errno %d cookie %d", e, c)
	}
	cancel()
	if err := waitErr(t, errc); err != nil {
		t.Fatal(err)
	}
	s := obs.snapshot()
	want := map[Op][2]int{OpRead: {2, 1}, OpWrite: {1, 0}, OpFlush: {1, 0}}
	for op, w := range want {
		if s.begun[op] != w[0] || s.ended[op] != w[0] || s.errs[op] != w[1] {
			t.Errorf("%v: begun %d ended %d errors %d, want %d, %d, %d", op, s.begun[op], s.ended[op], s.errs[op], w[0], w[0], w[1])
		}
	}
	if s.bytes[OpRead] != 8192 || s.bytes[OpWrite] != 4096 || s.bytes[OpFlush] != 0 {
		t.Errorf("bytes: %v", s.bytes)
	}
	if s.inflight != 0 || s.throttled <= 0 {
		t.Errorf("in flight %d, throttled %v", s.inflight, s.throttled)
	}
}

// TestThrottledExportsAddNoThreads: 100 exports, each with a limiter
// holding 16 requests (one per worker) for decades, make the process
// create no OS thread: waiting requests sleep on runtime timers in their
// workers, and the limiters have no goroutine of their own. Then one Set
// per limiter releases every request.
func TestThrottledExportsAddNoThreads(t *testing.T) {
	const exports, held = 100, 16
	threads := pprof.Lookup("threadcreate")
	type served struct {
		cl  *rawClient
		lim *qos.Limiter
	}
	var all []served
	for range exports {
		lim := qos.New(qos.Limits{})
		cl, _, _ := serveKernel(t, &Export{Backend: newCounting(1 << 20), Limiter: lim}, &Options{Workers: held})
		all = append(all, served{cl, lim})
	}
	// Warm up with the same traffic unthrottled, so that the runtime has
	// made the threads this much socket I/O needs.
	round := func(first uint64) {
		for _, s := range all {
			for i := range held {
				s.cl.request(cmdWrite, 0, first+uint64(i), 0, 4096, make([]byte, 4096))
			}
		}
	}
	replies := func() {
		for _, s := range all {
			for range held {
				if e, _ := s.cl.simpleReply(); e != 0 {
					t.Fatalf("write: errno %d", e)
				}
			}
		}
	}
	round(1)
	replies()
	before := threads.Count()
	// Then held: one byte per second, for decades.
	for _, s := range all {
		s.lim.Set(qos.Limits{WriteBPS: qos.Limit{Rate: 1}})
	}
	round(100)
	for _, s := range all {
		waitHeld(t, s.lim)
	}
	during := threads.Count()
	for _, s := range all {
		s.lim.Set(qos.Limits{})
	}
	replies()
	t.Logf("OS threads created: %d before, %d with %d requests held by %d limiters, GOMAXPROCS %d",
		before, during, exports*held, exports, runtime.GOMAXPROCS(0))
	// The runtime may start a thread for its own reasons at any time;
	// one per limiter or per held request would be 100 or 1600.
	if during > before+int(runtime.GOMAXPROCS(0)) {
		t.Errorf("holding %d requests in %d limiters created %d OS threads", exports*held, exports, during-before)
	}
}

// waitHeld waits until the limiter has a request waiting.
func waitHeld(t *testing.T, q *qos.Limiter) {
	t.Helper()
	for range 3000 {
		if q.Waiting() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no request held by the limiter")
}
