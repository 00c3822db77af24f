package rbd

import (
	"context"

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
	write(ctx context.Context, oid string, ops ...writeOp) error
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
	// blocklist fences a client address cluster-wide (osd blocklist add),
	// so a dead lock owner can be broken safely.
	blocklist(ctx context.Context, addr entity.Addr) error
	// watch registers a watch; the handler's result is the notify ack
	// payload. It returns the watch cookie and a function removing it.
	watch(ctx context.Context, oid string, handler func(payload []byte) []byte) (uint64, func(context.Context) error, error)
	// notify notifies the object's watchers and waits up to timeout.
	notify(ctx context.Context, oid string, payload []byte) error
	// notifyReplies is notify returning the non-empty ack payloads of the
	// watchers that answered.
	notifyReplies(ctx context.Context, oid string, payload []byte) ([][]byte, error)
	// monCommand sends a JSON command to the monitors and returns its
	// output.
	monCommand(ctx context.Context, cmd map[string]string) ([]byte, error)

	// allocSnapID / releaseSnapID manage self-managed snapshot ids of this
	// pool through the monitors.
	allocSnapID(ctx context.Context) (uint64, error)
	releaseSnapID(ctx context.Context, id uint64) error
}

// writeOpKind selects one step of a compound write.
type writeOpKind uint8

const (
	wCreate    writeOpKind = iota // excl: fail with EEXIST if it exists
	wCall                         // class method that writes
	wWrite                        // data at off
	wZero                         // off, length
	wTruncate                     // off = new size
	wRemove                       // delete the object
	wAllocHint                    // expected object size = length, write size = off
)

// writeOp is one step of a compound write.
type writeOp struct {
	kind          writeOpKind
	excl          bool
	class, method string
	in            []byte // method input or data
	off, length   uint64
}

func opCreate(excl bool) writeOp { return writeOp{kind: wCreate, excl: excl} }
func opCall(class, method string, in []byte) writeOp {
	return writeOp{kind: wCall, class: class, method: method, in: in}
}
func opWrite(off uint64, p []byte) writeOp { return writeOp{kind: wWrite, off: off, in: p} }
func opZero(off, length uint64) writeOp    { return writeOp{kind: wZero, off: off, length: length} }
func opTruncate(size uint64) writeOp       { return writeOp{kind: wTruncate, off: size} }
func opRemove() writeOp                    { return writeOp{kind: wRemove} }

// watcher is one watch on an object: who holds it and its cookie.
type watcher struct {
	Entity entity.NumName
	Cookie uint64
	Addr   entity.Addr
}
