package qos

import (
	"math"
	"time"
)

// bucket is one limit's token buckets (see the package documentation):
// avail ≤ max refills at max per second, remain ≤ capacity refills at
// rate per second, and avail ≤ remain. Both go negative when requests
// are charged into debt. Times are durations since the process epoch.
type bucket struct {
	rate     float64 // tokens per second; 0: off
	max      float64 // the available bucket's size and refill rate
	capacity float64 // the remaining bucket's size (max × burst seconds)
	tick     time.Duration

	avail, remain float64
	last          time.Duration
}

// configure applies l as librbd's set_limit does: a limit newly on starts
// with nothing available and a full remaining bucket; a new capacity
// refills the remaining bucket; available is cut to the new size.
func (b *bucket) configure(l Limit, tickMin time.Duration, now time.Duration) {
	if l.Rate == 0 {
		*b = bucket{}
		return
	}
	if b.rate == 0 {
		b.avail, b.remain, b.capacity = 0, 0, 0
	} else {
		b.advance(now)
	}
	b.last = now
	b.rate = float64(l.Rate)
	b.max = b.rate
	if l.Burst > l.Rate {
		b.max = float64(l.Burst)
	}
	secs := max(l.BurstSeconds, 1)
	if c := b.max * float64(secs); c != b.capacity {
		b.capacity = c
		b.remain = c
	}
	b.avail = min(b.avail, b.max, b.remain)
	b.tick = max(time.Second/time.Duration(l.Rate), tickMin)
}

// advance refills the buckets up to now.
func (b *bucket) advance(now time.Duration) {
	if now <= b.last {
		return
	}
	dt := (now - b.last).Seconds()
	b.last = now
	b.remain = min(b.capacity, b.remain+b.rate*dt)
	b.avail = min(b.max, b.remain, b.avail+b.max*dt)
}

// forgive clears the debt of the requests waiting on the bucket (they
// are charged again).
func (b *bucket) forgive() {
	b.avail = max(b.avail, 0)
	b.remain = max(b.remain, 0)
}

// take charges n tokens at now and returns when the request may run:
// now if the buckets cover it, else the first tick at or after the time
// both have paid their debt.
func (b *bucket) take(n float64, now time.Duration) time.Duration {
	b.advance(now)
	b.avail -= n
	b.remain -= n
	var wait float64
	if b.avail < 0 {
		wait = -b.avail / b.max
	}
	if b.remain < 0 {
		wait = max(wait, -b.remain/b.rate)
	}
	if wait == 0 {
		return now
	}
	ready := now + time.Duration(math.Ceil(wait*float64(time.Second)))
	// Release on the tick grid (shared by every limiter: same epoch).
	if r := ready % b.tick; r != 0 {
		ready += b.tick - r
	}
	return ready
}
