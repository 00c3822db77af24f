package mon

import (
	"errors"
	"syscall"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
)

// Authenticator is what the monitor client needs from an auth protocol
// implementation (cephx, or NoAuth). It holds the per-client state that
// outlives one connection: the global_id and the tickets.
type Authenticator interface {
	// AuthClient returns the msgr2 AuthClient for one attempt to open a
	// monitor session. globalID is the id of our previous session (0 at
	// first); when non-zero the implementation must reclaim it by
	// presenting its AUTH ticket (CephXAuthenticate v3 old_ticket).
	AuthClient(globalID uint64) messenger.AuthClient
	// RenewAfter returns when the tickets should be renewed over the live
	// session (75 % of their lifetime), or the zero time for never.
	RenewAfter() time.Time
	// BuildRenewal returns the protocol and payload of an MAuth that
	// renews the AUTH ticket and fetches the service tickets we want.
	BuildRenewal() (protocol uint32, payload []byte, err error)
	// HandleRenewal consumes the matching MAuthReply.
	HandleRenewal(result int32, globalID uint64, payload []byte) error
}

// NoAuth authenticates with CEPH_AUTH_NONE (clusters with auth=none).
type NoAuth struct {
	Name entity.Name
}

// AuthClient implements Authenticator.
func (a *NoAuth) AuthClient(globalID uint64) messenger.AuthClient {
	return &messenger.NoneAuth{EntityName: a.Name, GlobalID: globalID}
}

// RenewAfter implements Authenticator: auth none has no tickets.
func (a *NoAuth) RenewAfter() time.Time { return time.Time{} }

// BuildRenewal implements Authenticator: nothing to renew.
func (a *NoAuth) BuildRenewal() (uint32, []byte, error) { return AuthNone, nil, nil }

// HandleRenewal implements Authenticator.
func (a *NoAuth) HandleRenewal(int32, uint64, []byte) error { return nil }

// authWrap wraps an AuthClient to learn the global_id the monitor assigns
// and to turn AUTH_BAD_METHOD into typed errors.
type authWrap struct {
	inner    messenger.AuthClient
	addr     string
	offered  []uint32
	method   uint32
	globalID uint64
	conMode  uint32
}

func (w *authWrap) AuthRequest() (uint32, []uint32, []byte, error) {
	m, modes, p, err := w.inner.AuthRequest()
	w.method, w.offered = m, modes
	return m, modes, p, err
}

func (w *authWrap) HandleReplyMore(p []byte) ([]byte, error) {
	return w.inner.HandleReplyMore(p)
}

func (w *authWrap) HandleDone(globalID uint64, conMode uint32, p []byte) ([]byte, []byte, error) {
	w.globalID, w.conMode = globalID, conMode
	return w.inner.HandleDone(globalID, conMode, p)
}

func (w *authWrap) HandleBadMethod(method uint32, result int32, allowedMethods, allowedModes []uint32) error {
	inner := w.inner.HandleBadMethod(method, result, allowedMethods, allowedModes)
	e := &AuthError{Kind: ErrPermission, Addr: w.addr, Method: method, Result: result,
		OfferedModes: w.offered, AllowedMethods: allowedMethods, AllowedModes: allowedModes}
	if inner != nil && !errors.Is(inner, syscall.Errno(-result)) {
		e.Err = inner
	}
	switch {
	case len(allowedMethods) > 0 && !containsU32(allowedMethods, method):
		e.Kind = ErrAuthMethod
	case len(allowedModes) > 0 && !intersects(allowedModes, w.offered):
		e.Kind = ErrSecureRequired
	}
	return e
}

func containsU32(s []uint32, v uint32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func intersects(a, b []uint32) bool {
	for _, x := range a {
		if containsU32(b, x) {
			return true
		}
	}
	return false
}
