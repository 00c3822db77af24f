package nodeserver

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// The record key is made once (0600) and reused; sealed keys open only
// with it and only for their volume; a disk directory is refused.
func TestSealer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	s, err := openSealer(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, recordKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("record key: %v %v", fi, err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Fatalf("key dir mode %v", fi.Mode())
	}
	key := bytes.Repeat([]byte{7}, 64)
	sealed, err := s.seal(key, []byte("vol-1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, key[:16]) {
		t.Fatal("sealed key holds the key")
	}
	again, err := openSealer(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := again.open(sealed, []byte("vol-1")); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("reopen: %v", err)
	}
	if _, err := again.open(sealed, []byte("vol-2")); !errors.Is(err, ErrKeyDir) {
		t.Fatalf("other volume: %v", err)
	}
	other, _ := openSealer(filepath.Join(t.TempDir(), "k2"), true)
	if _, err := other.open(sealed, []byte("vol-1")); !errors.Is(err, ErrKeyDir) {
		t.Fatalf("other record key: %v", err)
	}
	if _, err := openSealer(filepath.Join(t.TempDir(), "disk"), false); !errors.Is(err, ErrKeyDir) {
		// t.TempDir may itself be tmpfs; then the check is moot here.
		if !onMemoryFS(t.TempDir()) {
			t.Fatalf("disk directory accepted: %v", err)
		}
	}
	if _, err := openSealer("/dev/shm/gorbd-sealer-test", false); err == nil {
		os.RemoveAll("/dev/shm/gorbd-sealer-test")
	} else if onMemoryFS("/dev/shm") {
		t.Fatalf("tmpfs refused: %v", err)
	}
}

func onMemoryFS(dir string) bool {
	_, err := openSealer(filepath.Join(dir, "probe"), false)
	os.RemoveAll(filepath.Join(dir, "probe"))
	return err == nil
}
