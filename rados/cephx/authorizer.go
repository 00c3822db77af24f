package cephx

// The cephx authorizer (CephXAuthorizer / ceph_x_build_authorizer) a client
// presents to a service (OSD, MGR) with that service's ticket, and to the
// mon's AUTH service inside GET_PRINCIPAL_SESSION_KEY:
//
//	part A (clear)  u8 1 | u64 global_id | u32 service_id | CephXTicketBlob
//	part B          u32 len + Seal(ticket session key, AUTHORIZE,
//	                    u8 2 | u64 nonce | u8 have_challenge | u64 server_challenge+1)
//
// msgr2 exchange with a service (payloads without the frame's u32 length):
//
//	AUTH_REQUEST       the authorizer (parts A and B)
//	AUTH_REPLY_MORE    Seal(session key, AUTHORIZE_CHALLENGE, u8 v | u64 server_challenge),
//	                   raw ciphertext, no length
//	AUTH_REQUEST_MORE  the authorizer rebuilt with have_challenge=1, same nonce
//	AUTH_DONE          u32 len + Seal(session key, AUTHORIZE_REPLY,
//	                   u8 v | u64 nonce+1 | (v>=2) string connection_secret)

import (
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// BuildAuthorizer encodes an authorizer for ticket t.
func BuildAuthorizer(globalID uint64, t *Ticket, nonce uint64, haveChallenge bool, serverChallengePlusOne uint64) ([]byte, error) {
	e := encoding.NewEncoder(make([]byte, 0, 64+len(t.Blob)))
	e.U8(1)
	e.U64(globalID)
	e.U32(uint32(t.Service))
	encodeTicketBlob(e, t.SecretID, t.Blob)
	b := encoding.NewEncoder(make([]byte, 0, 18))
	b.U8(2)
	b.U64(nonce)
	b.Bool(haveChallenge)
	b.U64(serverChallengePlusOne)
	if err := SealLen(e, t.SessionKey, UsageAuthorize, b.Bytes()); err != nil {
		return nil, err
	}
	return e.Bytes(), nil
}

// ServiceAuth drives one msgr2 authentication attempt with a service (OSD
// or MGR). It satisfies messenger.AuthClient. Make a new one per connection
// attempt with Client.ServiceAuth so it uses the newest ticket.
type ServiceAuth struct {
	c       *Client
	service entity.Type
	modes   []uint32

	ticket   *Ticket
	globalID uint64
	nonce    uint64
	state    int // 0 new, 1 sent, 2 challenged, 3 done
}

// ServiceAuth returns an authenticator for one connection attempt to a
// service of the given type (entity.TypeOSD, entity.TypeMgr).
func (c *Client) ServiceAuth(service entity.Type, modes ...uint32) *ServiceAuth {
	if len(modes) == 0 {
		modes = DefaultModes
	}
	return &ServiceAuth{c: c, service: service, modes: append([]uint32(nil), modes...)}
}

// Stale reports whether the client now holds a different ticket for the
// service than the one this authorizer was built with (its secret_id
// changed, or it was renewed or invalidated). New connections should then
// use a fresh ServiceAuth.
func (a *ServiceAuth) Stale() bool {
	t, ok := a.c.Ticket(a.service)
	return !ok || a.ticket == nil || t != a.ticket
}

// AuthRequest returns the AUTH_REQUEST contents: the authorizer.
func (a *ServiceAuth) AuthRequest() (method uint32, modes []uint32, payload []byte, err error) {
	t, ok := a.c.Ticket(a.service)
	if !ok {
		return 0, nil, nil, fmt.Errorf("%w for %v", ErrNoTicket, a.service)
	}
	a.ticket = t
	a.globalID = a.c.GlobalID()
	a.nonce = random64()
	p, err := BuildAuthorizer(a.globalID, t, a.nonce, false, 0)
	if err != nil {
		return 0, nil, nil, err
	}
	a.state = 1
	return MethodCephx, append([]uint32(nil), a.modes...), p, nil
}

// HandleReplyMore answers the service's challenge with the rebuilt authorizer.
func (a *ServiceAuth) HandleReplyMore(payload []byte) ([]byte, error) {
	if a.state != 1 {
		return nil, fmt.Errorf("%w: unexpected AUTH_REPLY_MORE from %v", ErrProtocol, a.service)
	}
	ch, err := parseAuthorizeChallenge(a.ticket.SessionKey, payload)
	if err != nil {
		return nil, err
	}
	p, err := BuildAuthorizer(a.globalID, a.ticket, a.nonce, true, ch+1)
	if err != nil {
		return nil, err
	}
	a.state = 2
	return p, nil
}

func parseAuthorizeChallenge(k *CryptoKey, payload []byte) (uint64, error) {
	plain, err := Open(k, UsageAuthorizeChallenge, payload)
	if err != nil {
		return 0, fmt.Errorf("authorizer challenge: %w", err)
	}
	d := encoding.NewDecoder(plain)
	d.U8() // struct_v
	ch := d.U64()
	if err := d.Err(); err != nil {
		return 0, fmt.Errorf("%w: authorizer challenge: %v", ErrProtocol, err)
	}
	return ch, nil
}

// HandleDone checks the service's CephXAuthorizeReply (nonce+1) and returns
// the ticket session key (msgr2 HMAC key) and the connection secret.
func (a *ServiceAuth) HandleDone(globalID uint64, conMode uint32, payload []byte) (sessionKey, conSecret []byte, err error) {
	if a.state != 1 && a.state != 2 {
		return nil, nil, fmt.Errorf("%w: unexpected AUTH_DONE from %v", ErrProtocol, a.service)
	}
	conSecret, err = parseAuthorizeReply(a.ticket.SessionKey, a.nonce, payload)
	if err != nil {
		return nil, nil, fmt.Errorf("%v: %w", a.service, err)
	}
	if conMode == ModeSecure && len(conSecret) == 0 {
		return nil, nil, fmt.Errorf("%w: %v: secure mode without a connection secret", ErrProtocol, a.service)
	}
	a.state = 3
	return a.ticket.SessionKey.Secret(), conSecret, nil
}

func parseAuthorizeReply(k *CryptoKey, nonce uint64, payload []byte) ([]byte, error) {
	d := encoding.NewDecoder(payload)
	plain, err := OpenLen(d, k, UsageAuthorizeReply)
	if err != nil {
		return nil, fmt.Errorf("authorizer reply: %w", err)
	}
	pd := encoding.NewDecoder(plain)
	v := pd.U8()
	n := pd.U64()
	var secret []byte
	if v >= 2 {
		secret = pd.BytesCopy()
	}
	if err := pd.Err(); err != nil {
		return nil, fmt.Errorf("%w: authorizer reply: %v", ErrProtocol, err)
	}
	if n != nonce+1 {
		return nil, fmt.Errorf("%w: authorizer reply nonce mismatch", ErrPermission)
	}
	if len(secret) > maxConSecret {
		return nil, fmt.Errorf("%w: connection secret of %d bytes", ErrProtocol, len(secret))
	}
	return secret, nil
}

// HandleBadMethod turns AUTH_BAD_METHOD into an error. When the service
// refused our authorizer the ticket is dropped so that the next renewal over
// the mon session fetches a new one.
func (a *ServiceAuth) HandleBadMethod(method uint32, result int32, allowedMethods, allowedModes []uint32) error {
	if result == -errnoEACCES || result == -errnoEPERM {
		a.c.mu.Lock()
		if a.ticket != nil && a.c.tickets[a.service] == a.ticket {
			delete(a.c.tickets, a.service)
		}
		a.c.mu.Unlock()
	}
	return badMethodError(method, result, allowedMethods, allowedModes)
}
