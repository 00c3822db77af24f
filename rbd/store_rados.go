package rbd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
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

func (s *radosStore) withPool(ctx context.Context, pool int64) (store, error) {
	if pool == s.io.PoolID() {
		return &radosStore{io: s.io.Clone()}, nil
	}
	io, err := s.io.Conn().OpenIOContextByID(ctx, pool)
	if err != nil {
		return nil, err
	}
	io.SetNamespace(s.io.Namespace())
	return &radosStore{io: io}, nil
}

func (s *radosStore) call(ctx context.Context, oid, class, method string, in []byte) ([]byte, error) {
	return s.io.Exec(ctx, oid, class, method, in)
}

func (s *radosStore) write(ctx context.Context, oid string, ops ...writeOp) error {
	w := rados.NewWriteOp()
	for _, o := range ops {
		switch o.kind {
		case wCreate:
			w.Create(o.excl)
		case wCall:
			w.Exec(o.class, o.method, o.in)
		case wWrite:
			w.Write(o.in, o.off)
		case wZero:
			w.Zero(o.off, o.length)
		case wTruncate:
			w.Truncate(o.off)
		case wRemove:
			w.Remove()
		case wAllocHint:
			w.SetAllocHint(o.length, o.off, 0)
		}
	}
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

func (s *radosStore) listWatchers(ctx context.Context, oid string) ([]watcher, error) {
	ws, err := s.io.ListWatchers(ctx, oid)
	out := make([]watcher, 0, len(ws))
	for _, w := range ws {
		out = append(out, watcher{Entity: w.Name, Cookie: w.Cookie, Addr: w.Addr})
	}
	return out, err
}

func (s *radosStore) blocklist(ctx context.Context, a entity.Addr) error {
	// "ip:port/nonce", the form `ceph osd blocklist add` parses.
	cmd, _ := json.Marshal(map[string]string{"prefix": "osd blocklist", "blocklistop": "add",
		"addr": fmt.Sprintf("%s/%d", a.IP, a.Nonce)})
	_, _, err := s.io.Conn().MonCommand(ctx, string(cmd), nil)
	return err
}

func (s *radosStore) watch(ctx context.Context, oid string, handler func([]byte) []byte) (uint64, func(context.Context) error, error) {
	w, err := s.io.Watch(ctx, oid, func(ev rados.NotifyEvent) []byte { return handler(ev.Payload) }, nil)
	if err != nil {
		return 0, nil, err
	}
	return w.Cookie(), w.Close, nil
}

func (s *radosStore) notify(ctx context.Context, oid string, payload []byte) error {
	_, err := s.io.Notify(ctx, oid, payload, notifyTimeout)
	return err
}

func (s *radosStore) allocSnapID(ctx context.Context) (uint64, error) {
	return s.io.Conn().CreateSelfManagedSnap(ctx, s.io.PoolID())
}

func (s *radosStore) releaseSnapID(ctx context.Context, id uint64) error {
	return s.io.Conn().RemoveSelfManagedSnap(ctx, s.io.PoolID(), id)
}
