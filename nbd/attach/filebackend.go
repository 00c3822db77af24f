package attach

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// FileBackend is an nbd.Backend on a regular file. Its data outlives the
// serving process, which makes it the backend of the server-restart tests
// (a file on tmpfs in the test VM) and of local experiments
// (`csi-gorbd nbd map file:/path`). Production volumes use the RBD backend.
type FileBackend struct {
	f *os.File
}

// OpenFileBackend opens (creating if needed) path. If size > 0 the file is
// grown to size when smaller; an existing larger file keeps its size.
func OpenFileBackend(path string, size int64, readOnly bool) (*FileBackend, error) {
	flag := os.O_RDWR | os.O_CREATE
	if readOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0o600)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("attach: %s is not a regular file", path)
	}
	if size > st.Size() && !readOnly {
		if err := f.Truncate(size); err != nil {
			f.Close()
			return nil, err
		}
	}
	return &FileBackend{f: f}, nil
}

func (b *FileBackend) ReadAt(_ context.Context, p []byte, off int64) error {
	n, err := b.f.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	return err
}

func (b *FileBackend) WriteAt(_ context.Context, p []byte, off int64, fua bool) error {
	if _, err := b.f.WriteAt(p, off); err != nil {
		return err
	}
	if fua {
		return unix.Fdatasync(int(b.f.Fd()))
	}
	return nil
}

func (b *FileBackend) Flush(context.Context) error { return unix.Fdatasync(int(b.f.Fd())) }

func (b *FileBackend) Discard(_ context.Context, off, length int64) error {
	err := unix.Fallocate(int(b.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length)
	if errors.Is(err, unix.EOPNOTSUPP) {
		return nil // discard is advisory
	}
	return err
}

func (b *FileBackend) WriteZeroes(ctx context.Context, off, length int64, noHole bool) error {
	if !noHole {
		err := unix.Fallocate(int(b.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length)
		if err == nil {
			return nil
		}
	}
	zero := make([]byte, min(length, 1<<20))
	for length > 0 {
		n := min(length, int64(len(zero)))
		if _, err := b.f.WriteAt(zero[:n], off); err != nil {
			return err
		}
		off += n
		length -= n
	}
	return nil
}

// Size is the file size.
func (b *FileBackend) Size() int64 {
	st, err := b.f.Stat()
	if err != nil {
		return 0
	}
	return st.Size()
}

// Resize grows (or shrinks) the file.
func (b *FileBackend) Resize(size int64) error { return b.f.Truncate(size) }

// Close closes the file.
func (b *FileBackend) Close() error { return b.f.Close() }

// MultiConn reports that Flush (fdatasync of the one file) covers writes
// made through every connection, so the kernel may use several
// (NBD_FLAG_CAN_MULTI_CONN).
func (b *FileBackend) MultiConn() bool { return true }
