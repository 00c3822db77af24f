package rbd

import (
	"context"

	"github.com/csi-gorbd/csi-gorbd/rados"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// store is the narrow set of RADOS operations rbd needs, on one pool and
// namespace. Errors from the cluster must match syscall.Errno values with
// errors.Is (ENOENT, EEXIST, EBUSY, …). store_rados.go implements it with
// *rados.IOContext.
type store interface {
	poolID() int64
	namespace() string
	// poolIDs lists the cluster's pools (clone v1 children may live in
	// any of them).
	poolIDs(ctx context.Context) ([]int64, error)
	// clientID is the cluster-assigned global id of this client (image ids
	// and lock owners are built from it).
	clientID() uint64

	// withSnapContext returns a store whose writes carry sc.
	withSnapContext(sc SnapContext) store
	// withReadSnap returns a store whose reads see snapshot snap (NoSnap:
	// the head).
	withReadSnap(snap uint64) store
	// withPool returns a store on pool and namespace ns (the data pool in
	// the image's namespace; a clone's parent, whose namespace may differ).
	withPool(ctx context.Context, pool int64, ns string) (store, error)

	// call runs a read-only class method and returns its output.
	call(ctx context.Context, oid, class, method string, in []byte) ([]byte, error)
	// write runs a compound write atomically.
	write(ctx context.Context, oid string, w *rados.WriteOp) error
	// remove deletes the object, also on a full pool (deleting frees
	// space, so cleanups after ENOSPC work).
	remove(ctx context.Context, oid string) error
	// read reads into p at off; missing objects are ENOENT, and a short
	// count means the object ends sooner.
	read(ctx context.Context, oid string, p []byte, off uint64) (int, error)
	// exists reports whether the object exists.
	exists(ctx context.Context, oid string) (bool, error)
	// listObjects calls fn with the name of every object in the store's
	// pool and namespace, in no particular order; fn's error stops the
	// walk and is returned.
	listObjects(ctx context.Context, fn func(oid string) error) error
	// listWatchers lists the object's watchers.
	listWatchers(ctx context.Context, oid string) ([]watcher, error)
	// watch registers a watch; the handler's result is the notify ack
	// payload. It returns the watch cookie and a function removing it.
	watch(ctx context.Context, oid string, handler func(payload []byte) []byte) (uint64, func(context.Context) error, error)
	// notify notifies the object's watchers, waits for their acks (up to
	// a timeout) and returns the non-empty ack payloads.
	notify(ctx context.Context, oid string, payload []byte) ([][]byte, error)
	// monCommand sends a JSON command to the monitors and returns its
	// output.
	monCommand(ctx context.Context, cmd map[string]string) ([]byte, error)
	// waitLatestMap waits until the client has the monitors' newest
	// OSDMap.
	waitLatestMap(ctx context.Context) error

	// allocSnapID / releaseSnapID manage self-managed snapshot ids of this
	// pool through the monitors.
	allocSnapID(ctx context.Context) (uint64, error)
	releaseSnapID(ctx context.Context, id uint64) error
}

// opCall is a write of one class method.
func opCall(class, method string, in []byte) *rados.WriteOp {
	w := rados.NewWriteOp()
	w.Exec(class, method, in)
	return w
}

// opTruncate sets an object's size.
func opTruncate(size uint64) *rados.WriteOp {
	w := rados.NewWriteOp()
	w.Truncate(size)
	return w
}

// opZero zeroes a range of an object.
func opZero(off, length uint64) *rados.WriteOp {
	w := rados.NewWriteOp()
	w.Zero(off, length)
	return w
}

// opSetID creates rbd_id.<name> exclusively and records the image id in
// it (cls_rbd set_id), so an existing name fails with EEXIST.
func opSetID(id string) *rados.WriteOp {
	w := rados.NewWriteOp()
	w.Create(true)
	w.Exec(clsRBD, "set_id", stringArg(id))
	return w
}

// opLockedMap runs an object map method only while the map object's own
// exclusive cls lock is held (lock.assert_locked with an empty cookie and
// tag, as librbd's object map requests guard every update).
func opLockedMap(method string, in []byte) *rados.WriteOp {
	w := rados.NewWriteOp()
	w.Exec(clsLock, "assert_locked", assertLockedArgs(rbdLockName, LockExclusive, "", ""))
	w.Exec(clsRBD, method, in)
	return w
}

// watcher is one watch on an object: who holds it and its cookie.
type watcher struct {
	Entity entity.NumName
	Cookie uint64
	Addr   entity.Addr
}
