package luks

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"testing"
)

var testKDF = KDF{Type: KDFPBKDF2, Hash: "sha256", Iterations: 1000}

// memDisk is a byte slice with io.ReaderAt/io.WriterAt.
type memDisk []byte

func (m memDisk) ReadAt(p []byte, off int64) (int, error)  { return copy(p, m[off:]), nil }
func (m memDisk) WriteAt(p []byte, off int64) (int, error) { return copy(m[off:], p), nil }

func formatDisk(t *testing.T, o FormatOptions, pass string) (memDisk, []byte) {
	t.Helper()
	if o.KDF.Type == "" {
		o.KDF = testKDF
	}
	v, err := Format(o, []byte(pass))
	if err != nil {
		t.Fatal(err)
	}
	d := make(memDisk, 20<<20)
	if err := v.Commit(d); err != nil {
		t.Fatal(err)
	}
	return d, append([]byte(nil), v.Key()...)
}

func TestAFRoundTrip(t *testing.T) {
	r := rand.NewChaCha8([32]byte{1})
	for _, n := range []int{16, 32, 33, 64, 100} {
		key := make([]byte, n)
		r.Read(key)
		buf := make([]byte, n*afStripes)
		if err := afSplit(buf, key, afStripes, sha256.New, r); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, n)
		if err := afMerge(got, buf, afStripes, sha256.New); err != nil || !bytes.Equal(got, key) {
			t.Fatalf("key of %d bytes: merge %x, %v", n, got, err)
		}
		buf[n*17] ^= 1 // any damage destroys the key
		afMerge(got, buf, afStripes, sha256.New)
		if bytes.Equal(got, key) {
			t.Fatalf("key of %d bytes survives a flipped bit", n)
		}
	}
}

func TestFormatUnlock(t *testing.T) {
	for _, o := range []FormatOptions{
		{},
		{SectorSize: 512, KeySize: 32},
		{KDF: KDF{Type: KDFArgon2i, Time: 1, MemoryKiB: 1024, Threads: 2}},
		{KDF: KDF{Type: KDFArgon2id, Time: 1, MemoryKiB: 1024, Threads: 1}, MetadataSize: 64 << 10},
		{Version: 1},
		{Version: 1, KeySize: 32, Hash: "sha1"},
		{DataOffset: 4 << 20},
		{Alignment: 4 << 20, Label: "vol", Subsystem: "csi-gorbd"},
	} {
		d, key := formatDisk(t, o, "secret")
		h, err := ReadHeader(d)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		v, err := h.Unlock(d, []byte("secret"), nil)
		if err != nil {
			t.Fatalf("%+v: unlock: %v", o, err)
		}
		if !bytes.Equal(v.Key(), key) {
			t.Fatalf("%+v: key differs", o)
		}
		if _, err := h.Unlock(d, []byte("Secret"), nil); !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("%+v: wrong passphrase: %v", o, err)
		}
		if o.Label != "" && (h.Label() != o.Label || h.Subsystem() != o.Subsystem) {
			t.Fatalf("labels %q %q", h.Label(), h.Subsystem())
		}
		if o.DataOffset != 0 && h.DataOffset() != o.DataOffset {
			t.Fatalf("data offset %d", h.DataOffset())
		}
		// A second passphrase, then removing the first.
		slot, err := v.AddKeyslot([]byte("second"), testKDF)
		if err != nil || slot != 1 {
			t.Fatalf("%+v: add keyslot: %d %v", o, slot, err)
		}
		if err := v.RemoveKeyslot(0); err != nil {
			t.Fatal(err)
		}
		if err := v.Commit(d); err != nil {
			t.Fatal(err)
		}
		h2, err := ReadHeader(d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h2.Unlock(d, []byte("secret"), nil); !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("removed keyslot still opens: %v", err)
		}
		v2, err := h2.Unlock(d, []byte("second"), nil)
		if err != nil || !bytes.Equal(v2.Key(), key) || v2.Slot() != 1 {
			t.Fatalf("%+v: second keyslot: %v", o, err)
		}
	}
}

// TestHeaderCopies: a damaged primary LUKS2 copy falls back to the
// secondary; the copy with the higher seqid wins; damage to both is
// ErrCorrupt; a wiped magic is not LUKS.
func TestHeaderCopies(t *testing.T) {
	d, _ := formatDisk(t, FormatOptions{}, "p")
	md := 16 << 10
	d[5000] ^= 0xff // primary JSON
	h, err := ReadHeader(d)
	if err != nil {
		t.Fatalf("primary damaged: %v", err)
	}
	if _, err := h.Unlock(d, []byte("p"), nil); err != nil {
		t.Fatal(err)
	}
	d[md+5000] ^= 0xff // secondary too
	if _, err := ReadHeader(d); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("both damaged: %v", err)
	}
	d[5000] ^= 0xff
	d[md+5000] ^= 0xff
	copy(d, "\x00\x00\x00\x00\x00\x00")
	if _, err := ReadHeader(d); !errors.Is(err, ErrNotLUKS) {
		t.Fatalf("wiped magic: %v", err)
	}
}

func TestKDFLimits(t *testing.T) {
	d, _ := formatDisk(t, FormatOptions{KDF: KDF{Type: KDFArgon2id, Time: 1, MemoryKiB: 8192, Threads: 1}}, "p")
	h, err := ReadHeader(d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Unlock(d, []byte("p"), &Limits{MaxMemoryKiB: 4096}); !errors.Is(err, ErrKDFLimit) {
		t.Fatalf("memory over the limit: %v", err)
	}
}

func TestFormatErrors(t *testing.T) {
	for _, o := range []FormatOptions{
		{KeySize: 48},
		{SectorSize: 1000},
		{Version: 3},
		{Version: 1, SectorSize: 4096},
		{Version: 1, KDF: DefaultKDF()},
		{MetadataSize: 20000},
		{DataOffset: 1000},
		{Label: string(make([]byte, 60))},
	} {
		if _, err := Format(o, []byte("p")); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

func TestParseKDF(t *testing.T) {
	good := map[string]KDF{
		"argon2id": DefaultKDF(),
		"argon2id:iterations=1,memory=8192,parallel=2": {Type: KDFArgon2id, Time: 1, MemoryKiB: 8192, Threads: 2},
		"argon2i:memory=32768":                         {Type: KDFArgon2i, Time: 3, MemoryKiB: 32768, Threads: 4},
		"pbkdf2":                                       {Type: KDFPBKDF2, Hash: "sha256", Iterations: 100000},
		"pbkdf2:hash=sha512,iterations=2000":           {Type: KDFPBKDF2, Hash: "sha512", Iterations: 2000},
	}
	for s, want := range good {
		k, err := ParseKDF(s)
		if err != nil || k != want {
			t.Errorf("%q: %+v %v, want %+v", s, k, err, want)
		}
		if back, err := ParseKDF(k.String()); err != nil || back != k {
			t.Errorf("%q: String %q reads back %+v %v", s, k.String(), back, err)
		}
	}
	for _, s := range []string{"", "scrypt", "argon2id:memory", "argon2id:memory=x", "argon2id:hash=sha1", "pbkdf2:memory=8",
		"argon2id:memory=2000000", "argon2id:parallel=0", "pbkdf2:hash=md5", "argon2id:iterations=01"} {
		if _, err := ParseKDF(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
