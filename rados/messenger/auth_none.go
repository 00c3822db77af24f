package messenger

import (
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// Auth methods (CEPH_AUTH_*).
const (
	AuthMethodNone  uint32 = 1
	AuthMethodCephx uint32 = 2
)

// authModeMon is CEPH_AUTH_MODE_MON, the first byte of the AUTH_REQUEST
// payload sent to a monitor; authorizers for other daemons start with
// struct version 1 instead.
const authModeMon = 10

// NoneAuth is the AuthClient of auth method "none" (CEPH_AUTH_NONE), for
// clusters with auth_client_required = none. It only tells the server who
// we are; there is no session key, so only crc mode is possible (the
// server filters secure mode out for auth none, see AuthRegistry).
//
// To a monitor it sends u8 AUTH_MODE_MON, the entity name and our global
// id (MonConnection::get_auth_request); to any other daemon the "none"
// authorizer: u8 1, the entity name and the global id
// (AuthNoneClientHandler::build_authorizer).
type NoneAuth struct {
	EntityName entity.Name
	GlobalID   uint64
	// PeerType is the daemon type we authenticate to; 0 means a monitor.
	PeerType entity.Type
}

// AuthRequest implements AuthClient.
func (a *NoneAuth) AuthRequest() (uint32, []uint32, []byte, error) {
	e := encoding.NewEncoder(nil)
	if a.PeerType == 0 || a.PeerType == entity.TypeMon {
		e.U8(authModeMon)
	} else {
		e.U8(1)
	}
	t := a.EntityName.Type
	if t == 0 {
		t = entity.TypeClient
	}
	e.U32(uint32(t))
	e.String(a.EntityName.ID)
	e.U64(a.GlobalID)
	return AuthMethodNone, []uint32{ModeCRC}, e.Bytes(), nil
}

// HandleReplyMore implements AuthClient; auth none has a single round.
func (a *NoneAuth) HandleReplyMore([]byte) ([]byte, error) {
	return nil, fmt.Errorf("%w: auth none got AUTH_REPLY_MORE", ErrAuth)
}

// HandleDone implements AuthClient: no session key, no connection secret.
func (a *NoneAuth) HandleDone(globalID uint64, conMode uint32, _ []byte) ([]byte, []byte, error) {
	if conMode != ModeCRC {
		return nil, nil, fmt.Errorf("%w: auth none cannot use con mode %d", ErrAuth, conMode)
	}
	a.GlobalID = globalID
	return nil, nil, nil
}

// HandleBadMethod implements AuthClient.
func (a *NoneAuth) HandleBadMethod(method uint32, result int32, allowedMethods, allowedModes []uint32) error {
	return fmt.Errorf("%w: server refused auth method %d (result %d); it allows methods %v with modes %v",
		ErrAuth, method, result, allowedMethods, allowedModes)
}
