//go:build linux

package attach

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// SetIOFlusher marks every thread of the process (and the threads the Go
// runtime starts later, which inherit the flag) with PR_SET_IO_FLUSHER, so
// memory allocations of the serving process never wait on write-back of
// the devices it serves. Needs CAP_SYS_RESOURCE and Linux >= 5.6. Under
// cgo the runtime cannot change all threads and ENOTSUP is returned.
func SetIOFlusher() error {
	_, _, errno := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_SET_IO_FLUSHER, 1, 0)
	if errno != 0 {
		return fmt.Errorf("attach: prctl(PR_SET_IO_FLUSHER): %w", errno)
	}
	return nil
}

// IOFlusher reports whether the calling thread has PR_SET_IO_FLUSHER.
func IOFlusher() (bool, error) {
	r, _, errno := syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_GET_IO_FLUSHER, 0, 0, 0, 0, 0)
	if errno != 0 {
		return false, errno
	}
	return r == 1, nil
}
