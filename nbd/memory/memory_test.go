package memory

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
)

var ctx = context.Background()

func read(t *testing.T, b *Backend, off, n int64) []byte {
	t.Helper()
	p := bytes.Repeat([]byte{0xcc}, int(n)) // garbage: holes must be zeroed
	if err := b.ReadAt(ctx, p, off); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSparse(t *testing.T) {
	b := New(10 * ChunkSize)
	if !bytes.Equal(read(t, b, 0, 3*ChunkSize), make([]byte, 3*ChunkSize)) {
		t.Fatal("fresh device not zero")
	}
	if b.Allocated() != 0 {
		t.Fatal("reads allocated")
	}
	data := make([]byte, 2*ChunkSize+100)
	rand.NewChaCha8([32]byte{}).Read(data)
	off := int64(ChunkSize - 50) // straddles three chunk boundaries
	if err := b.WriteAt(ctx, data, off, true); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(read(t, b, off, int64(len(data))), data) {
		t.Fatal("read back differs")
	}
	if b.Allocated() != 4*ChunkSize {
		t.Fatalf("allocated %d", b.Allocated())
	}
	// Discard the middle: whole chunks are released, edges zeroed.
	if err := b.Discard(ctx, off+10, int64(len(data))-20); err != nil {
		t.Fatal(err)
	}
	got := read(t, b, off, int64(len(data)))
	if !bytes.Equal(got[:10], data[:10]) || !bytes.Equal(got[len(got)-10:], data[len(data)-10:]) ||
		!bytes.Equal(got[10:len(got)-10], make([]byte, len(data)-20)) {
		t.Fatal("discard result wrong")
	}
	if b.Allocated() != 2*ChunkSize {
		t.Fatalf("allocated %d after discard", b.Allocated())
	}
	// Zeroes without holes allocate.
	if err := b.WriteZeroes(ctx, 5*ChunkSize, 2*ChunkSize, true); err != nil {
		t.Fatal(err)
	}
	if b.Allocated() != 4*ChunkSize {
		t.Fatalf("allocated %d after no-hole zeroes", b.Allocated())
	}
	if err := b.WriteZeroes(ctx, 5*ChunkSize, 2*ChunkSize, false); err != nil {
		t.Fatal(err)
	}
	if b.Allocated() != 2*ChunkSize {
		t.Fatalf("allocated %d after zeroes", b.Allocated())
	}
	if !b.FastZero(false) || b.FastZero(true) || !b.MultiConn() {
		t.Fatal("capabilities")
	}
}

func TestBounds(t *testing.T) {
	b := New(ChunkSize)
	for _, c := range []struct{ off, n int64 }{{ChunkSize, 1}, {-1, 1}, {ChunkSize - 1, 2}, {1 << 62, 1 << 62}} {
		if err := b.WriteAt(ctx, make([]byte, min(c.n, 2)), c.off, false); c.n <= 2 && !errors.Is(err, syscall.EINVAL) {
			t.Errorf("write %v: %v", c, err)
		}
		if err := b.Discard(ctx, c.off, c.n); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("discard %v: %v", c, err)
		}
	}
}

func TestResize(t *testing.T) {
	b := New(4 * ChunkSize)
	b.WriteAt(ctx, bytes.Repeat([]byte{1}, 4*ChunkSize), 0, false)
	if err := b.Resize(ChunkSize + 10); err != nil {
		t.Fatal(err)
	}
	if b.Size() != ChunkSize+10 {
		t.Fatal("size")
	}
	b.Resize(4 * ChunkSize)
	got := read(t, b, 0, 4*ChunkSize)
	if !bytes.Equal(got[:ChunkSize+10], bytes.Repeat([]byte{1}, ChunkSize+10)) || !bytes.Equal(got[ChunkSize+10:], make([]byte, 3*ChunkSize-10)) {
		t.Fatal("shrink then grow did not expose zeroes")
	}
	if b.Allocated() != 2*ChunkSize {
		t.Fatalf("allocated %d", b.Allocated())
	}
	if b.Resize(-1) == nil {
		t.Fatal("negative size accepted")
	}
}

// TestConcurrent writes disjoint blocks from many goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	b := New(64 * 4096)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < 64; i += 8 {
				p := bytes.Repeat([]byte{byte(i)}, 4096)
				b.WriteAt(ctx, p, int64(i)*4096, false)
				q := make([]byte, 4096)
				b.ReadAt(ctx, q, int64(i)*4096)
				if !bytes.Equal(p, q) {
					t.Errorf("block %d", i)
				}
			}
		}()
	}
	wg.Wait()
}
