package nodeserver

import (
	"os"

	"golang.org/x/sys/unix"
)

// Filesystem freeze ioctls of linux/fs.h: _IOWR('X', 119, int) and
// _IOWR('X', 120, int).
const (
	ioctlFIFREEZE = 0xc0045877
	ioctlFITHAW   = 0xc0045878
)

// fsFreezer freezes and thaws mounted filesystems with FIFREEZE/FITHAW on
// their mount point, as fsfreeze(8) does.
type fsFreezer struct{}

func (fsFreezer) Freeze(path string) error { return fsIoctl(path, ioctlFIFREEZE) }
func (fsFreezer) Thaw(path string) error   { return fsIoctl(path, ioctlFITHAW) }

func fsIoctl(path string, req uint) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), uintptr(req), 0); e != 0 {
		return e
	}
	return nil
}
