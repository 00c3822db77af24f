package nodeserver

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The state directory is on the node's disk and outlives a reboot; it
// must not hold an encrypted volume's key in the clear. A staged
// encrypted volume's record holds its volume key sealed (AES-256-GCM,
// the volume id as associated data) with the node's record key, a random
// key in a file in a memory filesystem (Options.KeyDir, /run/csi-gorbd
// by default: tmpfs on the host, a hostPath in the node plugin's pod).
// The record key survives a restart of the plugin, which must reopen
// staged volumes before the kubelet calls again, and dies with the boot,
// as the kernel devices do; on disk there is only ciphertext.

// DefaultKeyDir is where the record key lives by default (/run is tmpfs
// on the hosts Kubernetes runs on).
const DefaultKeyDir = "/run/csi-gorbd"

// recordKeyFile is the record key's file name in the key directory.
const recordKeyFile = "record.key"

// memoryFS are the statfs magics of filesystems that never reach a disk.
var memoryFS = map[int64]string{unix.TMPFS_MAGIC: "tmpfs", unix.RAMFS_MAGIC: "ramfs"}

// ErrKeyDir: the key directory is unusable (not a memory filesystem).
var ErrKeyDir = errors.New("nodeserver: volume key directory")

// sealer seals volume keys for the state records.
type sealer struct {
	aead cipher.AEAD
}

// openSealer reads the record key from dir, making it (and dir, 0700)
// the first time. dir must be on tmpfs or ramfs unless anyFS.
func openSealer(dir string, anyFS bool) (*sealer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrKeyDir, dir, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrKeyDir, dir, err)
	}
	if _, mem := memoryFS[int64(st.Type)]; !mem && !anyFS {
		return nil, fmt.Errorf("%w %s is not on tmpfs or ramfs (filesystem magic %#x): encrypted volumes' keys would reach the disk",
			ErrKeyDir, dir, st.Type)
	}
	path := filepath.Join(dir, recordKeyFile)
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = newRecordKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: record key %s: %v", ErrKeyDir, path, err)
	}
	defer clear(key)
	if len(key) != 32 {
		return nil, fmt.Errorf("%w: record key %s has %d bytes, not 32", ErrKeyDir, path, len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: a}, nil
}

// newRecordKey writes a new random key (0600, exclusively: a key that
// exists already is read instead).
func newRecordKey(path string) ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		clear(key)
		return os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return key, f.Close()
}

// seal returns nonce || AES-GCM(plain) bound to aad.
func (s *sealer) seal(plain, aad []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(nonce, nonce, plain, aad), nil
}

// open reverses seal; a record sealed under another record key (a
// reboot, a deleted key file) or for another volume fails.
func (s *sealer) open(sealed, aad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, fmt.Errorf("%w: sealed volume key of %d bytes", ErrKeyDir, len(sealed))
	}
	p, err := s.aead.Open(nil, sealed[:n], sealed[n:], aad)
	if err != nil {
		return nil, fmt.Errorf("%w: the sealed volume key does not open with this boot's record key", ErrKeyDir)
	}
	return p, nil
}
