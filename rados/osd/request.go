package osd

import (
	"sync"
	"sync/atomic"
	"time"
)

// Request is one compound operation on one object. Fill in the object and
// the ops, pass it to [Client.Do], and read the ops' results afterwards.
// A Request must not be reused or modified while Do runs.
type Request struct {
	Pool      int64
	Namespace string
	Key       string // locator key; empty: the object name places the object
	Object    string
	Ops       []Op

	// SnapID selects the snapshot reads see; 0 means the head
	// (CEPH_NOSNAP).
	SnapID uint64
	// SnapSeq and Snaps are the snap context of writes (Snaps newest
	// first).
	SnapSeq uint64
	Snaps   []uint64
	// Flags adds CEPH_OSD_FLAG_* bits such as FlagFullTry, FlagFullForce
	// or FlagBalanceReads.
	Flags uint32
	// MTime is the modification time written with the request (zero: the
	// OSD's clock).
	MTime time.Time

	// Set when the request completes.
	Version uint64 // the object's user version after the request
	Epoch   uint32 // the OSDMap epoch the OSD answered with
}

// IsWrite reports whether any op writes.
func (r *Request) IsWrite() bool {
	for i := range r.Ops {
		if r.Ops[i].IsWrite() {
			return true
		}
	}
	return false
}

// request states.
const (
	stPending int32 = iota
	stDone
)

// request is an in-flight Request.
type request struct {
	tid   uint64
	req   *Request
	write bool
	flags uint32
	mtime time.Time // sent with writes; the same on every attempt

	// pg targets the request at a pg rather than an object (pgnls).
	pg     bool
	pgSeed uint32

	// redirect, when set, replaces the pool/object from a reply.
	redirect *Redirect

	// rxDst is the caller's buffer of a request made of one ReadInto op:
	// the reply's data may be received into it (session.rxBuffer). rxMu
	// is held while that happens; rxRevoked, set under it before Do
	// returns, ends the loan.
	rxDst     []byte
	rxMu      sync.Mutex
	rxRevoked bool

	t        target
	paused   atomic.Bool // t.paused, readable without the locks that guard t
	attempts int32       // sends so far; replies must carry attempts-1
	eagain   int
	sess     atomic.Pointer[session]
	sent     bool // guarded by the session lock
	blocked  bool // held back by a backoff

	state atomic.Int32
	err   error
	done  chan struct{}
}

// claim makes the caller the one who completes r.
func (r *request) claim() bool { return r.state.CompareAndSwap(stPending, stDone) }

// finish completes a claimed request.
func (r *request) finish(err error) {
	r.err = err
	close(r.done)
}

// setTarget records r's new target.
func (r *request) setTarget(t target) {
	r.t = t
	r.paused.Store(t.paused)
}

func (r *request) firstOp() OpCode {
	if len(r.req.Ops) == 0 {
		return 0
	}
	return r.req.Ops[0].Code
}

func (r *request) opErr(err error) error {
	return &OpError{Op: r.firstOp(), Pool: r.req.Pool, Object: r.req.Object, Err: err}
}
