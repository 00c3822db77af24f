package unixsock

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestListenMode: the socket has exactly the asked permissions whatever
// the umask (0 would make a plain net.Listen socket 0777).
func TestListenMode(t *testing.T) {
	for _, umask := range []int{0, 0o022, 0o077, 0o777} {
		old := syscall.Umask(umask)
		path := filepath.Join(t.TempDir(), "s")
		l, err := Listen(context.Background(), path, 0o600)
		syscall.Umask(old)
		if err != nil {
			t.Fatalf("umask %#o: %v", umask, err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
			t.Errorf("umask %#o: socket mode %v, want 0600", umask, fi.Mode())
		}
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatalf("umask %#o: dial: %v", umask, err)
		}
		c.Close()
		l.Close()
	}
}

// TestOnlySocketsReplaced: a stale socket is replaced; a regular file, a
// directory or a symlink at the path is an error and left as it was.
func TestOnlySocketsReplaced(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if l, err = Listen(context.Background(), stale, 0o600); err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	l.Close()

	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("precious"), 0o644)
	sub := filepath.Join(dir, "dir")
	os.Mkdir(sub, 0o755)
	link := filepath.Join(dir, "link")
	os.Symlink(file, link)
	for _, p := range []string{file, sub, link} {
		if l, err := Listen(context.Background(), p, 0o600); !errors.Is(err, ErrNotSocket) {
			if err == nil {
				l.Close()
			}
			t.Errorf("%s: %v, want ErrNotSocket", p, err)
		}
		if err := RemoveStale(p); !errors.Is(err, ErrNotSocket) {
			t.Errorf("RemoveStale(%s): %v", p, err)
		}
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "precious" {
		t.Fatalf("the regular file: %q %v", b, err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode().Type() != fs.ModeSymlink {
		t.Fatalf("the link: %v %v", fi, err)
	}
	if err := RemoveStale(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("missing path: %v", err)
	}
}
