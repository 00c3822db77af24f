package mon

import (
	"context"
	"syscall"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
)

// Tickets: renewing the cephx tickets over the live session (MAuth).

// RenewTickets renews the AUTH ticket and the service tickets now, over
// the live session (MAuth), and waits for the answer. The OSD client calls
// it when it needs a fresh authorizer (e.g. after BADAUTHORIZER).
func (c *Client) RenewTickets(ctx context.Context) error {
	proto, payload, err := c.cfg.Auth.BuildRenewal()
	if err != nil {
		return err
	}
	if len(payload) == 0 {
		return nil // nothing is due
	}
	c.mu.Lock()
	var epoch uint32
	if c.monmap != nil {
		epoch = c.monmap.Epoch
	}
	c.mu.Unlock()
	body := &MAuth{Protocol: proto, Payload: payload, MonMapEpoch: epoch}
	// MAuthReply carries no tid we can rely on; one renewal is in flight
	// at a time and matched by type.
	rep, err := c.call(ctx, messenger.Message{Type: MsgAuth, Version: 1, Front: body.Encode()}, nil)
	if err != nil {
		return err
	}
	if rep == nil {
		// The session changed under us; the new one authenticated afresh.
		return nil
	}
	r, err := DecodeMAuthReply(rep.Front)
	if err != nil {
		return err
	}
	if err := c.cfg.Auth.HandleRenewal(r.Result, r.GlobalID, r.Payload); err != nil {
		return err
	}
	if r.Result < 0 {
		return &CommandError{Op: "auth renewal", Errno: syscall.Errno(-r.Result), Status: r.Message}
	}
	c.renewals.Add(1)
	return nil
}

// Stats reports how many ticket renewals over MAuth succeeded and how
// many monitor sessions were opened.
func (c *Client) Stats() (renewals, sessions uint64) {
	return c.renewals.Load(), c.sessions.Load()
}

// minRenewInterval rate-limits automatic renewals (a monitor that never
// hands out a wanted service ticket must not make us spin).
const minRenewInterval = 5 * time.Second

func (c *Client) maybeRenew() {
	at := c.cfg.Auth.RenewAfter()
	now := time.Now()
	if at.IsZero() || now.Before(at) {
		return
	}
	c.mu.Lock()
	s := c.sess
	recent := now.Sub(c.lastRenew) < minRenewInterval
	if !recent {
		c.lastRenew = now
	}
	c.mu.Unlock()
	if s == nil || recent {
		return
	}
	tctx, tcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer tcancel()
	ctx, cancel := c.untilClosing(tctx)
	defer cancel()
	if err := c.RenewTickets(ctx); err != nil {
		// Renewal over this session failed: re-authenticate on a new one.
		c.fault(s.gen)
	}
}
