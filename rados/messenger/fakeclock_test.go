package messenger

import (
	"sync"
	"time"
)

// fakeClock is a manually driven clock: Now moves only with advance, and
// the ticker fires only with tick.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
	ch  chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1700000000, 0), ch: make(chan time.Time)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Ticker(time.Duration) (<-chan time.Time, func()) { return f.ch, func() {} }

func (f *fakeClock) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// tick delivers one tick; it blocks until the writer goroutine takes it.
func (f *fakeClock) tick() { f.ch <- f.Now() }
