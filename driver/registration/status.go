package registration

import (
	"fmt"
	"time"
)

// State is where the registration stands, as the kubelet last told it.
type State int

const (
	// Waiting: the socket is up and the kubelet has not reported yet
	// (or the socket was re-created and the kubelet has to register the
	// plugin again).
	Waiting State = iota
	// Registered: the kubelet's last NotifyRegistrationStatus said the
	// plugin is registered.
	Registered
	// Failed: the kubelet's last NotifyRegistrationStatus carried an
	// error (Status.Err); the kubelet retries while the socket exists.
	Failed
	// Replaced: another process's socket is at the path (a newer plugin
	// on this node); this one stopped listening and leaves it alone.
	Replaced
)

func (s State) String() string {
	switch s {
	case Waiting:
		return "waiting"
	case Registered:
		return "registered"
	case Failed:
		return "failed"
	case Replaced:
		return "replaced"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Status is the registration's state with the kubelet's error text when it
// failed.
type Status struct {
	State State
	// Err is the kubelet's error message when State is Failed, or why
	// the socket could not be re-created while Waiting.
	Err string
	// Since is when State was entered.
	Since time.Time
	// Socket is the registration socket's path.
	Socket string
}

func (s Status) String() string {
	if s.Err != "" {
		return fmt.Sprintf("%s: %s", s.State, s.Err)
	}
	return s.State.String()
}
