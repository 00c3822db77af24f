package cephx

// Tickets and the ticket reply (cephx_build_service_ticket_reply /
// CephXTicketHandler::verify_service_ticket_reply):
//
//	u8 1, u32 n, n × {
//	    u32 service_id, u8 1,
//	    u32 len + Seal(principal key, TICKET_SESSION_KEY,
//	                   u8 1 | CryptoKey session_key | utime validity),
//	    u8 is_enc,
//	    is_enc: u32 len + Seal(old session key, TICKET_BLOB, u32 len + CephXTicketBlob)
//	    else:   u32 len + CephXTicketBlob
//	}
//	CephXTicketBlob = u8 1, u64 secret_id, u32 len + opaque blob

import (
	"fmt"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// Ticket is a service ticket: the session key shared with the service and
// the opaque blob (sealed with the service's rotating secret) we present.
type Ticket struct {
	Service    entity.Type
	SessionKey *CryptoKey
	SecretID   uint64
	Blob       []byte
	Validity   time.Duration
	Received   time.Time // local clock (monotonic) at receipt
	Expires    time.Time // Received + Validity
	RenewAfter time.Time // Expires - Validity/4, as the kernel does
}

// Valid reports whether the ticket has not expired at now.
func (t *Ticket) Valid(now time.Time) bool { return t != nil && now.Before(t.Expires) }

// NeedsRenewal reports whether 75 % of the ticket's life has passed at now.
func (t *Ticket) NeedsRenewal(now time.Time) bool { return t == nil || !now.Before(t.RenewAfter) }

// encodeTicketBlob appends a CephXTicketBlob.
func encodeTicketBlob(e *encoding.Encoder, secretID uint64, blob []byte) {
	e.U8(1)
	e.U64(secretID)
	e.Bytes32(blob)
}

func decodeTicketBlob(d *encoding.Decoder) (secretID uint64, blob []byte, err error) {
	v := d.U8()
	secretID = d.U64()
	blob = d.BytesCopy()
	if err := d.Err(); err != nil {
		return 0, nil, fmt.Errorf("%w: ticket blob: %v", ErrProtocol, err)
	}
	if v != 1 {
		return 0, nil, fmt.Errorf("%w: ticket blob struct_v %d", ErrProtocol, v)
	}
	if blob == nil {
		blob = []byte{}
	}
	return secretID, blob, nil
}

// minTicketSize bounds the ticket count: u32 + u8 + u32 + u8 + u32.
const minTicketSize = 4 + 1 + 4 + 1 + 4

// parseTicketReply decodes a ticket reply. principal opens each "blob for
// me"; oldKey returns the session key previously held for a service (for
// is_enc blobs) or nil.
func parseTicketReply(d *encoding.Decoder, principal *CryptoKey, oldKey func(entity.Type) *CryptoKey, now time.Time) ([]*Ticket, error) {
	v := d.U8()
	n := d.Count(minTicketSize)
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("%w: ticket reply: %v", ErrProtocol, err)
	}
	if v != 1 {
		return nil, fmt.Errorf("%w: ticket reply struct_v %d", ErrProtocol, v)
	}
	out := make([]*Ticket, 0, n)
	for i := 0; i < n; i++ {
		t, err := parseOneTicket(d, principal, oldKey, now)
		if err != nil {
			return nil, fmt.Errorf("ticket %d of %d: %w", i+1, n, err)
		}
		out = append(out, t)
	}
	return out, nil
}

func parseOneTicket(d *encoding.Decoder, principal *CryptoKey, oldKey func(entity.Type) *CryptoKey, now time.Time) (*Ticket, error) {
	svc := d.U32()
	tv := d.U8()
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	if tv != 1 {
		return nil, fmt.Errorf("%w: ticket struct_v %d", ErrProtocol, tv)
	}
	if svc == 0 || svc > 0xff {
		return nil, fmt.Errorf("%w: service id %#x", ErrProtocol, svc)
	}
	service := entity.Type(svc)
	mine, err := OpenLen(d, principal, UsageTicketSessionKey)
	if err != nil {
		return nil, fmt.Errorf("%v session key: %w", service, err)
	}
	md := encoding.NewDecoder(mine)
	if mv := md.U8(); md.Err() == nil && mv != 1 {
		return nil, fmt.Errorf("%w: %v service ticket struct_v %d", ErrProtocol, service, mv)
	}
	sk, err := DecodeCryptoKey(md)
	if err != nil {
		return nil, fmt.Errorf("%v session key: %w", service, err)
	}
	validity := md.Duration()
	if err := md.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v service ticket: %v", ErrProtocol, service, err)
	}

	isEnc := d.U8()
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	var bd *encoding.Decoder
	if isEnc != 0 {
		old := oldKey(service)
		if old == nil {
			return nil, fmt.Errorf("%w: %v ticket blob is encrypted but we hold no previous session key", ErrProtocol, service)
		}
		plain, err := OpenLen(d, old, UsageTicketBlob)
		if err != nil {
			return nil, fmt.Errorf("%v ticket blob: %w", service, err)
		}
		bd = encoding.NewDecoder(plain).Sub()
	} else {
		bd = d.Sub()
	}
	secretID, blob, err := decodeTicketBlob(bd)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", service, err)
	}
	return &Ticket{
		Service:    service,
		SessionKey: sk,
		SecretID:   secretID,
		Blob:       blob,
		Validity:   validity,
		Received:   now,
		Expires:    now.Add(validity),
		RenewAfter: now.Add(validity - validity/4),
	}, nil
}
