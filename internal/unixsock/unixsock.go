// Package unixsock opens unix-domain listening sockets the way a daemon
// that others connect to should: a socket left at the path by an earlier
// run is replaced, anything else found there (a regular file, a
// directory, a link) is an error and is left alone, and the socket's
// permissions are set when it is created, not by the process umask.
package unixsock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

// ErrNotSocket is returned when the path holds something other than a
// socket: it is never removed.
var ErrNotSocket = errors.New("unixsock: path exists and is not a socket")

// RemoveStale removes a socket at path, left by an earlier listener; a
// missing path is fine; any other kind of file is ErrNotSocket and stays.
func RemoveStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("%w: %s (%s)", ErrNotSocket, path, fi.Mode().Type())
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unixsock: removing stale socket: %w", err)
	}
	return nil
}

// Listen replaces a stale socket at path (see RemoveStale) and listens
// there with the permission bits perm, whatever the umask: the socket is
// given perm before it is bound (Linux applies a socket inode's mode, less
// the umask, at bind) and perm again once it exists, so it is never more
// open than perm, not even for a moment.
func Listen(ctx context.Context, path string, perm os.FileMode) (net.Listener, error) {
	if err := RemoveStale(path); err != nil {
		return nil, err
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var ferr error
		if err := c.Control(func(fd uintptr) { ferr = syscall.Fchmod(int(fd), uint32(perm.Perm())) }); err != nil {
			return err
		}
		return ferr
	}}
	l, err := lc.Listen(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, perm.Perm()); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}
