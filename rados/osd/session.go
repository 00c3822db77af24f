package osd

import (
	"context"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
	"github.com/csi-gorbd/csi-gorbd/rados/osdmap"
)

// maxEAGAIN bounds how often one request is resent after EAGAIN.
const maxEAGAIN = 16

// session is the client's state for one OSD: its connection (re-dialled
// after faults) and the requests sent or waiting to be sent to it. Each
// session has its own lock, so OSDs do not contend.
type session struct {
	c     *Client
	osd   int32
	addrs entity.AddrVec

	mu       sync.Mutex
	conn     Conn // nil while dialling
	connGen  uint64
	dialing  bool
	closed   bool
	dead     bool // removed from the client's table by a map change
	reqs     map[uint64]*request
	backoffs []*osdBackoff
}

func newSession(c *Client, osd int32, addrs entity.AddrVec) *session {
	return &session{c: c, osd: osd, addrs: addrs, reqs: map[uint64]*request{}}
}

// add queues r on the session and sends it if connected.
func (s *session) add(r *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		// Raced with a close: the request goes back through the map.
		go func() {
			s.c.mapMu.RLock()
			defer s.c.mapMu.RUnlock()
			s.c.placeLocked(r, nil)
		}()
		return
	}
	r.sess.Store(s)
	s.reqs[r.tid] = r
	r.sent = false
	if s.conn != nil {
		s.sendLocked(r)
	} else {
		s.dialLocked()
	}
}

// blockedLocked reports whether a backoff covers r.
func (s *session) blockedLocked(r *request) bool {
	if len(s.backoffs) == 0 {
		return false
	}
	h := r.t.hobj(NoSnap)
	for _, b := range s.backoffs {
		if b.SPG == r.t.spg && b.contains(&h) {
			return true
		}
	}
	return false
}

// sendLocked encodes and sends r (a new attempt with the same tid).
func (s *session) sendLocked(r *request) {
	if r.t.paused {
		// Held until a map lifts the pause (retarget resends it).
		r.sent = false
		return
	}
	if s.blockedLocked(r) {
		r.blocked = true
		r.sent = false
		return
	}
	r.blocked = false
	req := r.req
	snap := req.SnapID
	if snap == 0 {
		snap = NoSnap
	}
	flags := r.flags
	if r.attempts > 0 {
		flags |= FlagRetry
	}
	if r.redirect != nil {
		flags |= FlagRedirected | FlagIgnoreOverlay | FlagIgnoreCache
	}
	m := osdOpMsg{
		SPG:      r.t.spg,
		RawHash:  r.t.rawHash,
		Epoch:    r.t.epoch,
		Flags:    flags,
		MTime:    r.mtime,
		Pool:     r.t.pool,
		Key:      r.t.key,
		NS:       r.t.ns,
		Oid:      r.t.oid,
		Ops:      req.Ops,
		SnapID:   snap,
		Attempt:  r.attempts,
		Features: s.c.cfg.Features,
	}
	if r.pg {
		m.Oid = ""
		m.Key = ""
	}
	if r.write {
		m.SnapSeq = req.SnapSeq
		m.Snaps = req.Snaps
	}
	// The message and its front in one allocation when the front is
	// small (every data op): the messenger holds both until written.
	out := new(outMessage)
	buf := out.front[:0]
	if fs := m.frontSize(); fs > len(out.front) {
		buf = make([]byte, 0, fs)
	}
	front, data := m.encode(buf)
	msg := &out.msg
	*msg = messenger.Message{
		Type:          MsgOSDOp,
		Version:       mosdOpVersion,
		CompatVersion: mosdOpCompat,
		Tid:           r.tid,
		Front:         front,
		Data:          data,
	}
	r.attempts++
	r.sent = true
	// A send error means the connection is failing; OnFault resends.
	_ = s.conn.Send(s.c.ctx, msg)
}

// outMessage is an MOSDOp with room for its front inline.
type outMessage struct {
	msg   messenger.Message
	front [320]byte
}

// dialLocked starts connecting unless a dial is under way.
func (s *session) dialLocked() {
	if s.dialing || s.closed {
		return
	}
	s.dialing = true
	s.connGen++
	go s.dialLoop(s.connGen)
}

func (s *session) dialLoop(gen uint64) {
	delay := 100 * time.Millisecond
	for {
		h := Handler{
			Dispatch: func(m *messenger.Message) { s.dispatch(gen, m) },
			OnFault:  func(err error) { s.fault(gen, err) },
			RxBuffer: func(typ uint16, tid uint64, n int) ([]byte, func()) {
				return s.rxBuffer(gen, typ, tid, n)
			},
		}
		ctx, cancel := context.WithTimeout(s.c.ctx, s.c.cfg.DialTimeout)
		conn, err := s.c.cfg.Dial(ctx, s.osd, s.addrs, h)
		cancel()
		s.mu.Lock()
		if s.closed {
			s.dialing = false
			s.mu.Unlock()
			if conn != nil {
				conn.Close()
			}
			return
		}
		if err == nil {
			s.conn = conn
			s.dialing = false
			// Resend everything in tid order: same tids, next attempt.
			s.backoffs = nil
			for _, r := range s.sortedLocked() {
				s.sendLocked(r)
			}
			s.mu.Unlock()
			s.c.kickWatches(s.osd)
			return
		}
		s.mu.Unlock()
		// The OSD may be down or moved: a newer map will tell.
		s.c.requestMap(s.c.epoch())
		select {
		case <-time.After(delay):
		case <-s.c.ctx.Done():
			s.mu.Lock()
			s.dialing = false
			s.mu.Unlock()
			return
		}
		if delay < 5*time.Second {
			delay *= 2
		}
	}
}

func (s *session) sortedLocked() []*request {
	rs := make([]*request, 0, len(s.reqs))
	for _, r := range s.reqs {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b *request) int { return cmpOrd(a.tid, b.tid) })
	return rs
}

// fault handles a connection failure: forget the connection and dial
// again; every request is resent on the new connection.
func (s *session) fault(gen uint64, err error) {
	s.mu.Lock()
	if gen != s.connGen || s.closed {
		s.mu.Unlock()
		return
	}
	s.conn = nil
	s.backoffs = nil
	for _, r := range s.reqs {
		r.sent = false
	}
	s.dialLocked()
	s.mu.Unlock()
	// Watches on this OSD are re-registered once the new connection is
	// up (dialLoop pokes them).
}

// close shuts the session down. With err, its remaining requests fail;
// without, they are handed back to the client to be placed again.
func (s *session) close(err error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	conn := s.conn
	s.conn = nil
	reqs := s.reqs
	s.reqs = map[uint64]*request{}
	s.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
	if len(reqs) == 0 {
		return
	}
	if err != nil {
		for _, r := range reqs {
			if r.claim() {
				r.finish(r.opErr(err))
			}
		}
		return
	}
	s.c.mapMu.RLock()
	for _, r := range reqs {
		s.c.placeLocked(r, nil)
	}
	s.c.mapMu.RUnlock()
}

// retarget re-targets the session's requests under a new map (mapMu held
// exclusively). Requests that now belong elsewhere are removed and
// appended to move; those whose interval changed are resent here.
func (s *session) retarget(m *osdmap.OSDMap, mp *osdmap.Mapping, move []*request) []*request {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tid, r := range s.reqs {
		nt, err := calcTarget(m, r, mp)
		if err != nil {
			delete(s.reqs, tid)
			if r.claim() {
				r.finish(r.opErr(err))
			}
			continue
		}
		if s.dead || nt.osd != s.osd {
			delete(s.reqs, tid)
			r.sess.Store(nil)
			move = append(move, r)
			continue
		}
		// A request the pause held back goes out when it is lifted; one
		// sent before the pause stays in flight (the OSD answers it).
		resend := needsResend(&r.t, &nt) || (r.t.paused && !nt.paused && !r.sent)
		r.setTarget(nt)
		if resend && s.conn != nil {
			s.sendLocked(r)
		}
	}
	return move
}

// rxBuffer lends the reply data segment of request tid the caller's
// buffer of a ReadInto op (request.rxDst), holding the request's rxMu until
// the messenger is done writing into it, so that the caller cannot get
// the buffer back while it is being filled (Client.wait revokes it).
func (s *session) rxBuffer(gen uint64, typ uint16, tid uint64, n int) ([]byte, func()) {
	if typ != MsgOSDOpReply {
		return nil, nil
	}
	s.mu.Lock()
	r := s.reqs[tid]
	ok := r != nil && gen == s.connGen
	s.mu.Unlock()
	if !ok || n > len(r.rxDst) {
		return nil, nil
	}
	r.rxMu.Lock()
	if r.rxRevoked {
		r.rxMu.Unlock()
		return nil, nil
	}
	return r.rxDst[:n], r.rxMu.Unlock
}

// dispatch handles one message from the OSD.
func (s *session) dispatch(gen uint64, m *messenger.Message) {
	switch m.Type {
	case MsgOSDOpReply:
		s.handleReply(gen, m)
	case MsgOSDBackoff:
		s.handleBackoff(gen, m)
	case MsgWatchNotify:
		s.c.handleWatchNotify(m)
	case MsgOSDMap:
		if f := s.c.cfg.OnMapMessage; f != nil {
			f(s.osd, m)
		}
	}
}

func (s *session) handleReply(gen uint64, m *messenger.Message) {
	var rep osdOpReply
	var opsBuf [4]replyOp
	err := rep.decode(m.Front, m.Data, m.Version, opsBuf[:0])
	s.mu.Lock()
	r := s.reqs[m.Tid]
	if r == nil || gen != s.connGen {
		s.mu.Unlock()
		return
	}
	if err == nil && rep.Attempt >= 0 && rep.Attempt != r.attempts-1 {
		// A reply to an earlier attempt: the latest one will answer.
		s.mu.Unlock()
		return
	}
	if err == nil && rep.Redirect != nil {
		delete(s.reqs, m.Tid)
		r.sess.Store(nil)
		r.redirect = rep.Redirect
		s.mu.Unlock()
		go func() {
			s.c.mapMu.RLock()
			defer s.c.mapMu.RUnlock()
			s.c.placeLocked(r, nil)
		}()
		return
	}
	if err == nil && rep.Result == -int32(syscall.EAGAIN) && r.eagain < maxEAGAIN {
		r.eagain++
		s.sendLocked(r)
		s.mu.Unlock()
		return
	}
	delete(s.reqs, m.Tid)
	s.mu.Unlock()
	if err == nil && rep.Epoch > s.c.epoch() {
		s.c.requestMap(s.c.epoch())
	}
	if !r.claim() {
		return
	}
	if err != nil {
		r.finish(r.opErr(err))
		return
	}
	req := r.req
	if len(rep.Ops) != len(req.Ops) {
		r.finish(r.opErr(ErrProtocol))
		return
	}
	failed := -1
	for i := range rep.Ops {
		req.Ops[i].Rval = rep.Ops[i].Rval
		req.Ops[i].Out = rep.Ops[i].Out
		if failed < 0 && rep.Ops[i].Rval < 0 {
			failed = i
		}
	}
	req.Version = rep.UserVersion
	req.Epoch = rep.Epoch
	if rep.Result < 0 {
		op := r.firstOp()
		if failed >= 0 {
			op = req.Ops[failed].Code
		}
		r.finish(&OpError{Op: op, Pool: req.Pool, Object: req.Object, Err: errnoErr(rep.Result)})
		return
	}
	r.finish(nil)
}

func (s *session) handleBackoff(gen uint64, m *messenger.Message) {
	b, err := decodeOSDBackoff(m.Front)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.connGen || s.conn == nil {
		return
	}
	switch b.Op {
	case BackoffBlock:
		s.backoffs = append(s.backoffs, b)
		ack := *b
		ack.Op = BackoffAckBlock
		_ = s.conn.Send(s.c.ctx, &messenger.Message{
			Type: MsgOSDBackoff, Version: 1, CompatVersion: 1,
			Front: ack.encode(nil),
		})
	case BackoffUnblock:
		s.backoffs = slices.DeleteFunc(s.backoffs, func(x *osdBackoff) bool {
			return x.ID == b.ID && x.SPG == b.SPG
		})
		// The OSD dropped what it received in the range: resend those
		// and any we held back.
		for _, r := range s.sortedLocked() {
			h := r.t.hobj(NoSnap)
			if r.blocked || (r.t.spg == b.SPG && b.contains(&h)) {
				s.sendLocked(r)
			}
		}
	}
}
