package cephx

// Ticket renewal over an open mon session (CephxClientHandler::build_request
// and handle_response, sent by MonClient::_check_auth_tickets).
//
// The mon client wraps the bytes produced here as the auth_payload of an
// MAuth (type 17, protocol = MethodCephx) and hands the auth_payload of the
// MAuthReply (type 18) back to HandleRenewal together with its result and
// global_id. The bytes are the bufferlist contents, without the u32 length
// that MAuth's encoding puts in front of them.
//
//	GET_AUTH_SESSION_KEY      u16 0x0100 | CephXAuthenticate v3 (the session's server
//	                          challenge, old_ticket = current AUTH ticket, other_keys)
//	GET_PRINCIPAL_SESSION_KEY u16 0x0200 | authorizer built from the AUTH ticket
//	                          (service_id 0x20, session key = AUTH session key)
//	                          | CephXServiceTicketRequest: u8 1 | u32 keys
//
//	reply to 0x0100: u16 op | i32 result | ticket reply (entity key, AUTH blob
//	                 is_enc under the old AUTH session key) | u32 len + [empty or
//	                 connection secret] | u32 len + ticket reply (AUTH session key)
//	reply to 0x0200: u16 op | i32 result | ticket reply (AUTH session key)

import (
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// BuildRenewal returns the MAuth protocol (MethodCephx) and auth_payload
// that renew what Need reports: GET_AUTH_SESSION_KEY when the AUTH ticket
// needs renewal (it also asks for all wanted service tickets), else
// GET_PRINCIPAL_SESSION_KEY for the service tickets that need it. The
// payload is nil when nothing needs renewal. ErrNoTicket means the AUTH
// ticket has expired: open a new mon session (a fresh login) instead.
func (c *Client) BuildRenewal() (protocol uint32, payload []byte, err error) {
	need := c.Need()
	switch {
	case need == 0:
		return MethodCephx, nil, nil
	case need&uint32(entity.TypeAuth) != 0:
		payload, err = c.BuildAuthRenewal()
	default:
		payload, err = c.BuildServiceTicketRequest(need)
	}
	return MethodCephx, payload, err
}

// BuildAuthRenewal returns a GET_AUTH_SESSION_KEY request for the current
// mon session: it reuses the session's server challenge and presents the
// current AUTH ticket.
func (c *Client) BuildAuthRenewal() ([]byte, error) {
	c.mu.Lock()
	auth := c.tickets[entity.TypeAuth]
	valid := auth.Valid(c.now())
	ch, have := c.serverChallenge, c.haveChallenge
	want := c.want
	c.mu.Unlock()
	if !valid {
		return nil, fmt.Errorf("%w: AUTH ticket expired; re-authenticate on a new mon connection", ErrNoTicket)
	}
	if !have {
		return nil, fmt.Errorf("%w: no mon session challenge; authenticate first", ErrNoTicket)
	}
	return buildAuthenticate(c.key, ch, auth, want)
}

// BuildServiceTicketRequest returns a GET_PRINCIPAL_SESSION_KEY request for
// the service tickets in keys (bitmask of entity types; AUTH is ignored).
func (c *Client) BuildServiceTicketRequest(keys uint32) ([]byte, error) {
	c.mu.Lock()
	auth := c.tickets[entity.TypeAuth]
	valid := auth.Valid(c.now())
	gid := c.globalID
	c.mu.Unlock()
	if !valid {
		return nil, fmt.Errorf("%w: AUTH ticket expired; re-authenticate on a new mon connection", ErrNoTicket)
	}
	keys &^= uint32(entity.TypeAuth)
	if keys == 0 {
		return nil, fmt.Errorf("%w: no service tickets requested", ErrProtocol)
	}
	authz, err := BuildAuthorizer(gid, auth, random64(), false, 0)
	if err != nil {
		return nil, err
	}
	e := encoding.NewEncoder(make([]byte, 0, 2+len(authz)+5))
	e.U16(OpGetPrincipalSessionKey)
	e.Raw(authz)
	e.U8(1)
	e.U32(keys)
	return e.Bytes(), nil
}

// HandleRenewal processes an MAuthReply (its result, global_id and
// auth_payload) that answers BuildRenewal and installs the new tickets.
func (c *Client) HandleRenewal(result int32, globalID uint64, payload []byte) error {
	if result != 0 {
		return resultError("MAuthReply", result)
	}
	d := encoding.NewDecoder(payload)
	op := d.U16()
	if err := d.Err(); err != nil {
		return fmt.Errorf("%w: MAuthReply payload: %v", ErrProtocol, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if globalID != 0 && c.globalID != 0 && globalID != c.globalID {
		return fmt.Errorf("%w: MAuthReply for global_id %d, ours is %d", ErrProtocol, globalID, c.globalID)
	}
	switch op {
	case OpGetAuthSessionKey:
		r, err := c.parseSessionKeyReply(payload, false)
		if err != nil {
			return err
		}
		c.storeLocked(r.tickets, c.want|uint32(entity.TypeAuth))
		return nil
	case OpGetPrincipalSessionKey:
		result := d.I32()
		if err := d.Err(); err != nil {
			return fmt.Errorf("%w: reply header: %v", ErrProtocol, err)
		}
		if err := resultError("get_principal_session_key", result); err != nil {
			return err
		}
		auth := c.tickets[entity.TypeAuth]
		if auth == nil {
			return fmt.Errorf("%w: no AUTH ticket to open the service tickets", ErrNoTicket)
		}
		ts, err := parseTicketReply(d, auth.SessionKey, func(entity.Type) *CryptoKey { return nil }, c.now())
		if err != nil {
			return fmt.Errorf("service ticket reply: %w", err)
		}
		c.storeLocked(ts, c.needLocked(c.now())&^uint32(entity.TypeAuth))
		return nil
	}
	return fmt.Errorf("%w: MAuthReply op %#x", ErrProtocol, op)
}
