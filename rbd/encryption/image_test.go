package encryption

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/crypt/luks"
)

var fastKDF = luks.KDF{Type: luks.KDFPBKDF2, Hash: "sha256", Iterations: 1000}

func formatMem(t *testing.T, size int, o FormatOptions) (*memDev, *Image) {
	t.Helper()
	ctx := context.Background()
	dev := newMemDev(size)
	if o.KDF.Type == "" {
		o.KDF = fastKDF
	}
	vol, err := Format(ctx, dev, []byte("pass"), &o)
	if err != nil {
		t.Fatal(err)
	}
	vol.Close()
	img, err := Open(ctx, dev, []byte("pass"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return dev, img
}

// TestModel drives random aligned and unaligned reads, writes, zeroing
// and discards against a plain byte slice and checks every read.
func TestModel(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		o    FormatOptions
	}{
		{"luks2-4k", FormatOptions{}},
		{"luks2-512", FormatOptions{SectorSize: 512, Layout: LayoutDMCrypt}},
		{"luks1", FormatOptions{Version: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev, img := formatMem(t, 20<<20, tc.o)
			size := img.Size()
			if want := uint64(20<<20) - img.DataOffset(); size != want {
				t.Fatalf("size %d, want %d", size, want)
			}
			model := make([]byte, size) // fresh: reads as zeros
			r := rand.New(rand.NewPCG(1, 2))
			for i := 0; i < 400; i++ {
				off := r.Uint64N(size)
				n := 1 + r.Uint64N(min(size-off, 64<<10))
				switch r.IntN(5) {
				case 0, 1:
					p := make([]byte, n)
					for j := range p {
						p[j] = byte(r.Uint32())
					}
					if _, err := img.WriteAt(ctx, p, off); err != nil {
						t.Fatal(err)
					}
					copy(model[off:], p)
				case 2:
					if err := img.WriteZeroes(ctx, off, n); err != nil {
						t.Fatal(err)
					}
					clear(model[off : off+n])
				case 3:
					if err := img.Discard(ctx, off, n); err != nil {
						t.Fatal(err)
					}
					ss := uint64(img.SectorSize())
					a0, a1 := (off+ss-1)&^(ss-1), (off+n)&^(ss-1)
					if a1 > a0 {
						clear(model[a0:a1])
					}
				case 4:
					p := make([]byte, n)
					if _, err := img.ReadAt(ctx, p, off); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(p, model[off:off+n]) {
						t.Fatalf("op %d: read [%d,+%d) differs", i, off, n)
					}
				}
			}
			all := make([]byte, size)
			if _, err := img.ReadAt(ctx, all, 0); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(all, model) {
				t.Fatal("final image differs from the model")
			}
			// The device holds ciphertext: no 64-byte run of the model's
			// random data appears in it.
			probe := model[size/2 : size/2+64]
			if !allZero(probe) && bytes.Contains(dev.b, probe) {
				t.Fatal("plaintext found on the device")
			}
			img.Close(ctx)
			// Reopen: same plaintext.
			img2, err := Open(ctx, dev, []byte("pass"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := img2.ReadAt(ctx, all, 0); err != nil || !bytes.Equal(all, model) {
				t.Fatalf("after reopen: %v", err)
			}
		})
	}
}

// TestConcurrentUnalignedWrites: byte-granular writes to the same
// sectors from many goroutines lose nothing (the read-modify-write
// lock).
func TestConcurrentUnalignedWrites(t *testing.T) {
	ctx := context.Background()
	_, img := formatMem(t, 17<<20, FormatOptions{})
	var wg sync.WaitGroup
	const writers = 16
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 64; i++ {
				// writer w owns bytes w, w+16, ... of the first 2 sectors
				off := uint64(w + i*writers)
				if _, err := img.WriteAt(ctx, []byte{byte(w + 1)}, off); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	// aligned writers to the third sector race too
	wg.Add(1)
	go func() {
		defer wg.Done()
		p := bytes.Repeat([]byte{0xee}, 4096)
		for i := 0; i < 64; i++ {
			if _, err := img.WriteAt(ctx, p, 8192); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	got := make([]byte, 3*4096)
	if _, err := img.ReadAt(ctx, got, 0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < writers*64; i++ {
		if got[i] != byte(i%writers+1) {
			t.Fatalf("byte %d = %d, want %d", i, got[i], i%writers+1)
		}
	}
	if !bytes.Equal(got[8192:], bytes.Repeat([]byte{0xee}, 4096)) {
		t.Fatal("aligned sector lost")
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	dev := newMemDev(20 << 20)
	if _, err := Open(ctx, dev, []byte("x"), nil); !errors.Is(err, ErrNotEncrypted) || !errors.Is(err, luks.ErrNotLUKS) {
		t.Fatalf("plaintext image: %v", err)
	}
	vol, err := Format(ctx, dev, []byte("right"), &FormatOptions{KDF: fastKDF})
	if err != nil {
		t.Fatal(err)
	}
	vol.Close()
	if _, err := Open(ctx, dev, []byte("wrong"), nil); !errors.Is(err, luks.ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := Format(ctx, dev, []byte("again"), &FormatOptions{KDF: fastKDF}); !errors.Is(err, ErrExists) {
		t.Fatalf("second format: %v", err)
	}
	if _, err := Format(ctx, newMemDev(16<<20), []byte("p"), &FormatOptions{KDF: fastKDF}); !errors.Is(err, ErrTooSmall) {
		t.Fatalf("tiny image: %v", err)
	}
	// librbd's clone magic is recognised and refused clearly.
	copy(dev.b, cloneMagic)
	if _, err := Open(ctx, dev, []byte("right"), nil); !errors.Is(err, ErrClonedFormat) {
		t.Fatalf("clone magic: %v", err)
	}
	// Read-only images refuse writes.
	copy(dev.b, "LUKS\xba\xbe")
	img, err := Open(ctx, dev, []byte("right"), &OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := img.WriteAt(ctx, []byte{1}, 0); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only write: %v", err)
	}
	if _, err := img.ReadAt(ctx, make([]byte, 2), img.Size()-1); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("read past the end: %v", err)
	}
}

func TestPassphrases(t *testing.T) {
	ctx := context.Background()
	dev := newMemDev(20 << 20)
	vol, err := Format(ctx, dev, []byte("one"), &FormatOptions{KDF: fastKDF})
	if err != nil {
		t.Fatal(err)
	}
	key := append([]byte(nil), vol.Key()...)
	vol.Close()
	slot, err := AddPassphrase(ctx, dev, []byte("one"), []byte("two"), fastKDF, nil)
	if err != nil || slot != 1 {
		t.Fatalf("add: slot %d, %v", slot, err)
	}
	if err := RemovePassphrase(ctx, dev, []byte("one"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, dev, []byte("one"), nil); !errors.Is(err, luks.ErrWrongPassphrase) {
		t.Fatalf("removed passphrase still opens: %v", err)
	}
	img, err := Open(ctx, dev, []byte("two"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(img.vol.Key(), key) {
		t.Fatal("volume key changed")
	}
	if err := RemovePassphrase(ctx, dev, []byte("two"), nil); !errors.Is(err, luks.ErrInvalid) {
		t.Fatalf("removing the last keyslot: %v", err)
	}
	// Resize keeps the data offset out of the plaintext size.
	if err := img.Resize(ctx, 8<<20); err != nil {
		t.Fatal(err)
	}
	if img.Size() != 8<<20 || dev.Size() != img.DataOffset()+8<<20 {
		t.Fatalf("after resize: plaintext %d raw %d", img.Size(), dev.Size())
	}
}

// OpenKey reopens with the volume key alone (LUKS1 and LUKS2) and shows
// the same plaintext; a wrong key or one of the wrong size is refused.
func TestOpenKey(t *testing.T) {
	ctx := context.Background()
	for _, version := range []int{1, 2} {
		dev := newMemDev(20 << 20)
		vol, err := Format(ctx, dev, []byte("pass"), &FormatOptions{Version: version, KDF: fastKDF})
		if err != nil {
			t.Fatal(err)
		}
		img, err := NewImage(dev, vol, false)
		if err != nil {
			t.Fatal(err)
		}
		want := bytes.Repeat([]byte("plaintext "), 1000)
		if _, err := img.WriteAt(ctx, want, 4096); err != nil {
			t.Fatal(err)
		}
		key := img.VolumeKey()
		byKey, err := OpenKey(ctx, dev, key, nil)
		if err != nil {
			t.Fatalf("LUKS%d: %v", version, err)
		}
		got := make([]byte, len(want))
		if _, err := byKey.ReadAt(ctx, got, 4096); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("LUKS%d: read by key: %v", version, err)
		}
		key[0] ^= 1
		if _, err := OpenKey(ctx, dev, key, nil); !errors.Is(err, luks.ErrWrongPassphrase) {
			t.Fatalf("LUKS%d: wrong key: %v", version, err)
		}
		if _, err := OpenKey(ctx, dev, key[:16], nil); !errors.Is(err, luks.ErrWrongPassphrase) {
			t.Fatalf("LUKS%d: short key: %v", version, err)
		}
	}
}
