package nodeserver

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

func ioctlGetUint64(fd int, req uint, out *uint64) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(out)))
	if e != 0 {
		return e
	}
	return nil
}
