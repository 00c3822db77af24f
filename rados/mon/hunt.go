package mon

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
)

// Hunting: finding a monitor that answers, in random order, and keeping
// one session with it (reconnecting on faults).

// candidates returns the monitors to try in random order, each a list of
// msgr2 addresses; the monitor at avoid (the one that just failed) goes last.
func (c *Client) candidates(avoid entity.Addr) [][]entity.Addr {
	c.mu.Lock()
	var mons [][]entity.Addr
	if c.monmap != nil {
		for _, m := range c.monmap.Mons {
			var v2 []entity.Addr
			for _, a := range m.Addrs {
				if a.Type == entity.AddrMsgr2 {
					v2 = append(v2, a)
				}
			}
			if len(v2) > 0 {
				mons = append(mons, v2)
			}
		}
	}
	// The configured addresses come after the monmap's (shuffled apart):
	// they still work when the monmap's addresses are not reachable from
	// here (NAT, a stale map).
	known := map[entity.Addr]bool{}
	for _, m := range mons {
		for _, a := range m {
			known[a] = true
		}
	}
	var extra [][]entity.Addr
	for _, m := range c.cfg.Mons {
		if len(m) > 0 && !known[m[0]] {
			extra = append(extra, m)
		}
	}
	c.mu.Unlock()
	rand.Shuffle(len(mons), func(i, j int) { mons[i], mons[j] = mons[j], mons[i] })
	rand.Shuffle(len(extra), func(i, j int) { extra[i], extra[j] = extra[j], extra[i] })
	mons = append(mons, extra...)
	if !avoid.IsBlank() {
		for i, m := range mons {
			if len(m) > 0 && m[0].Equal(avoid) && i != len(mons)-1 {
				mons = append(append(mons[:i:i], mons[i+1:]...), m)
				break
			}
		}
	}
	return mons
}

// maxAttempts bounds the attempts a HuntError remembers.
const maxAttempts = 64

// hunt opens a new session, trying every candidate until one works, ctx
// ends, or a permanent error (credentials, modes, features) occurs.
func (c *Client) hunt(ctx context.Context, avoid entity.Addr) error {
	var attempts []Attempt
	pause := 100 * time.Millisecond
	for {
		for _, mon := range c.candidates(avoid) {
			for _, addr := range mon {
				err := c.connect(ctx, addr)
				if err == nil {
					return nil
				}
				if len(attempts) >= maxAttempts { // a long re-hunt keeps the latest
					attempts = append(attempts[:0], attempts[len(attempts)-maxAttempts/2:]...)
				}
				attempts = append(attempts, Attempt{Addr: addr.String(), Err: err})
				if permanent(err) {
					return err
				}
				if ctx.Err() != nil {
					return &HuntError{Attempts: attempts, Err: ctx.Err()}
				}
				select {
				case <-c.closing:
					return &HuntError{Attempts: attempts, Err: ErrClosed}
				default:
				}
			}
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return &HuntError{Attempts: attempts, Err: ctx.Err()}
		case <-c.closing:
			t.Stop()
			return &HuntError{Attempts: attempts, Err: ErrClosed}
		case <-t.C:
		}
		pause = min(pause*2, 3*time.Second)
	}
}

// connect makes one attempt to open a session with the monitor at addr.
func (c *Client) connect(ctx context.Context, addr entity.Addr) error {
	actx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
	defer cancel()

	c.mu.Lock()
	c.gen++
	gen := c.gen
	gid := c.globalID
	c.mu.Unlock()

	wrap := &authWrap{inner: c.cfg.Auth.AuthClient(gid), addr: addr.String()}
	conn, err := messenger.Dial(actx, messenger.Config{
		Addr:              addr,
		PeerType:          entity.TypeMon,
		Auth:              wrap,
		Features:          c.cfg.Features,
		GlobalID:          gid,
		GlobalSeq:         func() uint64 { return c.globalSeq.Add(1) },
		Dispatch:          func(m *messenger.Message) { c.dispatch(gen, m) },
		OnFault:           func(error) { c.fault(gen) },
		KeepaliveInterval: c.cfg.KeepaliveInterval,
		KeepaliveTimeout:  c.cfg.KeepaliveTimeout,
	})
	if err != nil {
		return err
	}
	s := &session{conn: conn, addr: addr, gen: gen}

	c.mu.Lock()
	if c.gen != gen { // Close or another attempt raced us
		c.mu.Unlock()
		conn.Close()
		return ErrClosed
	}
	if wrap.globalID != 0 {
		c.globalID = wrap.globalID
	}
	old := c.sess
	c.sess = s
	sub := c.subscribeMsgLocked()
	resend := c.takeUnsentLocked(gen)
	c.mu.Unlock()
	if old != nil {
		old.conn.Close()
	}

	if err := conn.Send(actx, sub); err != nil {
		c.dropSession(s)
		return err
	}
	for _, m := range resend {
		if err := conn.Send(actx, m); err != nil {
			c.dropSession(s)
			return err
		}
	}
	c.sessions.Add(1)
	if c.cfg.OnSession != nil {
		go c.cfg.OnSession(addr)
	}
	c.poke()
	return nil
}

func (c *Client) dropSession(s *session) {
	c.mu.Lock()
	if c.sess == s {
		c.sess = nil
	}
	c.mu.Unlock()
	s.conn.Close()
}

func (c *Client) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *Client) fault(gen uint64) {
	select {
	case c.faults <- gen:
	default:
	}
}

// run is the client's maintenance goroutine: it re-hunts after faults and
// renews tickets when they are due.
func (c *Client) run() {
	defer close(c.done)
	for {
		wait := 30 * time.Second
		if at := c.cfg.Auth.RenewAfter(); !at.IsZero() {
			c.mu.Lock()
			earliest := c.lastRenew.Add(minRenewInterval)
			c.mu.Unlock()
			if at.Before(earliest) {
				at = earliest
			}
			wait = min(wait, max(time.Until(at), 0))
		}
		t := time.NewTimer(wait)
		select {
		case <-c.closing:
			t.Stop()
			return
		case gen := <-c.faults:
			t.Stop()
			c.mu.Lock()
			cur := c.sess
			stale := cur == nil || cur.gen != gen
			if !stale {
				c.sess = nil
			}
			c.mu.Unlock()
			if stale && cur != nil {
				continue
			}
			var avoid entity.Addr
			if cur != nil {
				avoid = cur.addr
				cur.conn.Close()
			}
			c.rehunt(avoid)
		case <-c.kick:
			t.Stop()
		case <-t.C:
		}
		c.maybeRenew()
	}
}

// untilClosing returns a context derived from parent that also ends when
// the client closes.
func (c *Client) untilClosing(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		select {
		case <-c.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// rehunt searches for a monitor until it finds one or the client closes.
func (c *Client) rehunt(avoid entity.Addr) {
	ctx, cancel := c.untilClosing(context.Background())
	defer cancel()
	for {
		err := c.hunt(ctx, avoid)
		if err == nil || ctx.Err() != nil {
			return
		}
		// A permanent error (e.g. our ticket was refused on reclaim):
		// start over as a new client and keep trying.
		c.mu.Lock()
		c.globalID = 0
		c.mu.Unlock()
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
