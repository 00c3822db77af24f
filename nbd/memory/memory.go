package memory

import (
	"context"
	"fmt"
	"sync"
	"syscall"
)

// ChunkSize is the allocation unit.
const ChunkSize = 64 << 10

// Backend is a sparse in-memory block device. It is safe for concurrent
// use; all connections share one copy, so it supports multi-conn.
type Backend struct {
	mu     sync.RWMutex
	size   int64
	chunks map[int64]*[ChunkSize]byte // by chunk index
}

// New returns an all-zero device of size bytes.
func New(size int64) *Backend {
	if size < 0 {
		size = 0
	}
	return &Backend{size: size, chunks: make(map[int64]*[ChunkSize]byte)}
}

// Size returns the device size in bytes.
func (b *Backend) Size() int64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.size
}

// Allocated returns the bytes of memory holding data.
func (b *Backend) Allocated() int64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return int64(len(b.chunks)) * ChunkSize
}

// Resize changes the device size. Shrinking drops the data past the new
// end, so growing again exposes zeroes.
func (b *Backend) Resize(size int64) error {
	if size < 0 {
		return fmt.Errorf("memory: negative size %d: %w", size, syscall.EINVAL)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if size < b.size {
		b.zero(size, b.size-size, false)
	}
	b.size = size
	return nil
}

func (b *Backend) check(off, n int64) error {
	if off < 0 || n < 0 || off+n < off || off+n > b.size {
		return fmt.Errorf("memory: range [%d, +%d) outside device of %d bytes: %w", off, n, b.size, syscall.EINVAL)
	}
	return nil
}

// ReadAt fills p with the data at off.
func (b *Backend) ReadAt(_ context.Context, p []byte, off int64) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if err := b.check(off, int64(len(p))); err != nil {
		return err
	}
	for len(p) > 0 {
		idx, in := off/ChunkSize, off%ChunkSize
		n := min(int64(len(p)), ChunkSize-in)
		if c := b.chunks[idx]; c != nil {
			copy(p[:n], c[in:])
		} else {
			clear(p[:n])
		}
		p, off = p[n:], off+n
	}
	return nil
}

// WriteAt stores p at off. fua needs nothing extra: memory is as durable
// as it gets.
func (b *Backend) WriteAt(_ context.Context, p []byte, off int64, _ bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(off, int64(len(p))); err != nil {
		return err
	}
	for len(p) > 0 {
		idx, in := off/ChunkSize, off%ChunkSize
		n := min(int64(len(p)), ChunkSize-in)
		c := b.chunks[idx]
		if c == nil {
			c = new([ChunkSize]byte)
			b.chunks[idx] = c
		}
		copy(c[in:], p[:n])
		p, off = p[n:], off+n
	}
	return nil
}

// Flush does nothing.
func (b *Backend) Flush(context.Context) error { return nil }

// Discard zeroes the range, releasing whole chunks.
func (b *Backend) Discard(_ context.Context, off, n int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(off, n); err != nil {
		return err
	}
	b.zero(off, n, false)
	return nil
}

// WriteZeroes zeroes the range; without noHole whole chunks are released,
// with it every chunk in the range is allocated.
func (b *Backend) WriteZeroes(_ context.Context, off, n int64, noHole bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(off, n); err != nil {
		return err
	}
	b.zero(off, n, noHole)
	return nil
}

// zero clears [off, off+n); the caller holds mu.
func (b *Backend) zero(off, n int64, alloc bool) {
	for n > 0 {
		idx, in := off/ChunkSize, off%ChunkSize
		l := min(n, ChunkSize-in)
		c := b.chunks[idx]
		switch {
		case l == ChunkSize && !alloc:
			delete(b.chunks, idx)
		case c != nil:
			clear(c[in : in+l])
		case alloc:
			b.chunks[idx] = new([ChunkSize]byte)
		}
		off, n = off+l, n-l
	}
}

// FastZero reports that zeroing is fast unless holes are forbidden.
func (b *Backend) FastZero(noHole bool) bool { return !noHole }

// MultiConn reports that every connection sees one consistent device.
func (b *Backend) MultiConn() bool { return true }
