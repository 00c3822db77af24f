package csiceph

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// DefaultConnectTimeout bounds a dial when PoolOptions names none.
const DefaultConnectTimeout = 30 * time.Second

// PoolOptions configure a Pool.
type PoolOptions struct {
	Clusters Clusters
	// ConnectTimeout bounds one dial (0: DefaultConnectTimeout), whatever
	// the deadlines of the requests waiting for it.
	ConnectTimeout time.Duration
	// OnConnect, if set, runs once for every new connection before any
	// caller gets it; an error closes the connection and fails the dial.
	// The node records the connection's client there, before the client
	// can take any lock.
	OnConnect func(*rados.Conn) error
}

// Pool caches one rados.Conn per (cluster, user, key).
//
// A dial runs in a goroutine of the pool, outside its lock, and only one
// per key at a time: callers asking for a key being dialled wait for that
// dial, each no longer than its own context (a caller that gives up does
// not end the dial; its result is kept for the next caller). A failed dial
// is forgotten, so the next call dials again. Close ends dials in flight,
// waits for them and closes every connection.
type Pool struct {
	clusters  Clusters
	timeout   time.Duration
	onConnect func(*rados.Conn) error
	dial      func(context.Context, rados.Config) (*rados.Conn, error) // rados.Connect (tests replace it)

	ctx    context.Context // ends dials in flight at Close
	cancel context.CancelFunc
	dials  sync.WaitGroup

	mu     sync.Mutex // guards conns and closed; never held across a dial
	conns  map[string]*pooled
	closed bool
}

// pooled is one connection of the pool, or a dial in flight.
type pooled struct {
	cluster, user string
	ready         chan struct{} // closed when the dial has ended
	conn          *rados.Conn   // set before ready is closed (nil: the dial failed)
	err           error
}

// NewPool returns an empty pool.
func NewPool(o PoolOptions) *Pool {
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	p := &Pool{clusters: o.Clusters, timeout: o.ConnectTimeout, onConnect: o.OnConnect, dial: rados.Connect,
		conns: map[string]*pooled{}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p
}

// Clusters returns the clusters file the pool dials from.
func (p *Pool) Clusters() Clusters { return p.clusters }

func poolKey(cluster string, cr Credentials) string {
	h := sha256.Sum256([]byte(cr.Key))
	return fmt.Sprintf("%s\x00%s\x00%x", cluster, cr.User, h[:8])
}

// Get returns the connection for the cluster and credentials, dialling
// one when there is none. It returns when the connection is ready, the
// dial fails or ctx ends, whichever comes first.
func (p *Pool) Get(ctx context.Context, cluster string, cr Credentials) (*rados.Conn, error) {
	ci, err := p.clusters.Lookup(cluster)
	if err != nil {
		return nil, err
	}
	k := poolKey(cluster, cr)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, fmt.Errorf("csiceph: connection pool: %w", rados.ErrClosed)
	}
	e := p.conns[k]
	if e == nil {
		e = &pooled{cluster: cluster, user: cr.User, ready: make(chan struct{})}
		p.conns[k] = e
		p.dials.Add(1)
		go p.connect(k, e, ci, cr)
	}
	p.mu.Unlock()
	select {
	case <-e.ready: // a ready connection wins over an ended context
		return e.conn, e.err
	default:
	}
	select {
	case <-e.ready:
		return e.conn, e.err
	case <-ctx.Done():
		return nil, fmt.Errorf("connecting to cluster %q: %w", cluster, ctx.Err())
	}
}

// connect dials for entry e and publishes the result.
func (p *Pool) connect(k string, e *pooled, ci ClusterInfo, cr Credentials) {
	defer p.dials.Done()
	timeout := p.timeout
	if ci.Options.ConnectTimeout > 0 {
		timeout = ci.Options.ConnectTimeout // the cluster's client_mount_timeout
	}
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	c, err := p.dial(ctx, rados.Config{Monitors: ci.Monitors, User: cr.User, Key: cr.Key, ConnectTimeout: timeout,
		MsMode: ci.Options.MsMode})
	if err == nil && p.onConnect != nil {
		if err = p.onConnect(c); err != nil {
			_ = c.Close()
			c = nil
		}
	}
	p.mu.Lock()
	e.conn, e.err = c, err
	if err != nil && p.conns[k] == e {
		delete(p.conns, k)
	}
	close(e.ready)
	p.mu.Unlock()
}

// Failed drops c when err shows it to be unusable (closed, no monitor
// reachable, blocklisted), so the next Get dials again. Other errors, and
// a c the pool no longer holds, change nothing.
func (p *Pool) Failed(c *rados.Conn, err error) {
	if c == nil || !broken(err) {
		return
	}
	p.mu.Lock()
	found := false
	for k, e := range p.conns {
		if e.conn == c {
			delete(p.conns, k)
			found = true
			break
		}
	}
	p.mu.Unlock()
	if found {
		_ = c.Close()
	}
}

// session is one ready connection and whose it is.
type session struct {
	cluster, user string
	conn          *rados.Conn
}

// ready returns the connections whose dial has succeeded.
func (p *Pool) ready() []session {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]session, 0, len(p.conns))
	for _, e := range p.conns {
		if e.conn != nil {
			out = append(out, session{cluster: e.cluster, user: e.user, conn: e.conn})
		}
	}
	return out
}

// Close ends the dials in flight, waits for them and closes every
// connection. Get fails afterwards.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.dials.Wait()
	p.mu.Lock()
	conns := p.conns
	p.conns = map[string]*pooled{}
	p.mu.Unlock()
	for _, e := range conns {
		if e.conn != nil {
			_ = e.conn.Close()
		}
	}
}
