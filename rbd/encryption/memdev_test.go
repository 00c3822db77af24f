package encryption

import (
	"context"
	"fmt"
	"sync"
)

// memDev is an in-memory Device for unit tests.
type memDev struct {
	mu sync.Mutex
	b  []byte
}

func newMemDev(size int) *memDev { return &memDev{b: make([]byte, size)} }

func (m *memDev) Size() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return uint64(len(m.b))
}

func (m *memDev) ReadAt(_ context.Context, p []byte, off uint64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off+uint64(len(p)) > uint64(len(m.b)) {
		return 0, fmt.Errorf("%w: read [%d,+%d)", ErrOutOfRange, off, len(p))
	}
	return copy(p, m.b[off:]), nil
}

func (m *memDev) WriteAt(_ context.Context, p []byte, off uint64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off+uint64(len(p)) > uint64(len(m.b)) {
		return 0, fmt.Errorf("%w: write [%d,+%d)", ErrOutOfRange, off, len(p))
	}
	return copy(m.b[off:], p), nil
}

func (m *memDev) Discard(_ context.Context, off, n uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.b[off : off+n])
	return nil
}

func (m *memDev) Resize(_ context.Context, size uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	nb := make([]byte, size)
	copy(nb, m.b)
	m.b = nb
	return nil
}
