package cephx

// Client: the cephx state of one rados client (entity name, key, global_id,
// tickets) shared by its mon session and all its OSD/MGR connections.

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// Auth method and msgr2 connection modes.
const (
	MethodCephx uint32 = 2 // CEPH_AUTH_CEPHX
	ModeCRC     uint32 = 1 // CEPH_CON_MODE_CRC
	ModeSecure  uint32 = 2 // CEPH_CON_MODE_SECURE
)

// cephx request ops (CephXRequestHeader / CephXResponseHeader).
const (
	OpGetAuthSessionKey      uint16 = 0x0100
	OpGetPrincipalSessionKey uint16 = 0x0200
)

// authModeMon is AUTH_MODE_MON, the first byte of a mon AUTH_REQUEST payload.
const authModeMon = 10

// DefaultWantKeys are the service tickets requested alongside the AUTH ticket.
const DefaultWantKeys = uint32(entity.TypeMon | entity.TypeOSD)

// DefaultModes is the msgr2 mode preference: secure first, crc as fallback.
var DefaultModes = []uint32{ModeSecure, ModeCRC}

// Client holds the cephx state of one rados client. It is safe for
// concurrent use; it does no I/O and starts no goroutines.
type Client struct {
	name entity.Name
	key  *CryptoKey

	mu              sync.Mutex
	want            uint32
	now             func() time.Time
	globalID        uint64
	serverChallenge uint64 // from the current mon session, for MAuth renewal
	haveChallenge   bool
	tickets         map[entity.Type]*Ticket
	// retryAt delays asking again for a service ticket the mon did not
	// issue (it skips services whose rotating key it lacks, e.g. no mgr).
	retryAt map[entity.Type]time.Time
}

// missingRetry is how long to wait before asking again for a service
// ticket the mon left out of a reply.
const missingRetry = 30 * time.Second

// NewClient returns the cephx state for entity name (e.g. client.admin)
// authenticating with key.
func NewClient(name entity.Name, key *CryptoKey) *Client {
	return &Client{
		name:    name,
		key:     key,
		want:    DefaultWantKeys,
		now:     time.Now,
		tickets: map[entity.Type]*Ticket{},
		retryAt: map[entity.Type]time.Time{},
	}
}

// SetWantKeys sets the bitmask of service tickets (entity types, e.g.
// TypeMon|TypeOSD|TypeMgr) to request; the AUTH ticket is always implied.
func (c *Client) SetWantKeys(mask uint32) {
	c.mu.Lock()
	c.want = mask &^ uint32(entity.TypeAuth)
	c.mu.Unlock()
}

// SetClock replaces the clock (tests). It must be monotonic.
func (c *Client) SetClock(now func() time.Time) {
	c.mu.Lock()
	c.now = now
	c.mu.Unlock()
}

// Name returns the entity name.
func (c *Client) Name() entity.Name { return c.name }

// Key returns the entity key.
func (c *Client) Key() *CryptoKey { return c.key }

// KeyType returns the type of the entity key.
func (c *Client) KeyType() KeyType { return c.key.Type }

// GlobalID returns the global_id assigned by the mons (0 before the first
// successful authentication).
func (c *Client) GlobalID() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.globalID
}

// Ticket returns the current ticket for a service if it has not expired.
// Tickets are immutable; a renewal replaces them.
func (c *Client) Ticket(service entity.Type) (*Ticket, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.tickets[service]
	if !t.Valid(c.now()) {
		return nil, false
	}
	return t, true
}

// Need returns the bitmask of tickets (AUTH included) that are missing or
// past 75 % of their life.
func (c *Client) Need() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.needLocked(c.now())
}

func (c *Client) needLocked(now time.Time) uint32 {
	var need uint32
	for _, s := range wantedServices(c.want | uint32(entity.TypeAuth)) {
		if !now.Before(c.dueLocked(s)) {
			need |= uint32(s)
		}
	}
	return need
}

// dueLocked returns when the ticket of s should be (re)requested: at 75 %
// of its life, and not before a pending retry.
func (c *Client) dueLocked(s entity.Type) time.Time {
	var due time.Time
	if t := c.tickets[s]; t != nil {
		due = t.RenewAfter
	}
	if r, ok := c.retryAt[s]; ok && r.After(due) {
		due = r
	}
	return due
}

// NeedsRenewal reports whether any wanted ticket should be renewed now.
func (c *Client) NeedsRenewal() bool { return c.Need() != 0 }

// RenewAfter returns when BuildRenewal should next be called on the live
// mon session: when the earliest wanted ticket reaches 75 % of its life (a
// time in the past if one is missing already), and the zero time (never)
// before the first authentication. A service ticket the mon did not issue
// is asked for again after 30 s.
func (c *Client) RenewAfter() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tickets[entity.TypeAuth] == nil {
		return time.Time{}
	}
	now := c.now()
	next := time.Time{}
	for _, s := range wantedServices(c.want | uint32(entity.TypeAuth)) {
		due := c.dueLocked(s)
		if due.IsZero() {
			return now
		}
		if next.IsZero() || due.Before(next) {
			next = due
		}
	}
	return next
}

// InvalidateTicket drops the ticket of a service, e.g. after an OSD
// rejected our authorizer; the next renewal fetches a new one.
func (c *Client) InvalidateTicket(service entity.Type) {
	c.mu.Lock()
	delete(c.tickets, service)
	c.mu.Unlock()
}

// Reset forgets the global_id and all tickets: the next mon authentication
// is a fresh login.
func (c *Client) Reset() {
	c.mu.Lock()
	c.globalID = 0
	c.haveChallenge = false
	c.tickets = map[entity.Type]*Ticket{}
	c.retryAt = map[entity.Type]time.Time{}
	c.mu.Unlock()
}

func wantedServices(mask uint32) []entity.Type {
	var out []entity.Type
	for s := uint32(1); s <= 0x80 && s != 0; s <<= 1 {
		if mask&s != 0 {
			out = append(out, entity.Type(s))
		}
	}
	return out
}

// oldKeyLocked returns the session key we hold for a service (for is_enc
// ticket blobs).
func (c *Client) oldKeyLocked(s entity.Type) *CryptoKey {
	if t := c.tickets[s]; t != nil {
		return t.SessionKey
	}
	return nil
}

// storeLocked installs new tickets. Services in requested that the reply
// left out are asked for again only after missingRetry.
func (c *Client) storeLocked(ts []*Ticket, requested uint32) {
	for _, t := range ts {
		c.tickets[t.Service] = t
		delete(c.retryAt, t.Service)
		requested &^= uint32(t.Service)
	}
	now := c.now()
	for _, s := range wantedServices(requested) {
		c.retryAt[s] = now.Add(missingRetry)
	}
}

func random64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24
	return binary.LittleEndian.Uint64(b[:])
}
