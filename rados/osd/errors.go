package osd

import (
	"errors"
	"strconv"
	"syscall"
)

// Sentinel errors. Errors from [Client.Do] wrap one of these, a
// syscall.Errno from the OSD, or the context's error.
var (
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("osd: client closed")
	// ErrPaused: the cluster had the pauserd/pausewr flag (`ceph osd
	// pause`) set for this kind of request until the request's context
	// ended. Requests wait for a map without the flag, as librados does;
	// the error wraps the context's error too. It also matches
	// syscall.EAGAIN.
	ErrPaused = errors.New("osd: cluster paused")
	// ErrNoPool: the pool does not exist in the current map. It also
	// matches syscall.ENOENT.
	ErrNoPool = errors.New("osd: pool does not exist")
	// ErrNoMap: no OSDMap has been received yet.
	ErrNoMap = errors.New("osd: no osdmap yet")
	// ErrBlocklisted: the OSD says we are blocklisted (ESHUTDOWN); the
	// client instance must be recreated.
	ErrBlocklisted = errors.New("osd: client is blocklisted")
	// ErrProtocol: a malformed message from an OSD.
	ErrProtocol = errors.New("osd: protocol error")
)

// OpError reports a failed request: the first failing op (or the first op
// when the failure is not tied to one), the object and the error, which is
// a syscall.Errno for results from the OSD.
type OpError struct {
	Op     OpCode
	Pool   int64
	Object string
	Err    error
}

func (e *OpError) Error() string {
	s := "osd: " + e.Op.String() + " " + strconv.FormatInt(e.Pool, 10) + "/" + e.Object + ": "
	if e.Err == nil {
		return s + "<nil>"
	}
	return s + e.Err.Error()
}

func (e *OpError) Unwrap() error { return e.Err }

// Errno returns the errno carried by err (0 if none).
func Errno(err error) syscall.Errno {
	var en syscall.Errno
	if errors.As(err, &en) {
		return en
	}
	return 0
}

// errnoErr turns a negative OSD result into an error; it returns nil for
// results >= 0.
func errnoErr(r int32) error {
	if r >= 0 {
		return nil
	}
	if -r == int32(syscall.ESHUTDOWN) {
		return blocklistedErr{}
	}
	return syscall.Errno(-r)
}

// blocklistedErr matches both ErrBlocklisted and syscall.ESHUTDOWN.
type blocklistedErr struct{}

func (blocklistedErr) Error() string { return ErrBlocklisted.Error() }
func (blocklistedErr) Is(t error) bool {
	return t == ErrBlocklisted || t == syscall.ESHUTDOWN
}

// wrapErr ties a sentinel to an errno so errors.Is matches both.
type wrapErr struct {
	sentinel error
	errno    syscall.Errno
}

func (w wrapErr) Error() string { return w.sentinel.Error() }
func (w wrapErr) Is(t error) bool {
	return t == w.sentinel || t == w.errno
}

var errNoPool = wrapErr{ErrNoPool, syscall.ENOENT}

// pausedError ends a request that waited for a paused cluster until its
// context ended: it matches ErrPaused and syscall.EAGAIN, and unwraps to
// the context's error.
type pausedError struct{ cause error }

func (e pausedError) Error() string {
	return ErrPaused.Error() + " (pauserd/pausewr flag set; `ceph osd unpause` lifts it): gave up waiting: " + e.cause.Error()
}
func (e pausedError) Unwrap() error { return e.cause }
func (e pausedError) Is(t error) bool {
	return t == ErrPaused || t == syscall.EAGAIN
}
