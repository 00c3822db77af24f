package cephx

// Authentication with a monitor over msgr2 (MonConnection::get_auth_request,
// handle_auth_reply_more, handle_auth_done in Ceph's MonClient.cc).
//
// Payloads are the contents of the frames' auth bufferlists, without the
// u32 length the frame encoding puts in front of them:
//
//	AUTH_REQUEST       u8 AUTH_MODE_MON (10) | u32 entity type | string id | u64 global_id
//	AUTH_REPLY_MORE    CephXServerChallenge: u8 1 | u64 server_challenge
//	AUTH_REQUEST_MORE  u16 op 0x0100 | CephXAuthenticate
//	AUTH_DONE          u16 op | i32 result | ticket reply (entity key)
//	                   | u32 len + (u32 len + Seal(AUTH session key, AUTH_CONNECTION_SECRET, string secret))
//	                   | u32 len + ticket reply (AUTH session key), the other_keys tickets
//
// CephXAuthenticate (struct_v 3): u8 3 | u64 client_challenge | u64 key |
// CephXTicketBlob old_ticket | u32 other_keys.

import (
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// MonAuth drives one msgr2 authentication attempt with a monitor. It
// satisfies messenger.AuthClient. Make a new one per connection attempt
// with Client.MonAuth.
type MonAuth struct {
	c       *Client
	modes   []uint32
	reclaim *Ticket // the AUTH ticket presented for global_id reclaim, or nil
	sentGID uint64

	state           int // 0: request not built, 1: waiting challenge, 2: waiting done, 3: done
	serverChallenge uint64
	gid             uint64    // assigned in AUTH_DONE
	tickets         []*Ticket // issued in AUTH_DONE
}

// MonAuth returns an authenticator for one mon connection attempt. modes
// lists the acceptable connection modes in order of preference
// (DefaultModes when empty).
//
// If the client holds a global_id and an unexpired AUTH ticket, the attempt
// reclaims that global_id (presenting the ticket); otherwise it is a fresh
// login with global_id 0, which yields a new global_id.
func (c *Client) MonAuth(modes ...uint32) *MonAuth {
	if len(modes) == 0 {
		modes = DefaultModes
	}
	return &MonAuth{c: c, modes: append([]uint32(nil), modes...)}
}

// Reclaiming reports whether AuthRequest chose to reclaim the previous global_id.
func (a *MonAuth) Reclaiming() bool { return a.reclaim != nil }

// AuthRequest returns the AUTH_REQUEST contents.
func (a *MonAuth) AuthRequest() (method uint32, modes []uint32, payload []byte, err error) {
	c := a.c
	c.mu.Lock()
	gid := c.globalID
	auth := c.tickets[entity.TypeAuth]
	if gid != 0 && auth.Valid(c.now()) {
		a.reclaim = auth
		a.sentGID = gid
	} else {
		a.reclaim = nil
		a.sentGID = 0
	}
	c.mu.Unlock()

	e := encoding.NewEncoder(make([]byte, 0, 32))
	e.U8(authModeMon)
	e.U32(uint32(c.name.Type))
	e.String(c.name.ID)
	e.U64(a.sentGID)
	a.state = 1
	return MethodCephx, append([]uint32(nil), a.modes...), e.Bytes(), nil
}

// HandleReplyMore consumes the server challenge and returns the
// GET_AUTH_SESSION_KEY request.
func (a *MonAuth) HandleReplyMore(payload []byte) ([]byte, error) {
	if a.state != 1 {
		return nil, fmt.Errorf("%w: unexpected AUTH_REPLY_MORE from mon", ErrProtocol)
	}
	ch, err := parseServerChallenge(payload)
	if err != nil {
		return nil, err
	}
	a.serverChallenge = ch
	a.c.mu.Lock()
	want := a.c.want
	a.c.mu.Unlock()
	req, err := buildAuthenticate(a.c.key, ch, a.reclaim, want)
	if err != nil {
		return nil, err
	}
	a.state = 2
	return req, nil
}

// parseServerChallenge decodes CephXServerChallenge. It also accepts the
// bufferlist with its u32 length still in front.
func parseServerChallenge(p []byte) (uint64, error) {
	if len(p) == 13 && p[0] == 9 && p[1] == 0 && p[2] == 0 && p[3] == 0 {
		p = p[4:]
	}
	d := encoding.NewDecoder(p)
	v := d.U8()
	ch := d.U64()
	if err := d.Err(); err != nil {
		return 0, fmt.Errorf("%w: server challenge: %v", ErrProtocol, err)
	}
	if v != 1 || d.Len() != 0 {
		return 0, fmt.Errorf("%w: server challenge struct_v %d, %d trailing bytes", ErrProtocol, v, d.Len())
	}
	return ch, nil
}

// buildAuthenticate encodes u16 GET_AUTH_SESSION_KEY + CephXAuthenticate v3.
func buildAuthenticate(key *CryptoKey, serverChallenge uint64, oldTicket *Ticket, otherKeys uint32) ([]byte, error) {
	clientChallenge := random64()
	k, err := ChallengeKey(key, serverChallenge, clientChallenge)
	if err != nil {
		return nil, err
	}
	e := encoding.NewEncoder(make([]byte, 0, 64))
	e.U16(OpGetAuthSessionKey)
	e.U8(3)
	e.U64(clientChallenge)
	e.U64(k)
	if oldTicket != nil {
		encodeTicketBlob(e, oldTicket.SecretID, oldTicket.Blob)
	} else {
		encodeTicketBlob(e, 0, nil)
	}
	e.U32(otherKeys &^ uint32(entity.TypeAuth))
	return e.Bytes(), nil
}

// HandleDone parses AUTH_DONE, installs the tickets and global_id, and
// returns the AUTH session key (msgr2 HMAC key) and the connection secret.
func (a *MonAuth) HandleDone(globalID uint64, conMode uint32, payload []byte) (sessionKey, conSecret []byte, err error) {
	if a.state != 2 {
		return nil, nil, fmt.Errorf("%w: unexpected AUTH_DONE from mon", ErrProtocol)
	}
	if globalID == 0 {
		return nil, nil, fmt.Errorf("%w: mon assigned global_id 0", ErrProtocol)
	}
	c := a.c
	c.mu.Lock()
	defer c.mu.Unlock()
	r, err := c.parseSessionKeyReply(payload, true)
	if err != nil {
		return nil, nil, err
	}
	if conMode == ModeSecure && len(r.conSecret) == 0 {
		return nil, nil, fmt.Errorf("%w: secure mode without a connection secret", ErrProtocol)
	}
	if a.reclaim == nil || globalID != a.sentGID {
		// A new global_id: tickets issued to the old one are useless.
		c.tickets = map[entity.Type]*Ticket{}
	}
	c.storeLocked(r.tickets, c.want|uint32(entity.TypeAuth))
	c.globalID = globalID
	c.serverChallenge = a.serverChallenge
	c.haveChallenge = true
	a.state = 3
	a.gid, a.tickets = globalID, r.tickets
	return r.auth.SessionKey.Secret(), r.conSecret, nil
}

// Adopt makes this attempt's outcome the client's state again: its
// global_id, its tickets and its server challenge (which MAuth renewals on
// that mon session must use). HandleDone already did this; a mon client
// that runs several attempts in parallel while hunting calls Adopt on the
// one whose connection it keeps, since the last attempt to finish wins
// otherwise. It does nothing unless the attempt succeeded.
func (a *MonAuth) Adopt() {
	if a.state != 3 {
		return
	}
	c := a.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.globalID != a.gid {
		c.tickets = map[entity.Type]*Ticket{}
	}
	for _, t := range a.tickets {
		// Keep tickets renewed since (MAuth on this very session).
		if cur := c.tickets[t.Service]; cur == nil || cur.Received.Before(t.Received) {
			c.tickets[t.Service] = t
		}
	}
	c.globalID = a.gid
	c.serverChallenge = a.serverChallenge
	c.haveChallenge = true
}

// HandleBadMethod turns AUTH_BAD_METHOD into an error. A wrong key or an
// unknown entity arrives here with result -EACCES (ErrPermission).
func (a *MonAuth) HandleBadMethod(method uint32, result int32, allowedMethods, allowedModes []uint32) error {
	if a.reclaim != nil && (result == -errnoEACCES || result == -errnoEPERM) {
		// The mon refused our reclaim (e.g. it no longer accepts the
		// ticket): the next attempt starts over with global_id 0.
		a.c.mu.Lock()
		if a.c.tickets[entity.TypeAuth] == a.reclaim {
			a.c.globalID = 0
			a.c.tickets = map[entity.Type]*Ticket{}
		}
		a.c.mu.Unlock()
	}
	return badMethodError(method, result, allowedMethods, allowedModes)
}

func badMethodError(method uint32, result int32, allowedMethods, allowedModes []uint32) error {
	if result == -errnoEACCES || result == -errnoEPERM {
		return fmt.Errorf("%w: server refused cephx credentials: %w", ErrPermission, errnoOf(result))
	}
	return fmt.Errorf("%w: method %d refused (%w); server allows methods %v, modes %v",
		ErrBadMethod, method, errnoOf(result), allowedMethods, allowedModes)
}

// sessionKeyReply is a decoded GET_AUTH_SESSION_KEY reply.
type sessionKeyReply struct {
	tickets   []*Ticket
	auth      *Ticket
	conSecret []byte
}

// parseSessionKeyReply decodes u16 op | i32 result | ticket reply |
// [connection secret] | [extra tickets]. c.mu must be held; nothing is
// stored.
func (c *Client) parseSessionKeyReply(payload []byte, wantAuth bool) (*sessionKeyReply, error) {
	d := encoding.NewDecoder(payload)
	op := d.U16()
	result := d.I32()
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("%w: reply header: %v", ErrProtocol, err)
	}
	if op != OpGetAuthSessionKey {
		return nil, fmt.Errorf("%w: reply op %#x, want %#x", ErrProtocol, op, OpGetAuthSessionKey)
	}
	if err := resultError("get_auth_session_key", result); err != nil {
		return nil, err
	}
	now := c.now()
	ts, err := parseTicketReply(d, c.key, c.oldKeyLocked, now)
	if err != nil {
		return nil, fmt.Errorf("auth ticket reply: %w", err)
	}
	r := &sessionKeyReply{tickets: ts}
	for _, t := range ts {
		if t.Service == entity.TypeAuth {
			r.auth = t
		}
	}
	if r.auth == nil {
		return nil, fmt.Errorf("%w: reply carries no AUTH ticket", ErrProtocol)
	}
	if d.Len() > 0 { // Nautilus+: connection secret
		cd := d.Sub()
		if err := d.Err(); err != nil {
			return nil, fmt.Errorf("%w: connection secret: %v", ErrProtocol, err)
		}
		if cd.Len() > 0 {
			plain, err := OpenLen(cd, r.auth.SessionKey, UsageAuthConnectionSecret)
			if err != nil {
				return nil, fmt.Errorf("connection secret: %w", err)
			}
			sd := encoding.NewDecoder(plain)
			r.conSecret = sd.BytesCopy()
			if err := sd.Err(); err != nil {
				return nil, fmt.Errorf("%w: connection secret: %v", ErrProtocol, err)
			}
			if len(r.conSecret) > maxConSecret {
				return nil, fmt.Errorf("%w: connection secret of %d bytes", ErrProtocol, len(r.conSecret))
			}
		}
	} else if wantAuth {
		return nil, fmt.Errorf("%w: pre-Nautilus mon reply (no connection secret) is unsupported", ErrProtocol)
	}
	if d.Len() > 0 { // the other_keys service tickets
		xd := d.Sub()
		if err := d.Err(); err != nil {
			return nil, fmt.Errorf("%w: service tickets: %v", ErrProtocol, err)
		}
		if xd.Len() > 0 {
			more, err := parseTicketReply(xd, r.auth.SessionKey, func(entity.Type) *CryptoKey { return nil }, now)
			if err != nil {
				return nil, fmt.Errorf("service ticket reply: %w", err)
			}
			r.tickets = append(r.tickets, more...)
		}
	}
	return r, nil
}

// maxConSecret is CEPH_MAX_CON_SECRET_LEN.
const maxConSecret = 64
