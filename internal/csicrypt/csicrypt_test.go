package csicrypt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/crypt/luks"
	"github.com/csi-gorbd/csi-gorbd/internal/kms"
	"github.com/csi-gorbd/csi-gorbd/rbd"
	"github.com/csi-gorbd/csi-gorbd/rbd/encryption"
)

// memImage is an image in memory: bytes and metadata.
type memImage struct {
	mu   sync.Mutex
	b    []byte
	meta map[string][]byte
}

func newMemImage(size int) *memImage {
	return &memImage{b: make([]byte, size), meta: map[string][]byte{}}
}

// clone copies the image as a clone shares its parent's data, and its
// metadata as rbd (and librbd) clones copy it.
func (m *memImage) clone() *memImage {
	c := &memImage{b: bytes.Clone(m.b), meta: map[string][]byte{}}
	for k, v := range m.meta {
		c.meta[k] = bytes.Clone(v)
	}
	return c
}

func (m *memImage) Size() uint64 { return uint64(len(m.b)) }
func (m *memImage) ReadAt(_ context.Context, p []byte, off uint64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off+uint64(len(p)) > uint64(len(m.b)) {
		return 0, rbd.ErrOutOfRange
	}
	return copy(p, m.b[off:]), nil
}
func (m *memImage) WriteAt(_ context.Context, p []byte, off uint64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off+uint64(len(p)) > uint64(len(m.b)) {
		return 0, rbd.ErrOutOfRange
	}
	return copy(m.b[off:], p), nil
}
func (m *memImage) Discard(_ context.Context, off, n uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.b[off : off+n])
	return nil
}
func (m *memImage) GetMetadata(_ context.Context, k string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.meta[k]
	if !ok {
		return nil, fmt.Errorf("%w: %s", rbd.ErrNotFound, k)
	}
	return bytes.Clone(v), nil
}
func (m *memImage) SetMetadata(_ context.Context, k string, v []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.meta[k] = bytes.Clone(v)
	return nil
}

// testKDF is a cheap keyslot KDF.
var testKDF = luks.KDF{Type: luks.KDFPBKDF2, Hash: "sha256", Iterations: 1000}

func stores(t *testing.T, secret string) (def, meta kms.Store) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(`{"m": {"encryptionKMSType": "metadata"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	sec := map[string]string{kms.SecretPassphraseKey: secret}
	ctx := context.Background()
	def, err := kms.Open(ctx, kms.Loader{}, nil, kms.Request{Secrets: sec, SecretsName: "the test secret"})
	if err != nil {
		t.Fatal(err)
	}
	meta, err = kms.Open(ctx, kms.Loader{File: p}, nil, kms.Request{KMSID: "m", Secrets: sec, SecretsName: "the test secret"})
	if err != nil {
		t.Fatal(err)
	}
	return def, meta
}

func plainView(t *testing.T, img *memImage, key []byte) *encryption.Image {
	t.Helper()
	e, err := encryption.OpenKey(context.Background(), img, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// A new volume of each store: FormatNew writes the state and the header
// (dm-crypt or librbd layout), Unlock gives the key, a retry is a no-op;
// a wrong secret names itself.
func TestFormatNewAndUnlock(t *testing.T) {
	ctx := context.Background()
	def, meta := stores(t, "secret-1")
	for _, s := range []kms.Store{def, meta} {
		for _, layout := range []encryption.Layout{encryption.LayoutDMCrypt, encryption.LayoutLibrbd} {
			img := newMemImage(24 << 20)
			v := Volume{ID: "vol-" + s.ID(), Image: img, Store: s, KDF: testKDF}
			if err := FormatNew(ctx, v, layout); err != nil {
				t.Fatal(err)
			}
			if st, _ := State(ctx, img); st != StateEncrypted {
				t.Fatalf("state %q", st)
			}
			if err := FormatNew(ctx, v, layout); err != nil {
				t.Fatalf("retry: %v", err)
			}
			key, err := Unlock(ctx, v, false)
			if err != nil {
				t.Fatal(err)
			}
			e := plainView(t, img, key)
			if e.DataOffset() != 16<<20 {
				t.Errorf("%s: data offset %d", layout, e.DataOffset())
			}
			_, hasDEK := img.meta[kms.MetaDEK]
			if hasDEK != s.PerVolume() {
				t.Errorf("%s store: stored DEK %v", s.ID(), hasDEK)
			}
		}
	}
	wrongDef, wrongMeta := stores(t, "secret-2")
	img := newMemImage(24 << 20)
	if err := FormatNew(ctx, Volume{ID: "v", Image: img, Store: def, KDF: testKDF}, encryption.LayoutDMCrypt); err != nil {
		t.Fatal(err)
	}
	_, err := Unlock(ctx, Volume{ID: "v", Image: img, Store: wrongDef, KDF: testKDF}, false)
	if !errors.Is(err, luks.ErrWrongPassphrase) || !strings.Contains(err.Error(), "the test secret key encryptionPassphrase") ||
		strings.Contains(err.Error(), "secret-") {
		t.Fatalf("wrong default secret: %v", err)
	}
	img = newMemImage(24 << 20)
	if err := FormatNew(ctx, Volume{ID: "v", Image: img, Store: meta, KDF: testKDF}, encryption.LayoutDMCrypt); err != nil {
		t.Fatal(err)
	}
	_, err = Unlock(ctx, Volume{ID: "v", Image: img, Store: wrongMeta, KDF: testKDF}, false)
	if !errors.Is(err, kms.ErrWrongPassphrase) || !strings.Contains(err.Error(), "the test secret's encryptionPassphrase") {
		t.Fatalf("wrong metadata secret: %v", err)
	}
	// An image the context calls encrypted without the state is refused.
	if _, err := Unlock(ctx, Volume{ID: "p", Image: newMemImage(24 << 20), Store: def, KDF: testKDF}, false); !errors.Is(err, ErrState) {
		t.Fatalf("plain image: %v", err)
	}
}

// ceph-csi's prepared volumes: the first Unlock formats a blank one in the
// dm-crypt layout (not read-only, not one with data) and marks it.
func TestUnlockPrepared(t *testing.T) {
	ctx := context.Background()
	_, meta := stores(t, "s")
	img := newMemImage(24 << 20)
	v := Volume{ID: "ccsi", Image: img, Store: meta, KDF: testKDF}
	if _, err := meta.NewPassphrase(ctx, v.ev()); err != nil {
		t.Fatal(err)
	}
	img.meta[MetaState] = []byte(StatePrepared)
	if _, err := Unlock(ctx, v, true); !errors.Is(err, ErrState) {
		t.Fatalf("read-only unlock of a prepared volume: %v", err)
	}
	key, err := Unlock(ctx, v, false)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := State(ctx, img); st != StateEncrypted {
		t.Fatalf("state %q", st)
	}
	plainView(t, img, key)
	dirty := newMemImage(24 << 20)
	dirty.b[1024] = 1
	dirty.meta[MetaState] = []byte(StatePrepared)
	dv := Volume{ID: "d", Image: dirty, Store: meta, KDF: testKDF}
	if _, err := meta.NewPassphrase(ctx, dv.ev()); err != nil {
		t.Fatal(err)
	}
	if _, err := Unlock(ctx, dv, false); !errors.Is(err, ErrState) {
		t.Fatalf("prepared with data: %v", err)
	}
}

// A clone gets its own passphrase: it opens the clone (not the source),
// the source's does not open the clone any more, and both show the data.
func TestInherit(t *testing.T) {
	ctx := context.Background()
	def, meta := stores(t, "s")
	src := newMemImage(24 << 20)
	sv := Volume{ID: "src", Image: src, Store: meta, KDF: testKDF}
	if err := FormatNew(ctx, sv, encryption.LayoutDMCrypt); err != nil {
		t.Fatal(err)
	}
	key, _ := Unlock(ctx, sv, false)
	want := bytes.Repeat([]byte("data"), 4096)
	if _, err := plainView(t, src, key).WriteAt(ctx, want, 8192); err != nil {
		t.Fatal(err)
	}
	for _, st := range []kms.Store{meta, def} {
		dst := src.clone()
		dv := Volume{ID: "dst-" + st.ID(), Image: dst, Store: st, KDF: testKDF}
		if err := Inherit(ctx, sv, dv); err != nil {
			t.Fatal(err)
		}
		if err := Inherit(ctx, sv, dv); err != nil {
			t.Fatalf("retry: %v", err)
		}
		k2, err := Unlock(ctx, dv, false)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(want))
		if _, err := plainView(t, dst, k2).ReadAt(ctx, got, 8192); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("clone reads: %v", err)
		}
		srcPass, _ := meta.Passphrase(ctx, sv.ev())
		if _, err := encryption.Open(ctx, dst, srcPass, nil); !errors.Is(err, luks.ErrWrongPassphrase) {
			t.Errorf("%s clone still opens with the source's passphrase: %v", st.ID(), err)
		}
		if _, err := Unlock(ctx, sv, false); err != nil {
			t.Fatalf("source after the clone: %v", err)
		}
	}
}

func TestRawSize(t *testing.T) {
	ctx := context.Background()
	def, _ := stores(t, "s")
	img := newMemImage(24 << 20)
	if n, err := RawSize(ctx, img, 1<<20); err != nil || n != 17<<20 {
		t.Fatalf("blank: %d %v", n, err)
	}
	if err := FormatNew(ctx, Volume{ID: "v", Image: img, Store: def, KDF: testKDF}, encryption.LayoutDMCrypt); err != nil {
		t.Fatal(err)
	}
	if n, err := RawSize(ctx, img, 8<<20); err != nil || n != 24<<20 {
		t.Fatalf("formatted: %d %v", n, err)
	}
}
