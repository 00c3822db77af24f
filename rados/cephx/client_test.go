package cephx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func testTicket(s entity.Type, k *CryptoKey, now time.Time, validity time.Duration) *Ticket {
	return &Ticket{Service: s, SessionKey: k, SecretID: 7, Blob: []byte("opaque"), Validity: validity,
		Received: now, Expires: now.Add(validity), RenewAfter: now.Add(validity - validity/4)}
}

func TestTicketLifetime(t *testing.T) {
	clk := &fakeClock{time.Unix(1000, 0)}
	k := testKeys(t)[0]
	c := NewClient(entity.Name{Type: entity.TypeClient, ID: "admin"}, k)
	c.SetClock(clk.now)
	if !c.RenewAfter().IsZero() {
		t.Fatal("RenewAfter before authentication")
	}
	if c.Need() != uint32(entity.TypeAuth|entity.TypeMon|entity.TypeOSD) {
		t.Fatalf("need %#x", c.Need())
	}
	c.globalID = 42
	c.tickets[entity.TypeAuth] = testTicket(entity.TypeAuth, k, clk.t, 4*time.Hour)
	c.tickets[entity.TypeMon] = testTicket(entity.TypeMon, k, clk.t, time.Hour)
	if got := c.RenewAfter(); !got.Equal(clk.t) {
		t.Fatalf("missing OSD ticket: RenewAfter %v", got)
	}
	c.tickets[entity.TypeOSD] = testTicket(entity.TypeOSD, k, clk.t, time.Hour)
	if c.NeedsRenewal() {
		t.Fatalf("fresh tickets need %#x", c.Need())
	}
	if want := clk.t.Add(45 * time.Minute); !c.RenewAfter().Equal(want) {
		t.Fatalf("RenewAfter %v, want %v", c.RenewAfter(), want)
	}
	clk.t = clk.t.Add(45 * time.Minute)
	if c.Need() != uint32(entity.TypeMon|entity.TypeOSD) {
		t.Fatalf("at 75%%: need %#x", c.Need())
	}
	// Service tickets only: GET_PRINCIPAL_SESSION_KEY for MON|OSD.
	proto, p, err := c.BuildRenewal()
	if err != nil || proto != MethodCephx {
		t.Fatal(err)
	}
	d := encoding.NewDecoder(p)
	if op := d.U16(); op != OpGetPrincipalSessionKey {
		t.Fatalf("op %#x", op)
	}
	if keys := binary.LittleEndian.Uint32(p[len(p)-4:]); keys != uint32(entity.TypeMon|entity.TypeOSD) || p[len(p)-5] != 1 {
		t.Fatalf("service ticket request %x", p[len(p)-5:])
	}
	// The authorizer inside is for the AUTH service with our global id.
	d.U8()
	if gid, svc := d.U64(), d.U32(); gid != 42 || svc != uint32(entity.TypeAuth) {
		t.Fatalf("authorizer gid %d service %#x", gid, svc)
	}
	if _, ok := c.Ticket(entity.TypeOSD); !ok {
		t.Fatal("OSD ticket should still be valid")
	}
	clk.t = clk.t.Add(16 * time.Minute)
	if _, ok := c.Ticket(entity.TypeOSD); ok {
		t.Fatal("expired OSD ticket returned")
	}
	// ServiceAuth refuses without a valid ticket.
	if _, _, _, err := c.ServiceAuth(entity.TypeOSD).AuthRequest(); !errors.Is(err, ErrNoTicket) {
		t.Fatalf("expired ticket: %v", err)
	}
	// AUTH ticket at 75%: GET_AUTH_SESSION_KEY needs the session challenge.
	clk.t = clk.t.Add(2 * time.Hour)
	if _, _, err := c.BuildRenewal(); !errors.Is(err, ErrNoTicket) {
		t.Fatalf("no challenge: %v", err)
	}
	c.serverChallenge, c.haveChallenge = 0x1234, true
	_, p, err = c.BuildRenewal()
	if err != nil || binary.LittleEndian.Uint16(p) != OpGetAuthSessionKey || p[2] != 3 {
		t.Fatalf("auth renewal %x %v", p, err)
	}
	// The old ticket travels in the request.
	if !bytes.Contains(p, []byte("opaque")) {
		t.Fatal("old ticket missing from renewal")
	}
	// Expired AUTH ticket: a new mon connection starts over with global_id 0.
	clk.t = clk.t.Add(2 * time.Hour)
	a := c.MonAuth()
	_, modes, req, err := a.AuthRequest()
	if err != nil || a.Reclaiming() {
		t.Fatalf("reclaiming with an expired ticket (%v)", err)
	}
	if !slices.Equal(modes, DefaultModes) {
		t.Fatalf("modes %v", modes)
	}
	want := []byte{10, 8, 0, 0, 0, 5, 0, 0, 0, 'a', 'd', 'm', 'i', 'n', 0, 0, 0, 0, 0, 0, 0, 0}
	if !bytes.Equal(req, want) {
		t.Fatalf("AUTH_REQUEST %x, want %x", req, want)
	}
	if _, _, err := c.BuildRenewal(); !errors.Is(err, ErrNoTicket) {
		t.Fatalf("renewal with expired AUTH ticket: %v", err)
	}
}

func TestReclaimRequest(t *testing.T) {
	k := testKeys(t)[1]
	c := NewClient(entity.Name{Type: entity.TypeClient, ID: "x"}, k)
	now := time.Now()
	c.globalID = 4242
	c.tickets[entity.TypeAuth] = testTicket(entity.TypeAuth, k, now, time.Hour)
	a := c.MonAuth(ModeCRC)
	_, modes, req, err := a.AuthRequest()
	if err != nil || !a.Reclaiming() || len(modes) != 1 || modes[0] != ModeCRC {
		t.Fatalf("%v %v %v", a.Reclaiming(), modes, err)
	}
	if gid := binary.LittleEndian.Uint64(req[len(req)-8:]); gid != 4242 {
		t.Fatalf("gid %d", gid)
	}
	more, err := a.HandleReplyMore([]byte{1, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11})
	if err != nil {
		t.Fatal(err)
	}
	d := encoding.NewDecoder(more)
	op, v, cc, key := d.U16(), d.U8(), d.U64(), d.U64()
	tv, sid, blob, other := d.U8(), d.U64(), d.Bytes(), d.U32()
	if d.Err() != nil || d.Len() != 0 {
		t.Fatalf("request %x: %v", more, d.Err())
	}
	if op != OpGetAuthSessionKey || v != 3 || tv != 1 || sid != 7 || string(blob) != "opaque" ||
		other != uint32(entity.TypeMon|entity.TypeOSD) {
		t.Fatalf("request fields %#x %d %d %d %q %#x", op, v, tv, sid, blob, other)
	}
	if want, _ := ChallengeKey(k, 0x1122334455667788, cc); key != want {
		t.Fatalf("challenge key %#x, want %#x", key, want)
	}
	// A second AUTH_REPLY_MORE is a protocol error.
	if _, err := a.HandleReplyMore([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0}); !errors.Is(err, ErrProtocol) {
		t.Fatalf("second challenge: %v", err)
	}
	// The mon refusing the reclaim makes the next attempt a fresh login.
	if err := a.HandleBadMethod(MethodCephx, -13, []uint32{2}, []uint32{1, 2}); !errors.Is(err, ErrPermission) {
		t.Fatalf("bad method: %v", err)
	}
	if c.GlobalID() != 0 || c.MonAuth().Reclaiming() {
		t.Fatal("state kept after refused reclaim")
	}
}

func TestBadMethodErrors(t *testing.T) {
	c := NewClient(entity.Name{Type: entity.TypeClient, ID: "x"}, testKeys(t)[0])
	err := c.MonAuth().HandleBadMethod(MethodCephx, -95, []uint32{1}, []uint32{1})
	if !errors.Is(err, ErrBadMethod) || errors.Is(err, ErrPermission) {
		t.Fatalf("%v", err)
	}
	if err := c.ServiceAuth(entity.TypeOSD).HandleBadMethod(MethodCephx, -13, nil, nil); !errors.Is(err, ErrPermission) || !errors.Is(err, syscall.EACCES) {
		t.Fatalf("%v", err)
	}
}

func TestAuthorizerLayout(t *testing.T) {
	for _, k := range testKeys(t) {
		tk := testTicket(entity.TypeOSD, k, time.Now(), time.Hour)
		b, err := BuildAuthorizer(99, tk, 0xabcdef, true, 0x5556)
		if err != nil {
			t.Fatal(err)
		}
		d := encoding.NewDecoder(b)
		v, gid, svc := d.U8(), d.U64(), d.U32()
		sid, blob, err := decodeTicketBlob(d)
		if err != nil || v != 1 || gid != 99 || svc != uint32(entity.TypeOSD) || sid != 7 || string(blob) != "opaque" {
			t.Fatalf("part A: %d %d %d %d %q %v", v, gid, svc, sid, blob, err)
		}
		plain, err := OpenLen(d, k, UsageAuthorize)
		if err != nil || d.Len() != 0 {
			t.Fatalf("part B: %v, %d trailing", err, d.Len())
		}
		pd := encoding.NewDecoder(plain)
		if bv, n, hc, ch := pd.U8(), pd.U64(), pd.U8(), pd.U64(); bv != 2 || n != 0xabcdef || hc != 1 || ch != 0x5556 || pd.Len() != 0 {
			t.Fatalf("part B fields %d %#x %d %#x", bv, n, hc, ch)
		}
	}
}
