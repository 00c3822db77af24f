package nbdnl

import (
	"errors"
	"fmt"
)

// ErrNotSupported is matched (errors.Is) by every error that means this
// kernel cannot attach NBD devices at all: no "nbd" generic netlink family
// and modprobe nbd did not help, or no netlink on this platform.
var ErrNotSupported = errors.New("kernel nbd support not available")

// NotSupportedError says why the kernel's nbd support was judged missing.
type NotSupportedError struct {
	// Reason is a human readable explanation, e.g. the modprobe output.
	Reason string
	// Err is the underlying error, if any.
	Err error
}

func (e *NotSupportedError) Error() string {
	s := "nbdnl: " + ErrNotSupported.Error()
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is makes errors.Is(err, ErrNotSupported) true.
func (e *NotSupportedError) Is(target error) bool { return target == ErrNotSupported }

func (e *NotSupportedError) Unwrap() error { return e.Err }

// CommandError is a failed NBD generic netlink command. Err is usually a
// syscall.Errno from the kernel (EINVAL for a wrong backend identifier or an
// unknown device, EBUSY for an index already in use, EPERM without
// CAP_SYS_ADMIN), so errors.Is(err, unix.EBUSY) works.
type CommandError struct {
	Cmd   string // "connect", "reconfigure", "disconnect", "status"
	Index int    // device index, -1 if none
	Err   error
}

func (e *CommandError) Error() string {
	if e.Index >= 0 {
		return fmt.Sprintf("nbdnl: %s nbd%d: %v", e.Cmd, e.Index, e.Err)
	}
	return fmt.Sprintf("nbdnl: %s: %v", e.Cmd, e.Err)
}

func (e *CommandError) Unwrap() error { return e.Err }
