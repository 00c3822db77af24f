package mon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
)

// Config configures a Client.
type Config struct {
	// Mons are the initial monitors (from mon_host), each a list of msgr2
	// addresses to try in order. Replaced by the MonMap once we have it.
	Mons [][]entity.Addr
	// Auth authenticates sessions and renews tickets. Required.
	Auth Authenticator
	// FSID, if set, is the cluster we expect; other clusters are refused.
	FSID *[16]byte
	// Features advertised in CLIENT_IDENT (0: ClientFeatures).
	Features uint64
	// Hostname sent in MMonSubscribe (default os.Hostname).
	Hostname string
	// AttemptTimeout bounds one connection attempt to one monitor
	// (0: 5s).
	AttemptTimeout time.Duration
	// KeepaliveInterval / KeepaliveTimeout are passed to the messenger
	// (0: its defaults, 10s / 30s like the kernel).
	KeepaliveInterval, KeepaliveTimeout time.Duration
	// OnOSDMap, if set, receives every MOSDMap (raw maps). It is called
	// from the connection's reader goroutine and must not block.
	OnOSDMap func(*OSDMapMsg)
	// OnMessage, if set, sees every message received on the current
	// session before it is handled (tracing, capturing test vectors). It
	// runs on the reader goroutine and must not block or keep m.
	OnMessage func(m *messenger.Message)
	// OnSession, if set, is called (from a client goroutine) each time a
	// new monitor session is ready, with the monitor's address.
	OnSession func(addr entity.Addr)
}

// Client keeps one authenticated session with some monitor. It is safe
// for concurrent use.
type Client struct {
	cfg Config

	globalSeq atomic.Uint64
	renewals  atomic.Uint64
	sessions  atomic.Uint64

	mu         sync.Mutex
	sess       *session
	gen        uint64
	globalID   uint64
	monmap     *MonMap
	monmapCh   chan struct{} // closed when the first monmap arrives
	fsid       [16]byte
	haveFSID   bool
	subs       map[string]SubItem // wanted subscriptions (start = next wanted epoch)
	osdmapHave uint32
	tid        uint64
	pending    map[uint64]*request
	running    bool
	lastRenew  time.Time // last automatic renewal attempt
	fatal      error     // a permanent error seen on a session (wrong cluster)

	faults  chan uint64 // generation of a faulted session
	kick    chan struct{}
	closing chan struct{}
	done    chan struct{}
	closeMu sync.Once
}

type session struct {
	conn *messenger.Conn
	addr entity.Addr
	gen  uint64
}

type request struct {
	msg     messenger.Message
	sentGen uint64
	reply   chan *messenger.Message
}

// Dial hunts for a monitor, authenticates, subscribes to the monmap and
// returns once the cluster's MonMap (and so its fsid) is known. ctx
// bounds the whole search; when it ends the error (a *HuntError) names
// every address tried.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Auth == nil {
		return nil, errors.New("mon: Config.Auth is required")
	}
	if len(cfg.Mons) == 0 {
		return nil, fmt.Errorf("%w: no monitor addresses configured", ErrNoMonitor)
	}
	if cfg.Features == 0 {
		cfg.Features = ClientFeatures
	}
	if cfg.AttemptTimeout == 0 {
		cfg.AttemptTimeout = 5 * time.Second
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	c := &Client{
		cfg:      cfg,
		monmapCh: make(chan struct{}),
		subs:     map[string]SubItem{"monmap": {}},
		pending:  map[uint64]*request{},
		faults:   make(chan uint64, 4),
		kick:     make(chan struct{}, 1),
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
	}
	if cfg.FSID != nil {
		c.fsid, c.haveFSID = *cfg.FSID, true
	}
	c.globalSeq.Store(rand.Uint64N(1 << 20))
	if err := c.hunt(ctx, entity.Addr{}); err != nil {
		c.shutdown()
		return nil, err
	}
	select {
	case <-c.monmapCh:
	case <-ctx.Done():
		c.shutdown()
		return nil, fmt.Errorf("mon: waiting for the monmap: %w", ctx.Err())
	}
	if err := c.fatalErr(); err != nil {
		c.shutdown()
		return nil, err
	}
	c.mu.Lock()
	c.running = true
	c.mu.Unlock()
	go c.run()
	return c, nil
}

// Close ends the session and stops the client. Pending requests fail with ErrClosed.
func (c *Client) Close() error {
	c.closeMu.Do(func() {
		close(c.closing)
		c.mu.Lock()
		started := c.running
		c.mu.Unlock()
		if started {
			select {
			case <-c.done:
			case <-time.After(10 * time.Second):
			}
		}
		c.shutdown()
	})
	return nil
}

func (c *Client) shutdown() {
	c.mu.Lock()
	s := c.sess
	c.sess = nil
	for tid, r := range c.pending {
		delete(c.pending, tid)
		close(r.reply)
	}
	c.mu.Unlock()
	if s != nil {
		s.conn.Close()
	}
}

// MonMap returns the latest MonMap.
func (c *Client) MonMap() *MonMap {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.monmap
}

// FSID returns the cluster fsid.
func (c *Client) FSID() [16]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fsid
}

// GlobalID returns our global id (client.<id>).
func (c *Client) GlobalID() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.globalID
}

// SessionAddr returns the address of the monitor we are talking to (blank
// while hunting).
func (c *Client) SessionAddr() entity.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == nil {
		return entity.Addr{}
	}
	return c.sess.addr
}

// SessionInfo returns what the current monitor told us in the handshake.
func (c *Client) SessionInfo() (messenger.PeerInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == nil {
		return messenger.PeerInfo{}, false
	}
	return c.sess.conn.Peer(), true
}

// Reconnect drops the current session and hunts for another monitor
// (like a session fault). It returns at once.
func (c *Client) Reconnect() {
	c.mu.Lock()
	gen := c.gen
	c.mu.Unlock()
	select {
	case c.faults <- gen:
	default:
	}
}

func (c *Client) fatalErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fatal
}

// ---- hunting ----

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

// rehunt searches for a monitor until it finds one or the client closes.
func (c *Client) rehunt(avoid entity.Addr) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
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

// ---- subscriptions ----

func (c *Client) subscribeMsgLocked() *messenger.Message {
	what := make(map[string]SubItem, len(c.subs))
	for k, v := range c.subs {
		what[k] = v
	}
	if c.monmap != nil {
		what["monmap"] = SubItem{Start: uint64(c.monmap.Epoch) + 1}
	}
	m := &MMonSubscribe{What: what, Hostname: c.cfg.Hostname}
	return &messenger.Message{Type: MsgMonSubscribe, Version: mmonSubscribeVersion,
		CompatVersion: mmonSubscribeCompat, Front: m.Encode()}
}

// SubscribeOSDMap asks for OSDMaps from epoch start on (0: just the
// latest), persistently; maps arrive through Config.OnOSDMap. After a
// reconnect the subscription resumes from the newest epoch seen + 1.
func (c *Client) SubscribeOSDMap(ctx context.Context, start uint32) error {
	c.mu.Lock()
	c.subs["osdmap"] = SubItem{Start: uint64(start)}
	s := c.sess
	var m *messenger.Message
	if s != nil {
		m = c.subscribeMsgLocked()
	}
	c.mu.Unlock()
	if s == nil {
		return nil // sent when the session opens
	}
	return s.conn.Send(ctx, m)
}

// ---- requests ----

func (c *Client) takeUnsentLocked(gen uint64) []*messenger.Message {
	var out []*messenger.Message
	for tid, r := range c.pending {
		if r.msg.Type == MsgAuth {
			// A renewal belongs to the session it was built for; the new
			// session authenticated afresh.
			delete(c.pending, tid)
			r.reply <- nil
			continue
		}
		if r.sentGen != gen {
			r.sentGen = gen
			m := r.msg
			out = append(out, &m)
		}
	}
	return out
}

// call sends msg with a new tid and waits for the reply matched to it.
// The request survives session changes: it is resent on every new session
// until answered or ctx ends.
func (c *Client) call(ctx context.Context, msg messenger.Message, setTid func(*messenger.Message, uint64)) (*messenger.Message, error) {
	c.mu.Lock()
	if c.sess == nil && c.monmap == nil {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	select {
	case <-c.closing:
		c.mu.Unlock()
		return nil, ErrClosed
	default:
	}
	c.tid++
	tid := c.tid
	msg.Tid = tid
	if setTid != nil {
		setTid(&msg, tid)
	}
	r := &request{msg: msg, reply: make(chan *messenger.Message, 1)}
	c.pending[tid] = r
	s := c.sess
	if s != nil {
		r.sentGen = s.gen
	}
	c.mu.Unlock()

	if s != nil {
		m := msg
		if err := s.conn.Send(ctx, &m); err != nil && ctx.Err() == nil {
			// The session is failing; the request is resent on the next one.
			c.fault(s.gen)
		}
	}
	select {
	case rep, ok := <-r.reply:
		if !ok {
			return nil, ErrClosed
		}
		return rep, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, tid)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (c *Client) complete(tid uint64, m *messenger.Message) {
	c.mu.Lock()
	r := c.pending[tid]
	delete(c.pending, tid)
	c.mu.Unlock()
	if r != nil {
		r.reply <- m
	}
}

// Command sends a monitor command (cmd is one or more JSON documents,
// usually one) with optional input and returns the output bytes and the
// status text. A negative answer is a *CommandError carrying the errno
// and the monitor's text.
func (c *Client) Command(ctx context.Context, cmd []string, in []byte) ([]byte, string, error) {
	c.mu.Lock()
	fsid := c.fsid
	c.mu.Unlock()
	body := &MMonCommand{FSID: fsid, Cmd: cmd}
	rep, err := c.call(ctx, messenger.Message{Type: MsgMonCommand, Version: 1, Front: body.Encode(), Data: in}, nil)
	if err != nil {
		return nil, "", err
	}
	ack, err := DecodeMMonCommandAck(rep.Front)
	if err != nil {
		return nil, "", err
	}
	if ack.Result < 0 {
		return rep.Data, ack.Status, &CommandError{Op: commandPrefix(cmd), Errno: syscall.Errno(-ack.Result), Status: ack.Status}
	}
	return rep.Data, ack.Status, nil
}

func commandPrefix(cmd []string) string {
	if len(cmd) == 0 {
		return "command"
	}
	var v struct {
		Prefix string `json:"prefix"`
	}
	if json.Unmarshal([]byte(cmd[0]), &v) == nil && v.Prefix != "" {
		return v.Prefix
	}
	return cmd[0]
}

// GetVersion returns the newest and oldest version the monitors have of a
// map ("osdmap", "monmap", ...).
func (c *Client) GetVersion(ctx context.Context, what string) (newest, oldest uint64, err error) {
	rep, err := c.call(ctx, messenger.Message{Type: MsgMonGetVersion, Version: 1},
		func(m *messenger.Message, tid uint64) {
			m.Front = (&MMonGetVersion{Handle: tid, What: what}).Encode()
		})
	if err != nil {
		return 0, 0, err
	}
	r, err := DecodeMMonGetVersionReply(rep.Front, rep.Version)
	if err != nil {
		return 0, 0, err
	}
	return r.Newest, r.Oldest, nil
}

// PoolOp sends an MPoolOp (FSID is filled in) and returns the reply; a
// negative reply code is returned as a *CommandError.
func (c *Client) PoolOp(ctx context.Context, op MPoolOp) (*MPoolOpReply, error) {
	c.mu.Lock()
	op.FSID = c.fsid
	if op.Epoch == 0 {
		op.Epoch = uint64(c.osdmapHave)
	}
	c.mu.Unlock()
	rep, err := c.call(ctx, messenger.Message{Type: MsgPoolOp, Version: mpoolOpVersion,
		CompatVersion: mpoolOpCompat, Front: op.Encode()}, nil)
	if err != nil {
		return nil, err
	}
	r, err := DecodeMPoolOpReply(rep.Front)
	if err != nil {
		return nil, err
	}
	if r.Code < 0 {
		return r, &CommandError{Op: fmt.Sprintf("pool op 0x%x", op.Op), Errno: syscall.Errno(-r.Code)}
	}
	return r, nil
}

// ---- tickets ----

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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		select {
		case <-c.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := c.RenewTickets(ctx); err != nil {
		// Renewal over this session failed: re-authenticate on a new one.
		c.fault(s.gen)
	}
}

// ---- dispatch ----

func (c *Client) dispatch(gen uint64, m *messenger.Message) {
	c.mu.Lock()
	current := c.sess != nil && c.sess.gen == gen || c.gen == gen
	c.mu.Unlock()
	if !current {
		return
	}
	if c.cfg.OnMessage != nil {
		c.cfg.OnMessage(m)
	}
	switch m.Type {
	case MsgMonMap:
		c.handleMonMap(gen, m)
	case MsgMonCommandAck, MsgPoolOpReply:
		c.complete(m.Tid, m)
	case MsgMonGetVersionRply:
		tid := m.Tid
		if tid == 0 && len(m.Front) >= 8 {
			tid = encoding.NewDecoder(m.Front).U64()
		}
		c.complete(tid, m)
	case MsgAuthReply:
		c.completeAuth(m)
	case MsgOSDMap:
		c.handleOSDMap(gen, m)
	case MsgMonSubscribeAck:
		if ack, err := DecodeMMonSubscribeAck(m.Front); err == nil {
			c.checkFSID(gen, ack.FSID)
		}
	default:
		// MConfig, MLog, maps we did not ask for: not ours, dropped.
	}
}

// completeAuth hands an MAuthReply to the oldest pending MAuth request.
func (c *Client) completeAuth(m *messenger.Message) {
	c.mu.Lock()
	var tid uint64
	for t, r := range c.pending {
		if r.msg.Type == MsgAuth && (tid == 0 || t < tid) {
			tid = t
		}
	}
	c.mu.Unlock()
	if tid != 0 {
		c.complete(tid, m)
	}
}

func (c *Client) checkFSID(gen uint64, fsid [16]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.haveFSID {
		c.fsid, c.haveFSID = fsid, true
		return true
	}
	if fsid == c.fsid {
		return true
	}
	err := fmt.Errorf("%w: expected fsid %s, monitor has %s", ErrWrongCluster, FormatUUID(c.fsid), FormatUUID(fsid))
	if c.fatal == nil {
		c.fatal = err
	}
	if c.sess != nil && c.sess.gen == gen {
		go c.fault(gen)
	}
	if c.monmap == nil {
		close(c.monmapCh)
		c.monmap = &MonMap{} // unblock Dial, which reports c.fatal
	}
	return false
}

func (c *Client) handleMonMap(gen uint64, m *messenger.Message) {
	mm, err := DecodeMMonMap(m.Front)
	var monmap *MonMap
	if err == nil {
		monmap, err = DecodeMonMap(mm.MonMap)
	}
	if err != nil {
		// A later map we cannot read is dropped (we keep the one we
		// have); without a first one the client cannot work: fail Dial.
		c.mu.Lock()
		if c.monmap == nil {
			c.fatal = fmt.Errorf("mon: first monmap unreadable: %w", err)
			c.monmap = &MonMap{}
			close(c.monmapCh)
		}
		c.mu.Unlock()
		return
	}
	if !c.checkFSID(gen, monmap.FSID) {
		return
	}
	c.mu.Lock()
	first := c.monmap == nil
	if first || monmap.Epoch >= c.monmap.Epoch {
		c.monmap = monmap
	}
	if first {
		close(c.monmapCh)
	}
	c.mu.Unlock()
}

func (c *Client) handleOSDMap(gen uint64, m *messenger.Message) {
	om, err := DecodeMOSDMap(m.Front, m.Version)
	if err != nil {
		return
	}
	if !c.checkFSID(gen, om.FSID) {
		return
	}
	var resub *messenger.Message
	var s *session
	c.mu.Lock()
	if last := om.Last(); last > c.osdmapHave {
		c.osdmapHave = last
	}
	if sub, ok := c.subs["osdmap"]; ok {
		sub.Start = uint64(c.osdmapHave) + 1
		c.subs["osdmap"] = sub
		// Monitors send at most osd_map_message_max maps at once: ask
		// for the rest when this batch stopped short of their newest.
		if om.Newest > c.osdmapHave && c.sess != nil {
			resub = c.subscribeMsgLocked()
			s = c.sess
		}
	}
	c.mu.Unlock()
	if c.cfg.OnOSDMap != nil {
		c.cfg.OnOSDMap(om)
	}
	if resub != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = s.conn.Send(ctx, resub)
		}()
	}
}
