package rbd

import (
	"context"
	"encoding/json"
	"errors"
	"syscall"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// notifyTimeout is krbd's RBD_NOTIFY_TIMEOUT.
const notifyTimeout = 5 * time.Second

// radosStore implements store with the public rados API.
type radosStore struct {
	io *rados.IOContext
}

func newRadosStore(io *rados.IOContext) *radosStore { return &radosStore{io: io.Clone()} }

func (s *radosStore) poolID() int64     { return s.io.PoolID() }
func (s *radosStore) namespace() string { return s.io.Namespace() }
func (s *radosStore) clientID() uint64  { return s.io.Conn().GlobalID() }

func (s *radosStore) poolIDs(ctx context.Context) ([]int64, error) {
	return s.io.Conn().ListPoolIDs(ctx)
}

func (s *radosStore) withSnapContext(sc SnapContext) store {
	io := s.io.Clone()
	io.SetSnapContext(sc.Seq, sc.Snaps)
	return &radosStore{io: io}
}

func (s *radosStore) withReadSnap(snap uint64) store {
	io := s.io.Clone()
	if snap == NoSnap {
		snap = 0 // the IOContext's head
	}
	io.SetReadSnap(snap)
	return &radosStore{io: io}
}

func (s *radosStore) withPool(ctx context.Context, pool int64, ns string) (store, error) {
	if pool == s.io.PoolID() {
		io := s.io.Clone()
		io.SetNamespace(ns)
		return &radosStore{io: io}, nil
	}
	io, err := s.io.Conn().OpenIOContextByID(ctx, pool)
	if err != nil {
		return nil, err
	}
	io.SetNamespace(ns)
	return &radosStore{io: io}, nil
}

func (s *radosStore) call(ctx context.Context, oid, class, method string, in []byte) ([]byte, error) {
	return s.io.Exec(ctx, oid, class, method, in)
}

func (s *radosStore) write(ctx context.Context, oid string, w *rados.WriteOp) error {
	return w.Operate(ctx, s.io, oid)
}

func (s *radosStore) remove(ctx context.Context, oid string) error {
	w := rados.NewWriteOp()
	w.SetFullTry() // as librados' remove: let deletes through a full pool
	w.Remove()
	return w.Operate(ctx, s.io, oid)
}

func (s *radosStore) read(ctx context.Context, oid string, p []byte, off uint64) (int, error) {
	return s.io.ReadInto(ctx, oid, p, off)
}

func (s *radosStore) exists(ctx context.Context, oid string) (bool, error) {
	_, err := s.io.Stat(ctx, oid)
	if errors.Is(err, syscall.ENOENT) {
		return false, nil
	}
	return err == nil, err
}

func (s *radosStore) listObjects(ctx context.Context, fn func(oid string) error) error {
	ns := s.io.Namespace()
	return s.io.ListObjects(ctx, func(e rados.ListEntry) error {
		if e.Namespace != ns {
			return nil // only this store's namespace (AllNamespaces never reaches rbd)
		}
		return fn(e.Oid)
	})
}

func (s *radosStore) listWatchers(ctx context.Context, oid string) ([]watcher, error) {
	ws, err := s.io.ListWatchers(ctx, oid)
	out := make([]watcher, 0, len(ws))
	for _, w := range ws {
		out = append(out, watcher{Entity: w.Name, Cookie: w.Cookie, Addr: w.Addr})
	}
	return out, err
}

func (s *radosStore) monCommand(ctx context.Context, cmd map[string]string) ([]byte, error) {
	b, _ := json.Marshal(cmd)
	out, _, err := s.io.Conn().MonCommand(ctx, string(b), nil)
	return out, err
}

func (s *radosStore) waitLatestMap(ctx context.Context) error {
	return s.io.Conn().WaitForLatestOSDMap(ctx)
}

func (s *radosStore) watch(ctx context.Context, oid string, handler func([]byte) []byte) (uint64, func(context.Context) error, error) {
	w, err := s.io.Watch(ctx, oid, func(ev rados.NotifyEvent) []byte { return handler(ev.Payload) }, nil)
	if err != nil {
		return 0, nil, err
	}
	return w.Cookie(), w.Close, nil
}

func (s *radosStore) notify(ctx context.Context, oid string, payload []byte) ([][]byte, error) {
	res, err := s.io.Notify(ctx, oid, payload, notifyTimeout)
	var out [][]byte
	if res != nil {
		for _, a := range res.Acks {
			if len(a.Reply) > 0 {
				out = append(out, a.Reply)
			}
		}
	}
	return out, err
}

func (s *radosStore) allocSnapID(ctx context.Context) (uint64, error) {
	return s.io.Conn().CreateSelfManagedSnap(ctx, s.io.PoolID())
}

func (s *radosStore) releaseSnapID(ctx context.Context, id uint64) error {
	return s.io.Conn().RemoveSelfManagedSnap(ctx, s.io.PoolID(), id)
}
