//go:build linux

package attach

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// socketPair returns a connected pair of AF_UNIX stream sockets: ours as a
// net.Conn for the server, theirs as a file for the kernel.
func socketPair() (net.Conn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("attach: socketpair: %w", err)
	}
	of := os.NewFile(uintptr(fds[0]), "nbd-server")
	ours, err := net.FileConn(of)
	of.Close()
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, fmt.Errorf("attach: socketpair: %w", err)
	}
	return ours, os.NewFile(uintptr(fds[1]), "nbd-kernel"), nil
}
