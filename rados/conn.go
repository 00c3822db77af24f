package rados

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/cephx"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
	"github.com/csi-gorbd/csi-gorbd/rados/mon"
	"github.com/csi-gorbd/csi-gorbd/rados/osd"
)

// Conn is a connection to a Ceph cluster: one monitor session (with
// failover), the current OSDMap and the OSD sessions. Safe for concurrent use.
type Conn struct {
	mc    *mon.Client
	name  entity.Name
	auth  authenticator
	modes []uint32

	maps *mapTracker
	osd  *osd.Client
}

// Connect resolves cfg, finds a monitor and authenticates. It returns
// once the cluster's monitor map is known. The deadline of ctx (or
// cfg.ConnectTimeout, default 30s) bounds the search.
func Connect(ctx context.Context, cfg Config) (*Conn, error) {
	if _, ok := ctx.Deadline(); !ok {
		d := cfg.ConnectTimeout
		if d == 0 {
			d = 30 * time.Second
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	r, err := cfg.resolve(ctx)
	if err != nil {
		return nil, err
	}
	c := &Conn{name: r.name, auth: r.auth, modes: r.modes}
	c.maps = newMapTracker(c)
	mcfg := mon.Config{Mons: r.mons, Auth: r.auth, OnOSDMap: c.maps.handle}
	if cfg.FSID != "" {
		u, err := parseUUID(cfg.FSID)
		if err != nil {
			return nil, err
		}
		mcfg.FSID = &u
	}
	// The OSD client exists before the monitor session so that the first
	// map (which may arrive during Dial) has somewhere to go.
	if c.osd, err = c.newOSDClient(); err != nil {
		c.maps.cancel()
		return nil, err
	}
	c.mc, err = mon.Dial(ctx, mcfg)
	if err != nil {
		c.osd.Close()
		c.maps.cancel()
		return nil, err
	}
	// Maps arrive in the background; object operations wait for the
	// first one.
	if err := c.mc.SubscribeOSDMap(ctx, 0); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Close ends the connection: OSD sessions (pending operations fail with
// ErrClosed) and the monitor session.
func (c *Conn) Close() error {
	c.maps.cancel()
	c.osd.Close()
	return c.mc.Close()
}

// FSID returns the cluster fsid as a UUID string.
func (c *Conn) FSID() string { return mon.FormatUUID(c.mc.FSID()) }

// Name returns the configured entity name (client.admin).
func (c *Conn) Name() entity.Name { return c.name }

// GlobalID returns the id the monitors gave this client (client.<id>).
func (c *Conn) GlobalID() uint64 { return c.mc.GlobalID() }

// Monitors returns the client's view of the MonMap.
func (c *Conn) Monitors() *mon.MonMap { return c.mc.MonMap() }

// MonClient exposes the monitor client to the other rados layers (OSD
// client, pools, snapshots).
func (c *Conn) MonClient() *mon.Client { return c.mc }

// Cephx returns the client's cephx state (tickets for OSD authorizers),
// or nil with auth none.
func (c *Conn) Cephx() *cephx.Client {
	if a, ok := c.auth.(*cephxAuth); ok {
		return a.c
	}
	return nil
}

// ServiceAuth returns the AuthClient for one new connection to a daemon
// of type t (entity.TypeOSD; entity.TypeMgr if its ticket is wanted). With
// cephx it first renews the service ticket over the monitor session
// (MAuth GET_PRINCIPAL_SESSION_KEY) when it is missing or past 75 % of its
// life, so the authorizer is always built from the newest ticket. Call it
// for every connection attempt; after BADAUTHORIZER, drop the ticket with
// Cephx().InvalidateTicket(t) and call it again.
func (c *Conn) ServiceAuth(ctx context.Context, t entity.Type) (messenger.AuthClient, error) {
	cx := c.Cephx()
	if cx == nil {
		return &messenger.NoneAuth{EntityName: c.name, GlobalID: c.mc.GlobalID(), PeerType: t}, nil
	}
	if _, ok := cx.Ticket(t); !ok || cx.Need()&uint32(t) != 0 {
		if err := c.mc.RenewTickets(ctx); err != nil {
			return nil, fmt.Errorf("rados: renewing the %v ticket: %w", t, err)
		}
		if _, ok := cx.Ticket(t); !ok {
			return nil, fmt.Errorf("rados: the monitors gave us no %v ticket: %w", t, cephx.ErrNoTicket)
		}
	}
	return cx.ServiceAuth(t, c.modes...), nil
}

// MonCommand sends one monitor command (a JSON document such as
// {"prefix":"status","format":"json"}) with optional input, and returns
// the output, the status text and, on a negative answer, a *MonError.
func (c *Conn) MonCommand(ctx context.Context, cmd string, in []byte) ([]byte, string, error) {
	return c.mc.Command(ctx, []string{cmd}, in)
}

func parseUUID(s string) ([16]byte, error) {
	var u [16]byte
	h := strings.ReplaceAll(s, "-", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 16 {
		return u, fmt.Errorf("rados: bad fsid %q", s)
	}
	copy(u[:], b)
	return u, nil
}
