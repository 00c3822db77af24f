package rados

import (
	"context"
	"errors"
	"slices"
	"syscall"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/osd"
)

// AllNamespaces, as an IOContext namespace, makes ListObjects walk every
// namespace of the pool.
const AllNamespaces = osd.AllNamespaces

// ErrPoolFull: a write was refused because the cluster or the pool is
// full, or the pool is over its quota. It matches syscall.ENOSPC (and,
// for a quota, syscall.EDQUOT, which is what the OSD client reports).
var ErrPoolFull = errors.New("rados: pool full")

type fullError struct{ err error }

func (e fullError) Error() string   { return e.err.Error() }
func (e fullError) Unwrap() error   { return e.err }
func (e fullError) Is(t error) bool { return t == ErrPoolFull || t == syscall.ENOSPC }

type closedError struct{ err error }

func (e closedError) Error() string   { return e.err.Error() }
func (e closedError) Unwrap() error   { return e.err }
func (e closedError) Is(t error) bool { return t == ErrClosed }

// osdErr adapts the OSD client's errors: a full pool or quota becomes an
// error matching ENOSPC as well as what it was, and a closed client
// matches ErrClosed.
func osdErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.ENOSPC):
		return fullError{err}
	case errors.Is(err, osd.ErrClosed):
		return closedError{err}
	}
	return err
}

// IOContext addresses objects in one pool and namespace. It is a small
// value-like handle: the setters change only this IOContext, and an
// IOContext must not be changed while operations using it run (make one
// per goroutine, or Clone). Operations are safe for concurrent use.
type IOContext struct {
	c       *Conn
	pool    int64
	name    string
	ns      string
	locator string

	snapSeq uint64
	snaps   []uint64
	readSn  uint64
}

// OpenIOContext returns an IOContext for the named pool (default
// namespace). It waits for the first OSDMap.
func (c *Conn) OpenIOContext(ctx context.Context, pool string) (*IOContext, error) {
	id, err := c.LookupPool(ctx, pool)
	if err != nil {
		return nil, err
	}
	return &IOContext{c: c, pool: id, name: pool}, nil
}

// OpenIOContextByID returns an IOContext for pool id.
func (c *Conn) OpenIOContextByID(ctx context.Context, id int64) (*IOContext, error) {
	name, err := c.GetPoolByID(ctx, id)
	if err != nil {
		return nil, err
	}
	return &IOContext{c: c, pool: id, name: name}, nil
}

// Clone returns an independent copy.
func (io *IOContext) Clone() *IOContext {
	n := *io
	n.snaps = slices.Clone(io.snaps)
	return &n
}

// Conn returns the connection.
func (io *IOContext) Conn() *Conn { return io.c }

// PoolID returns the pool id.
func (io *IOContext) PoolID() int64 { return io.pool }

// PoolName returns the pool name.
func (io *IOContext) PoolName() string { return io.name }

// SetNamespace selects the namespace of later operations ("" is the
// default namespace; AllNamespaces only for ListObjects).
func (io *IOContext) SetNamespace(ns string) { io.ns = ns }

// Namespace returns the current namespace.
func (io *IOContext) Namespace() string { return io.ns }

// SetLocatorKey places later objects by key instead of by their names
// ("" restores name placement).
func (io *IOContext) SetLocatorKey(key string) { io.locator = key }

// SetSnapContext sets the snap context sent with writes: the newest
// snapshot id seq and the existing snapshots, newest first (they are
// sorted here). A zero seq and no snaps is "no snapshots".
func (io *IOContext) SetSnapContext(seq uint64, snaps []uint64) {
	s := slices.Clone(snaps)
	slices.SortFunc(s, func(a, b uint64) int {
		switch {
		case a > b:
			return -1
		case a < b:
			return 1
		}
		return 0
	})
	io.snapSeq, io.snaps = seq, s
}

// SetReadSnap makes reads see snapshot snap (0: the head).
func (io *IOContext) SetReadSnap(snap uint64) { io.readSn = snap }

// request builds an osd.Request for oid with the IOContext's placement
// and snapshot settings.
func (io *IOContext) request(oid string, ops []osd.Op) *osd.Request {
	req := new(osd.Request)
	io.fill(req, oid, ops)
	return req
}

// fill sets req up as request does.
func (io *IOContext) fill(req *osd.Request, oid string, ops []osd.Op) {
	*req = osd.Request{
		Pool: io.pool, Namespace: io.ns, Key: io.locator, Object: oid, Ops: ops,
		SnapID: io.readSn, SnapSeq: io.snapSeq, Snaps: io.snaps,
	}
}

// do runs ops on oid and returns the completed request.
func (io *IOContext) do(ctx context.Context, oid string, ops ...osd.Op) (*osd.Request, error) {
	req := io.request(oid, ops)
	return req, osdErr(io.c.osd.Do(ctx, req))
}

// Read reads up to length bytes at off (length 0: to the end of the
// object). A short result means the object ends sooner.
func (io *IOContext) Read(ctx context.Context, oid string, off, length uint64) ([]byte, error) {
	req, err := io.do(ctx, oid, osd.Read(off, length))
	if err != nil {
		return nil, err
	}
	return req.Ops[0].Out, nil
}

// ReadInto reads into p at off and returns the bytes read. The reply is
// received straight into p (crc mode), so the bytes of p past the count
// returned, and all of p after an error, are unspecified.
func (io *IOContext) ReadInto(ctx context.Context, oid string, p []byte, off uint64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	// The request and its op in one allocation (the I/O path's reads).
	one := new(struct {
		req osd.Request
		ops [1]osd.Op
	})
	one.ops[0] = osd.ReadInto(off, p)
	req := &one.req
	io.fill(req, oid, one.ops[:])
	if err := osdErr(io.c.osd.Do(ctx, req)); err != nil {
		return 0, err
	}
	b := req.Ops[0].Out
	if len(b) > 0 && &b[0] == &p[0] {
		return min(len(b), len(p)), nil
	}
	return copy(p, b), nil
}

// Write writes data at off (the slice must not change until Write
// returns).
func (io *IOContext) Write(ctx context.Context, oid string, data []byte, off uint64) error {
	_, err := io.do(ctx, oid, osd.Write(off, data))
	return err
}

// WriteFull replaces the object's data.
func (io *IOContext) WriteFull(ctx context.Context, oid string, data []byte) error {
	_, err := io.do(ctx, oid, osd.WriteFull(data))
	return err
}

// Append appends data to the object.
func (io *IOContext) Append(ctx context.Context, oid string, data []byte) error {
	_, err := io.do(ctx, oid, osd.Append(data))
	return err
}

// Zero zeroes length bytes at off.
func (io *IOContext) Zero(ctx context.Context, oid string, off, length uint64) error {
	_, err := io.do(ctx, oid, osd.Zero(off, length))
	return err
}

// Truncate sets the object's size.
func (io *IOContext) Truncate(ctx context.Context, oid string, size uint64) error {
	_, err := io.do(ctx, oid, osd.Truncate(size))
	return err
}

// Remove deletes the object (ENOENT if it does not exist). Like
// librados' remove it is sent with FULL_FORCE, so it works in a full
// pool, where freeing space is what is wanted.
func (io *IOContext) Remove(ctx context.Context, oid string) error {
	req := io.request(oid, []osd.Op{osd.Delete()})
	req.Flags = osd.FlagFullForce
	return osdErr(io.c.osd.Do(ctx, req))
}

// Create creates an empty object; with exclusive, an existing object is
// EEXIST.
func (io *IOContext) Create(ctx context.Context, oid string, exclusive bool) error {
	_, err := io.do(ctx, oid, osd.Create(exclusive))
	return err
}

// ObjectStat is an object's size and modification time.
type ObjectStat struct {
	Size    uint64
	ModTime time.Time
}

// Stat returns the object's size and mtime (ENOENT if it does not exist).
func (io *IOContext) Stat(ctx context.Context, oid string) (ObjectStat, error) {
	req, err := io.do(ctx, oid, osd.Stat())
	if err != nil {
		return ObjectStat{}, err
	}
	st, err := osd.ParseStat(req.Ops[0].Out)
	return ObjectStat{Size: st.Size, ModTime: st.MTime}, err
}

// Exec calls method of object class cls on the object, as librados'
// exec does (sent as a read; the OSD still applies a method's writes).
// Use a WriteOp with Exec for writing methods that need the snap context.
func (io *IOContext) Exec(ctx context.Context, oid, cls, method string, in []byte) ([]byte, error) {
	req, err := io.do(ctx, oid, osd.Call(cls, method, in))
	if err != nil {
		return nil, err
	}
	return req.Ops[0].Out, nil
}

// GetXattr returns an extended attribute (ENODATA if unset).
func (io *IOContext) GetXattr(ctx context.Context, oid, name string) ([]byte, error) {
	req, err := io.do(ctx, oid, osd.GetXattr(name))
	if err != nil {
		return nil, err
	}
	return req.Ops[0].Out, nil
}

// SetXattr sets an extended attribute.
func (io *IOContext) SetXattr(ctx context.Context, oid, name string, value []byte) error {
	_, err := io.do(ctx, oid, osd.SetXattr(name, value))
	return err
}

// RmXattr removes an extended attribute.
func (io *IOContext) RmXattr(ctx context.Context, oid, name string) error {
	_, err := io.do(ctx, oid, osd.RmXattr(name))
	return err
}

// ListXattrs returns all extended attributes.
func (io *IOContext) ListXattrs(ctx context.Context, oid string) (map[string][]byte, error) {
	req, err := io.do(ctx, oid, osd.GetXattrs())
	if err != nil {
		return nil, err
	}
	return osd.ParseXattrs(req.Ops[0].Out)
}

// SetOmap sets omap key/value pairs.
func (io *IOContext) SetOmap(ctx context.Context, oid string, kv map[string][]byte) error {
	_, err := io.do(ctx, oid, osd.OmapSet(kv))
	return err
}

// RmOmapKeys removes omap keys.
func (io *IOContext) RmOmapKeys(ctx context.Context, oid string, keys ...string) error {
	_, err := io.do(ctx, oid, osd.OmapRmKeys(keys...))
	return err
}

// CleanOmap removes every omap key and the header.
func (io *IOContext) CleanOmap(ctx context.Context, oid string) error {
	_, err := io.do(ctx, oid, osd.OmapClear())
	return err
}

// SetOmapHeader sets the omap header.
func (io *IOContext) SetOmapHeader(ctx context.Context, oid string, h []byte) error {
	_, err := io.do(ctx, oid, osd.OmapSetHeader(h))
	return err
}

// GetOmapHeader returns the omap header.
func (io *IOContext) GetOmapHeader(ctx context.Context, oid string) ([]byte, error) {
	req, err := io.do(ctx, oid, osd.OmapGetHeader())
	if err != nil {
		return nil, err
	}
	return req.Ops[0].Out, nil
}

// GetOmapValues returns up to max pairs after startAfter whose keys start
// with prefix, and whether more follow.
func (io *IOContext) GetOmapValues(ctx context.Context, oid, startAfter, prefix string, max uint64) (map[string][]byte, bool, error) {
	req, err := io.do(ctx, oid, osd.OmapGetVals(startAfter, prefix, max))
	if err != nil {
		return nil, false, err
	}
	return osd.ParseOmapVals(req.Ops[0].Out)
}

// omapPage is how many pairs one request of GetAllOmapValues asks for.
const omapPage = 512

// GetAllOmapValues returns every pair whose key starts with prefix.
func (io *IOContext) GetAllOmapValues(ctx context.Context, oid, prefix string) (map[string][]byte, error) {
	all := map[string][]byte{}
	after := ""
	for {
		page, more, err := io.GetOmapValues(ctx, oid, after, prefix, omapPage)
		if err != nil {
			return nil, err
		}
		last := after
		for k, v := range page {
			all[k] = v
			if k > last {
				last = k
			}
		}
		if !more || len(page) == 0 || last == after {
			return all, nil
		}
		after = last
	}
}

// GetOmapValuesByKeys returns the values of the given keys (missing keys
// are absent from the result).
func (io *IOContext) GetOmapValuesByKeys(ctx context.Context, oid string, keys ...string) (map[string][]byte, error) {
	req, err := io.do(ctx, oid, osd.OmapGetValsByKeys(keys...))
	if err != nil {
		return nil, err
	}
	return osd.ParseOmapValsByKeys(req.Ops[0].Out)
}

// ListEntry is one listed object.
type ListEntry = osd.ListEntry

// ListObjects calls fn for every object in the IOContext's namespace
// (every namespace with AllNamespaces). fn's error stops the walk.
func (io *IOContext) ListObjects(ctx context.Context, fn func(ListEntry) error) error {
	return osdErr(io.c.osd.List(ctx, io.pool, io.ns, fn))
}

// Watch types, from the OSD client.
type (
	// Watch is a registered watch; Close removes it.
	Watch = osd.Watch
	// NotifyEvent is one notify received on a watch.
	NotifyEvent = osd.NotifyEvent
	// WatchHandler handles a notify; its result is the reply.
	WatchHandler = osd.WatchHandler
	// NotifyResult holds the watchers' acks and timeouts.
	NotifyResult = osd.NotifyResult
	// Watcher is one entry of ListWatchers.
	Watcher = osd.Watcher
)

// Watch registers a watch on oid. handler runs for every notify; onError
// (optional) learns that the watch was lost and is being re-established.
func (io *IOContext) Watch(ctx context.Context, oid string, handler WatchHandler, onError func(error)) (*Watch, error) {
	w, err := io.c.osd.Watch(ctx, io.pool, io.ns, oid, handler, onError)
	return w, osdErr(err)
}

// Notify sends payload to oid's watchers and waits for their acks or
// timeout (then ETIMEDOUT with the partial result).
func (io *IOContext) Notify(ctx context.Context, oid string, payload []byte, timeout time.Duration) (*NotifyResult, error) {
	r, err := io.c.osd.Notify(ctx, io.pool, io.ns, oid, payload, timeout)
	return r, osdErr(err)
}

// ListWatchers returns oid's watchers.
func (io *IOContext) ListWatchers(ctx context.Context, oid string) ([]Watcher, error) {
	req, err := io.do(ctx, oid, osd.ListWatchers())
	if err != nil {
		return nil, err
	}
	return osd.ParseListWatchers(req.Ops[0].Out)
}

// CreateSelfManagedSnap allocates a self-managed snapshot id in the pool.
func (io *IOContext) CreateSelfManagedSnap(ctx context.Context) (uint64, error) {
	return io.c.CreateSelfManagedSnap(ctx, io.pool)
}

// RemoveSelfManagedSnap releases a self-managed snapshot id.
func (io *IOContext) RemoveSelfManagedSnap(ctx context.Context, snap uint64) error {
	return io.c.RemoveSelfManagedSnap(ctx, io.pool, snap)
}
