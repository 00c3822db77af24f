package nbd

import (
	"math/bits"
	"sync"
)

// Payload buffers are pooled by power-of-two size class from 4 KiB to
// 32 MiB, so a busy connection does not allocate per request. Larger
// buffers (only with a MaxPayload above 32 MiB) are not pooled.
const (
	minBufShift = 12
	maxBufShift = 25
)

var bufPools [maxBufShift + 1]sync.Pool

func bufClass(n int) int {
	if n <= 1<<minBufShift {
		return minBufShift
	}
	return bits.Len(uint(n - 1))
}

// getBuf returns a buffer of length n.
func getBuf(n int) *[]byte {
	c := bufClass(n)
	if c > maxBufShift {
		b := make([]byte, n)
		return &b
	}
	if p, ok := bufPools[c].Get().(*[]byte); ok {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n, 1<<c)
	return &b
}

// putBuf returns a buffer obtained from getBuf to its pool.
func putBuf(p *[]byte) {
	c := cap(*p)
	if c < 1<<minBufShift || c > 1<<maxBufShift || c&(c-1) != 0 {
		return
	}
	bufPools[bits.Len(uint(c))-1].Put(p)
}

// inflight is a byte budget shared by the requests of one connection (or
// of all the connections of one export): the reader acquires before it
// reads a payload or schedules a read, the writer releases once the reply
// is sent.
type inflight struct {
	mu      sync.Mutex
	cur     int64
	max     int64
	waiting bool
	wake    chan struct{}
}

func newInflight(max int64) *inflight {
	return &inflight{max: max, wake: make(chan struct{})}
}

// acquire waits until n bytes fit in the budget or nothing else is in
// flight (so an oversized request still runs, alone).
func (s *inflight) acquire(done <-chan struct{}, n int64) bool {
	for {
		s.mu.Lock()
		if s.cur == 0 || s.cur+n <= s.max {
			s.cur += n
			s.mu.Unlock()
			return true
		}
		s.waiting = true
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-done:
			return false
		}
	}
}

func (s *inflight) release(n int64) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	s.cur -= n
	if s.waiting {
		s.waiting = false
		close(s.wake)
		s.wake = make(chan struct{})
	}
	s.mu.Unlock()
}
