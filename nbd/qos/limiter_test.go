package qos

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeClock drives a Limiter deterministically.
type fakeClock struct{ t time.Duration }

func (f *fakeClock) now() time.Duration { return f.t }

func newFake(l Limits) (*Limiter, *fakeClock) {
	fc := &fakeClock{t: time.Hour} // far from the epoch, on a tick boundary
	q := &Limiter{now: fc.now}
	q.Set(l)
	return q, fc
}

// run simulates qd clients issuing operations of op and n bytes back to
// back (each waits for its reservation; the backend takes 1 µs) from the
// clock's time for d, and returns how many ran.
func run(q *Limiter, fc *fakeClock, op Op, n uint64, qd int, d time.Duration) int {
	end := fc.t + d
	next := make([]time.Duration, qd) // when each client may issue again
	for i := range next {
		next[i] = fc.t
	}
	count := 0
	for {
		// The client free the earliest goes next.
		c := 0
		for i := range next {
			if next[i] < next[c] {
				c = i
			}
		}
		if next[c] >= end {
			return count
		}
		fc.t = next[c]
		ready, _, _ := q.reserve(op, n)
		if ready >= end {
			return count
		}
		count++
		next[c] = ready + time.Microsecond
	}
}

func within(t *testing.T, what string, got, want, tol int) {
	t.Helper()
	if got < want-tol || got > want+tol {
		t.Errorf("%s: %d, want %d ± %d", what, got, want, tol)
	}
}

func TestRateLimitsOperations(t *testing.T) {
	for _, qd := range []int{1, 16, 128} {
		q, fc := newFake(Limits{IOPS: Limit{Rate: 200}})
		// A limit newly set starts empty: no initial burst, 200 per second
		// from the first second on.
		within(t, "first second", run(q, fc, Write, 4096, qd, time.Second), 200, 10+qd)
		within(t, "next 10 s", run(q, fc, Read, 4096, qd, 10*time.Second), 2000, 10+qd)
	}
}

func TestBytesChargedByLength(t *testing.T) {
	q, fc := newFake(Limits{BPS: Limit{Rate: 1 << 20}})
	// 64 KiB requests: 16 per second at 1 MiB/s.
	within(t, "64k ops in 10 s", run(q, fc, Write, 64<<10, 4, 10*time.Second), 160, 4)
	// One request larger than the bucket is charged in full: 4 MiB waits
	// about 4 s (not split, not refused).
	fc.t += time.Minute // idle: the bucket is full again (1 MiB)
	start := fc.t
	ready, _, _ := q.reserve(Write, 1<<20) // takes the full bucket
	if ready != start {
		t.Fatalf("first MiB waited %v", ready-start)
	}
	ready, _, _ = q.reserve(Write, 4<<20)
	if w := ready - start; w < 4*time.Second || w > 4*time.Second+DefaultTickMin {
		t.Errorf("4 MiB after an emptied 1 MiB/s bucket waits %v, want about 4s", w)
	}
	// Zero-length operations cost no bytes.
	fc.t += time.Hour
	q.reserve(Write, 1<<20)
	if ready, now, _ := q.reserve(Read, 0); ready != now {
		t.Errorf("zero-length read waited %v on an empty bps bucket", ready-now)
	}
}

func TestBurst(t *testing.T) {
	q, fc := newFake(Limits{IOPS: Limit{Rate: 100, Burst: 1000, BurstSeconds: 2}})
	fc.t += time.Minute // idle: available 1000, remaining 2000
	// ops(T) ≈ min(1000 + 1000 T, 2000 + 100 T): 2000 in the first second,
	// then the remaining bucket is spent and 100 per second follow.
	within(t, "burst second", run(q, fc, Read, 512, 64, time.Second), 2000, 70)
	within(t, "after the burst, 10 s", run(q, fc, Read, 512, 64, 10*time.Second), 1100, 70)
}

func TestReadWriteSplit(t *testing.T) {
	q, fc := newFake(Limits{ReadIOPS: Limit{Rate: 50}, WriteBPS: Limit{Rate: 1 << 20}})
	within(t, "reads in 10 s", run(q, fc, Read, 1<<20, 8, 10*time.Second), 500, 10)
	within(t, "1 MiB writes in 10 s", run(q, fc, Write, 1<<20, 8, 10*time.Second), 10, 2)
	// Discards and write-zeroes are writes; a limit on reads leaves them.
	fc.t += time.Minute // the writes' debt is paid
	within(t, "discards in 10 s", run(q, fc, Discard, 1<<20, 8, 10*time.Second), 10, 2)
	q.Set(Limits{ReadIOPS: Limit{Rate: 50}, WriteBPS: Limit{Rate: 1 << 20}, Exclude: OpSet(0).With(Discard).With(WriteZeroes)})
	for _, op := range []Op{Discard, WriteZeroes} {
		if ready, now, _ := q.reserve(op, 1<<30); ready != now {
			t.Errorf("excluded %v waited %v", op, ready-now)
		}
	}
}

func TestPlan(t *testing.T) {
	l := Limits{IOPS: Limit{Rate: 1}, ReadBPS: Limit{Rate: 2}, WriteIOPS: Limit{Rate: 3}, BPS: Limit{Rate: 4}, Exclude: OpSet(0).With(WriteZeroes)}
	c := newConfig(l)
	want := map[Op][]charge{
		Read:        {{bIOPS, false}, {bBPS, true}, {bReadBPS, true}},
		Write:       {{bIOPS, false}, {bWriteIOPS, false}, {bBPS, true}},
		Discard:     {{bIOPS, false}, {bWriteIOPS, false}, {bBPS, true}},
		WriteZeroes: nil,
	}
	for op, w := range want {
		if got := c.plan[op]; len(got) != len(w) || (len(w) > 0 && !equalCharges(got, w)) {
			t.Errorf("%v pays %v, want %v", op, got, w)
		}
	}
	// A burst below its rate is ignored, as librbd does, and reported by
	// Validate.
	bad := Limits{IOPS: Limit{Rate: 100, Burst: 10}}
	if err := bad.Validate(); !errors.Is(err, ErrInvalid) {
		t.Errorf("Validate(%v) = %v", bad, err)
	}
	if c := newConfig(bad); c.limits.IOPS.Burst != 0 {
		t.Errorf("burst below rate kept: %v", c.limits.IOPS)
	}
}

func equalCharges(a, b []charge) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSetKeepsOrForgives(t *testing.T) {
	q, fc := newFake(Limits{IOPS: Limit{Rate: 10}})
	if q.Set(Limits{IOPS: Limit{Rate: 10}}) {
		t.Error("Set with the same limits reported a change")
	}
	for range 30 {
		q.reserve(Write, 1) // 3 s of debt
	}
	ready, now, _ := q.reserve(Write, 1)
	if ready-now < 3*time.Second {
		t.Fatalf("31st op at 10/s waits only %v", ready-now)
	}
	// A new limit forgives the debt: the next op pays under the new one.
	if !q.Set(Limits{IOPS: Limit{Rate: 1000}}) {
		t.Fatal("Set with new limits reported no change")
	}
	ready, now, _ = q.reserve(Write, 1)
	if ready-now > DefaultTickMin {
		t.Errorf("after raising the limit an op waits %v", ready-now)
	}
	// No limits: nothing is charged at all.
	q.Set(Limits{})
	if q.cfg.Load() != nil {
		t.Error("config kept without limits")
	}
	fc.t += time.Second
	if got := run(q, fc, Write, 1<<20, 1, time.Millisecond); got != 1000 {
		t.Errorf("unlimited: %d ops", got)
	}
}

func TestTickGrid(t *testing.T) {
	q, fc := newFake(Limits{IOPS: Limit{Rate: 200}, TickMin: 100 * time.Millisecond})
	for range 50 {
		ready, _, _ := q.reserve(Read, 1)
		if ready%(100*time.Millisecond) != 0 && ready != fc.t {
			t.Fatalf("released at %v, off the 100 ms grid", ready)
		}
	}
	// A slow limit ticks at 1/rate.
	q.Set(Limits{IOPS: Limit{Rate: 2}})
	ready, _, _ := q.reserve(Read, 1)
	if ready%(500*time.Millisecond) != 0 {
		t.Errorf("2 ops/s released at %v, off the 500 ms grid", ready)
	}
}

func TestWaitUnblocksOnRemoval(t *testing.T) {
	q := New(Limits{BPS: Limit{Rate: 1}}) // one byte per second
	done := make(chan error, 1)
	go func() {
		_, err := q.Wait(context.Background(), Write, 1<<30) // decades
		done <- err
	}()
	waitBlocked(t, q)
	q.Set(Limits{})
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Wait still blocked after the limits were removed")
	}
}

func TestWaitCancel(t *testing.T) {
	q := New(Limits{BPS: Limit{Rate: 1}})
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("connection closed")
	done := make(chan error, 1)
	go func() {
		_, err := q.Wait(ctx, Read, 1<<30)
		done <- err
	}()
	waitBlocked(t, q)
	cancel(cause)
	if err := <-done; !errors.Is(err, cause) {
		t.Errorf("Wait after cancel = %v, want %v", err, cause)
	}
}

// waitBlocked waits until a Wait has registered for the wake channel.
func waitBlocked(t *testing.T, q *Limiter) {
	t.Helper()
	for range 3000 {
		q.mu.Lock()
		w := q.wake
		q.mu.Unlock()
		if w != nil {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no Wait blocked")
}

func TestNilAndZero(t *testing.T) {
	var q *Limiter
	if d, err := q.Wait(context.Background(), Write, 1); d != 0 || err != nil {
		t.Errorf("nil limiter: %v %v", d, err)
	}
	var z Limiter
	if d, err := z.Wait(context.Background(), Write, 1); d != 0 || err != nil {
		t.Errorf("zero limiter: %v %v", d, err)
	}
}

// TestConcurrentWaits exercises the lock under the race detector: many
// goroutines pass a fast limit while it is changed.
func TestConcurrentWaits(t *testing.T) {
	q := New(Limits{IOPS: Limit{Rate: 100000}, BPS: Limit{Rate: 1 << 30}, TickMin: time.Millisecond})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if _, err := q.Wait(context.Background(), Op(i%int(numOps)), 4096); err != nil {
					t.Error(err)
					return
				}
				if g == 0 && i%50 == 0 {
					q.Set(Limits{IOPS: Limit{Rate: uint64(100000 + i)}, TickMin: time.Millisecond})
				}
			}
		}()
	}
	wg.Wait()
}

func TestLimitsString(t *testing.T) {
	l := Limits{IOPS: Limit{Rate: 200}, WriteBPS: Limit{Rate: 1000, Burst: 2000, BurstSeconds: 3}}
	if got, want := l.String(), "iops=200 write_bps=1000(burst 2000 for 3s)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := (Limits{}).String(); got != "unlimited" {
		t.Errorf("zero Limits = %q", got)
	}
}

func BenchmarkWaitUnlimited(b *testing.B) {
	q := New(Limits{})
	ctx := context.Background()
	for b.Loop() {
		q.Wait(ctx, Write, 4096)
	}
}

func BenchmarkWaitUnderLimit(b *testing.B) {
	q := New(Limits{IOPS: Limit{Rate: 1 << 40}, BPS: Limit{Rate: 1 << 50}})
	ctx := context.Background()
	for b.Loop() {
		q.Wait(ctx, Write, 4096)
	}
}
