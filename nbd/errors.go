package nbd

import (
	"context"
	"errors"
	"fmt"
	"syscall"
)

// Errno is an NBD error number as sent in replies. The values are the
// Linux errno values the spec borrows.
type Errno uint32

// NBD error numbers.
const (
	EPERM     Errno = 1
	EIO       Errno = 5
	ENOMEM    Errno = 12
	EINVAL    Errno = 22
	ENOSPC    Errno = 28
	EOVERFLOW Errno = 75
	ENOTSUP   Errno = 95
	ESHUTDOWN Errno = 108
)

func (e Errno) Error() string {
	switch e {
	case EPERM:
		return "nbd: operation not permitted"
	case EIO:
		return "nbd: input/output error"
	case ENOMEM:
		return "nbd: cannot allocate memory"
	case EINVAL:
		return "nbd: invalid argument"
	case ENOSPC:
		return "nbd: no space left on device"
	case EOVERFLOW:
		return "nbd: value too large"
	case ENOTSUP:
		return "nbd: operation not supported"
	case ESHUTDOWN:
		return "nbd: server shutting down"
	}
	return fmt.Sprintf("nbd: error %d", uint32(e))
}

// ErrnoOf maps an error returned by a Backend to the NBD error number sent
// to the client. It looks for an [Errno] or a syscall.Errno in the chain;
// cancelled contexts become ESHUTDOWN and everything else EIO. A nil error
// maps to 0.
func ErrnoOf(err error) Errno {
	if err == nil {
		return 0
	}
	var ne Errno
	if errors.As(err, &ne) && ne != 0 {
		return ne
	}
	var se syscall.Errno
	if errors.As(err, &se) {
		switch se {
		case syscall.EPERM, syscall.EACCES, syscall.EROFS:
			return EPERM
		case syscall.ENOMEM:
			return ENOMEM
		case syscall.EINVAL, syscall.ERANGE:
			return EINVAL
		case syscall.ENOSPC, syscall.EDQUOT, syscall.EFBIG:
			return ENOSPC
		case syscall.EOVERFLOW:
			return EOVERFLOW
		case syscall.ENOTSUP:
			return ENOTSUP
		case syscall.ESHUTDOWN:
			return ESHUTDOWN
		}
		return EIO
	}
	if errors.Is(err, context.Canceled) {
		return ESHUTDOWN
	}
	return EIO
}

// ProtocolError reports a client that broke the protocol badly enough that
// the server ended the session (bad magic, impossible lengths, ...).
type ProtocolError struct {
	Phase string // "handshake" or "transmission"
	Msg   string
}

func (e *ProtocolError) Error() string {
	return "nbd: " + e.Phase + ": " + e.Msg
}

func protoErrorf(phase, format string, args ...any) error {
	return &ProtocolError{Phase: phase, Msg: fmt.Sprintf(format, args...)}
}

// ErrAborted is returned by [Server.ServeConn] when the client ended the
// handshake with NBD_OPT_ABORT (a soft disconnect).
var ErrAborted = errors.New("nbd: client aborted the handshake")

// ErrTooManyConns is returned by [Server.ServeConn] when the client chose
// an export with NBD_OPT_EXPORT_NAME that already has
// [Server.MaxConnsPerExport] connections (NBD_OPT_GO gets an error reply
// instead and may choose again).
var ErrTooManyConns = errors.New("nbd: export at its connection limit")
