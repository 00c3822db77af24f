package attach

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
)

func TestFileBackend(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "disk.img")
	b, err := OpenFileBackend(p, 1<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	if b.Size() != 1<<20 {
		t.Fatalf("size %d", b.Size())
	}
	data := bytes.Repeat([]byte("gorbd"), 1000)
	if err := b.WriteAt(ctx, data, 4096, true); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	if err := b.ReadAt(ctx, got, 4096); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %v", err)
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, noHole := range []bool{false, true} {
		if err := b.WriteZeroes(ctx, 4096, 512, noHole); err != nil {
			t.Fatal(err)
		}
		b.ReadAt(ctx, got[:512], 4096)
		if !bytes.Equal(got[:512], make([]byte, 512)) {
			t.Fatalf("WriteZeroes(noHole=%v) left data", noHole)
		}
	}
	if err := b.Discard(ctx, 0, 8192); err != nil {
		t.Fatal(err)
	}
	if err := b.Resize(2 << 20); err != nil || b.Size() != 2<<20 {
		t.Fatalf("Resize: %v, size %d", err, b.Size())
	}
	b.Close()
	// Reopening keeps the data and the larger size.
	b, err = OpenFileBackend(p, 4096, true)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Size() != 2<<20 {
		t.Errorf("size after reopen %d", b.Size())
	}
	if err := b.ReadAt(ctx, got[:100], 8192); err != nil || !bytes.Equal(got[:100], data[4096:4196]) {
		t.Errorf("data after reopen: %v", err)
	}
}
