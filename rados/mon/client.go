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
