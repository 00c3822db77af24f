package qos

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// epoch is the origin of every limiter's clock, so that their tick grids
// coincide.
var epoch = time.Now()

func monotonic() time.Duration { return time.Since(epoch) }

// charge is one bucket an operation pays into.
type charge struct {
	bucket uint8
	bytes  bool // the operation's length, else one token
}

// config is a Limits with the buckets each operation kind pays into;
// immutable once published.
type config struct {
	limits Limits
	plan   [numOps][]charge
}

func newConfig(l Limits) *config {
	if l.TickMin == 0 {
		l.TickMin = DefaultTickMin
	}
	all := l.all()
	for i := range all {
		if all[i].Burst != 0 && all[i].Burst < all[i].Rate {
			all[i].Burst = 0 // librbd applies the limit without the burst
		}
	}
	l.IOPS, l.ReadIOPS, l.WriteIOPS, l.BPS, l.ReadBPS, l.WriteBPS = all[0], all[1], all[2], all[3], all[4], all[5]
	c := &config{limits: l}
	for op := range numOps {
		if l.Exclude.Has(op) {
			continue
		}
		dir := [2]int{bWriteIOPS, bWriteBPS}
		if op.isRead() {
			dir = [2]int{bReadIOPS, bReadBPS}
		}
		for _, b := range []int{bIOPS, dir[0], bBPS, dir[1]} {
			if !all[b].IsZero() {
				c.plan[op] = append(c.plan[op], charge{bucket: uint8(b), bytes: b >= bBPS})
			}
		}
	}
	return c
}

// Limiter enforces Limits on one export. The zero value and a nil
// *Limiter limit nothing.
type Limiter struct {
	cfg atomic.Pointer[config] // nil: nothing limited
	now func() time.Duration   // the clock (tests replace it)

	mu      sync.Mutex // guards buckets, wake, set
	buckets [numBuckets]bucket
	wake    chan struct{} // closed (and replaced) when the limits change
	set     Limits        // as given to Set
}

// New returns a Limiter enforcing l.
func New(l Limits) *Limiter {
	q := &Limiter{}
	q.Set(l)
	return q
}

func (q *Limiter) clock() time.Duration {
	if q.now != nil {
		return q.now()
	}
	return monotonic()
}

// Limits returns the limits last set.
func (q *Limiter) Limits() Limits {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.set
}

// Set replaces the limits, at once for the requests that arrive next.
// Requests waiting under the old limits are charged again under the new
// ones (their debt is forgiven); with no limit left they run at once. It
// reports whether anything changed.
func (q *Limiter) Set(l Limits) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if l == q.set && (q.cfg.Load() != nil) == l.Enabled() {
		return false
	}
	q.set = l
	c := newConfig(l)
	now := q.clock()
	all := c.limits.all()
	for i := range q.buckets {
		q.buckets[i].forgive()
		q.buckets[i].configure(all[i], c.limits.TickMin, now)
	}
	if l.Enabled() {
		q.cfg.Store(c)
	} else {
		q.cfg.Store(nil)
	}
	if q.wake != nil {
		close(q.wake)
		q.wake = nil
	}
	return true
}

// Wait blocks until an operation of kind op and n bytes may run under
// the limits and returns how long it waited; it returns early with the
// context's cause when ctx ends (the operation stays charged).
func (q *Limiter) Wait(ctx context.Context, op Op, n uint64) (time.Duration, error) {
	if q == nil || op >= numOps {
		return 0, nil
	}
	if c := q.cfg.Load(); c == nil || len(c.plan[op]) == 0 {
		return 0, nil
	}
	var (
		start time.Duration
		timer *time.Timer
	)
	for first := true; ; first = false {
		ready, now, wake := q.reserve(op, n)
		if first {
			start = now
		}
		if ready <= now {
			if timer != nil {
				timer.Stop()
			}
			return now - start, nil
		}
		if timer == nil {
			timer = time.NewTimer(ready - now)
		} else {
			timer.Reset(ready - now)
		}
		select {
		case <-timer.C:
			return q.clock() - start, nil
		case <-wake:
			// The limits changed: charge again under the new ones.
		case <-ctx.Done():
			timer.Stop()
			return q.clock() - start, context.Cause(ctx)
		}
	}
}

// Waiting reports whether a request is waiting for the limiter (one that
// had to wait since the limits were last set).
func (q *Limiter) Waiting() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.wake != nil
}

// reserve charges one operation to its buckets and returns when it may
// run, the time now, and the channel closed when the limits change.
func (q *Limiter) reserve(op Op, n uint64) (ready, now time.Duration, wake <-chan struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now = q.clock()
	ready = now
	c := q.cfg.Load()
	if c == nil {
		return ready, now, nil
	}
	for _, ch := range c.plan[op] {
		tokens := 1.0
		if ch.bytes {
			if n == 0 {
				continue
			}
			tokens = float64(n)
		}
		ready = max(ready, q.buckets[ch.bucket].take(tokens, now))
	}
	if ready > now {
		if q.wake == nil {
			q.wake = make(chan struct{})
		}
		wake = q.wake
	}
	return ready, now, wake
}
