package encryption

import (
	"context"
	"sync"
)

// rangeLock orders writes that share sectors. Whole-sector writes (and
// discards) hold their sector range shared: they may run together,
// because each replaces whole sectors. A read-modify-write holds its
// range exclusively: nothing else may write those sectors between its
// read and its write, or the write it merged over would be lost.
//
// mu guards held, changed and waiting; waiters set waiting and sleep on
// changed, which the next unlock closes (a broadcast) and replaces, so
// a cancelled context can stop the wait. Without waiters an unlock
// allocates nothing.
type rangeLock struct {
	mu      sync.Mutex
	held    []lockedRange
	changed chan struct{}
	waiting bool
}

type lockedRange struct {
	s0, s1    uint64
	exclusive bool
}

func (l *rangeLock) init() { l.changed = make(chan struct{}) }

func (l *rangeLock) conflicts(s0, s1 uint64, exclusive bool) bool {
	for _, r := range l.held {
		if r.s0 < s1 && s0 < r.s1 && (exclusive || r.exclusive) {
			return true
		}
	}
	return false
}

func (l *rangeLock) lock(ctx context.Context, s0, s1 uint64, exclusive bool) error {
	for {
		l.mu.Lock()
		if !l.conflicts(s0, s1, exclusive) {
			l.held = append(l.held, lockedRange{s0, s1, exclusive})
			l.mu.Unlock()
			return nil
		}
		ch := l.changed
		l.waiting = true
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (l *rangeLock) unlock(s0, s1 uint64, exclusive bool) {
	l.mu.Lock()
	for i, r := range l.held {
		if r.s0 == s0 && r.s1 == s1 && r.exclusive == exclusive {
			l.held[i] = l.held[len(l.held)-1]
			l.held = l.held[:len(l.held)-1]
			break
		}
	}
	if l.waiting {
		close(l.changed)
		l.changed = make(chan struct{})
		l.waiting = false
	}
	l.mu.Unlock()
}
