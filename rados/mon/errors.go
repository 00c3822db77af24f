package mon

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
)

// Sentinel errors of the monitor client. Errors returned by Client wrap
// one of these (or a context / messenger error) for errors.Is.
var (
	// ErrPermission: the monitors refused our credentials (wrong key,
	// unknown user, or a reclaim the monitor would not accept).
	ErrPermission = errors.New("mon: permission denied")
	// ErrSecureRequired: the cluster only accepts connection modes we did
	// not offer (typically ms_mon_client_mode=secure while we offered crc).
	ErrSecureRequired = errors.New("mon: cluster requires a connection mode we did not offer")
	// ErrAuthMethod: the cluster does not accept the auth method we used
	// (for example cephx against an auth=none cluster).
	ErrAuthMethod = errors.New("mon: auth method not allowed by the cluster")
	// ErrNoMonitor: no monitor could be reached before the deadline.
	ErrNoMonitor = errors.New("mon: no monitor reachable")
	// ErrWrongCluster: a monitor answered with another fsid than the one
	// we are connected to (or were told to expect).
	ErrWrongCluster = errors.New("mon: monitor belongs to another cluster")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("mon: client closed")
	// ErrNoV2Addr: a monitor map lists no msgr2 address we could use.
	ErrNoV2Addr = errors.New("mon: no msgr2 (v2) monitor address")
)

// AuthError describes an AUTH_BAD_METHOD answer (or another refusal
// during authentication). It wraps ErrPermission, ErrSecureRequired or
// ErrAuthMethod, and the errno the monitor sent.
type AuthError struct {
	Kind           error // ErrPermission, ErrSecureRequired or ErrAuthMethod
	Addr           string
	Method         uint32
	Result         int32
	OfferedModes   []uint32
	AllowedMethods []uint32
	AllowedModes   []uint32
	Err            error // the auth implementation's own error, if any
}

func (e *AuthError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v at %s", e.Kind, e.Addr)
	switch e.Kind {
	case ErrSecureRequired:
		fmt.Fprintf(&b, ": we offered %s, the cluster allows %s", modeNames(e.OfferedModes), modeNames(e.AllowedModes))
	case ErrAuthMethod:
		fmt.Fprintf(&b, ": we used %s, the cluster allows %s", methodName(e.Method), methodNames(e.AllowedMethods))
	default:
		if e.Result != 0 {
			fmt.Fprintf(&b, " (%v)", syscall.Errno(-e.Result))
		}
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Unwrap returns the kind, the errno and the inner error.
func (e *AuthError) Unwrap() []error {
	errs := []error{e.Kind}
	if e.Result < 0 {
		errs = append(errs, syscall.Errno(-e.Result))
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// CommandError is a negative answer of a monitor to a command, pool
// operation or ticket request: the errno and the status text the monitor
// sent. errors.Is(err, syscall.ENOENT) (or EACCES, EINVAL, ...) works.
type CommandError struct {
	Op     string // what was asked (the command prefix, "pool op", ...)
	Errno  syscall.Errno
	Status string
}

func (e *CommandError) Error() string {
	if e.Status != "" {
		return fmt.Sprintf("mon: %s: %s (%v)", e.Op, e.Status, e.Errno)
	}
	return fmt.Sprintf("mon: %s: %v", e.Op, e.Errno)
}

// Unwrap returns the errno (and ErrPermission for EACCES/EPERM).
func (e *CommandError) Unwrap() []error {
	if e.Errno == syscall.EACCES || e.Errno == syscall.EPERM {
		return []error{e.Errno, ErrPermission}
	}
	return []error{e.Errno}
}

// HuntError reports a failed search for a monitor: every address tried
// and what went wrong with it.
type HuntError struct {
	Attempts []Attempt
	Err      error // why the search stopped (context error or last fatal error)
}

// Attempt is one connection attempt during a hunt.
type Attempt struct {
	Addr string
	Err  error
}

func (e *HuntError) Error() string {
	var b strings.Builder
	b.WriteString(ErrNoMonitor.Error())
	seen := map[string]bool{}
	var addrs []string
	for _, a := range e.Attempts {
		if !seen[a.Addr] {
			seen[a.Addr] = true
			addrs = append(addrs, a.Addr)
		}
	}
	fmt.Fprintf(&b, " (tried %s", strings.Join(addrs, ", "))
	if n := len(e.Attempts); n > 0 {
		fmt.Fprintf(&b, "; last error: %v", e.Attempts[n-1].Err)
	}
	b.WriteString(")")
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Unwrap returns ErrNoMonitor and the stop reason.
func (e *HuntError) Unwrap() []error { return []error{ErrNoMonitor, e.Err} }

// permanent reports whether a connection error will not go away by trying
// another monitor (credentials, modes, features).
func permanent(err error) bool {
	return errors.Is(err, ErrPermission) || errors.Is(err, ErrSecureRequired) ||
		errors.Is(err, ErrAuthMethod) || errors.Is(err, messenger.ErrMissingFeatures) ||
		errors.Is(err, ErrWrongCluster)
}

func modeNames(ms []uint32) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		switch m {
		case messenger.ModeCRC:
			s[i] = "crc"
		case messenger.ModeSecure:
			s[i] = "secure"
		default:
			s[i] = fmt.Sprintf("mode%d", m)
		}
	}
	return "[" + strings.Join(s, ",") + "]"
}

func methodName(m uint32) string {
	switch m {
	case AuthNone:
		return "none"
	case AuthCephx:
		return "cephx"
	}
	return fmt.Sprintf("method%d", m)
}

func methodNames(ms []uint32) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = methodName(m)
	}
	return "[" + strings.Join(s, ",") + "]"
}
