package nodeserver

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/csi-gorbd/csi-gorbd/controllerserver"
	"github.com/csi-gorbd/csi-gorbd/internal/incarnation"
	"github.com/csi-gorbd/csi-gorbd/internal/rbdbackend"
	"github.com/csi-gorbd/csi-gorbd/nbd"
	"github.com/csi-gorbd/csi-gorbd/nbd/attach"
	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// closeTimeout bounds closing an image (releasing its lock and watch).
const closeTimeout = 30 * time.Second

// errUnknownCluster: the volume's cluster is not in the clusters file.
var errUnknownCluster = errors.New("nodeserver: unknown cluster")

// clientToken names a Ceph client in the state directory's owner file: a
// previous process's clients are dead, and the locks they left are broken
// without waiting for their watches to time out (rbd.OpenOptions.DeadClients).
func clientToken(fsid string, globalID uint64) string {
	return fmt.Sprintf("%s client.%d", fsid, globalID)
}

// connPool caches one rados.Conn per (cluster, user, key).
type connPool struct {
	clusters map[string]controllerserver.ClusterInfo
	timeout  time.Duration
	owner    *incarnation.Dir // records every connection's client

	mu    sync.Mutex
	conns map[string]*pooledConn
}

// pooledConn is a cached connection and whose it is.
type pooledConn struct {
	cluster, user string
	conn          *rados.Conn
}

func poolKey(cluster, user, key string) string {
	h := sha256.Sum256([]byte(key))
	return fmt.Sprintf("%s\x00%s\x00%x", cluster, user, h[:8])
}

func (p *connPool) get(ctx context.Context, cluster, user, key string) (*rados.Conn, error) {
	ci, ok := p.clusters[cluster]
	if !ok {
		return nil, fmt.Errorf("%w: clusterID %q is not in the clusters file", errUnknownCluster, cluster)
	}
	k := poolKey(cluster, user, key)
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.conns[k]; c != nil {
		return c.conn, nil
	}
	cctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	c, err := rados.Connect(cctx, rados.Config{Monitors: ci.Monitors, User: user, Key: key, ConnectTimeout: p.timeout})
	if err != nil {
		return nil, err
	}
	// Recorded before the connection takes any lock, so that the next
	// process knows it is dead if this one is killed.
	if p.owner != nil {
		if err := p.owner.Record(clientToken(c.FSID(), c.GlobalID())); err != nil {
			c.Close()
			return nil, fmt.Errorf("nodeserver: recording the client in the state directory: %w", err)
		}
	}
	if p.conns == nil {
		p.conns = map[string]*pooledConn{}
	}
	p.conns[k] = &pooledConn{cluster: cluster, user: user, conn: c}
	return c, nil
}

// failed drops a connection that err shows to be unusable.
func (p *connPool) failed(cluster, user, key string, err error) {
	if !errors.Is(err, rados.ErrClosed) && !errors.Is(err, rados.ErrNoMonitor) {
		return
	}
	k := poolKey(cluster, user, key)
	p.mu.Lock()
	c := p.conns[k]
	delete(p.conns, k)
	p.mu.Unlock()
	if c != nil {
		_ = c.conn.Close()
	}
}

func (p *connPool) all() []*pooledConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*pooledConn, 0, len(p.conns))
	for _, c := range p.conns {
		out = append(out, c)
	}
	return out
}

func (p *connPool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, c := range p.conns {
		_ = c.conn.Close()
		delete(p.conns, k)
	}
}

// rbdVolume is an open image served to the kernel. Close (the io.Closer
// the attach manager calls) closes the image; the connection stays pooled.
type rbdVolume struct {
	*rbdbackend.Backend
	s  *Server
	id string
}

var (
	_ nbd.Backend    = (*rbdVolume)(nil)
	_ attach.Resizer = (*rbdVolume)(nil)
)

func (v *rbdVolume) Close() error {
	v.s.bmu.Lock()
	if v.s.backends[v.id] == v {
		delete(v.s.backends, v.id)
	}
	v.s.bmu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	return v.Backend.Close(ctx)
}

// Resize implements attach.Resizer: the image has been grown by the
// controller; re-read its header and accept the size if it is there.
func (v *rbdVolume) Resize(size int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if err := v.Image().Refresh(ctx); err != nil {
		return err
	}
	if got := v.Size(); got != size {
		return fmt.Errorf("%w: image is %d bytes, not %d", errSizeMismatch, got, size)
	}
	return nil
}

var errSizeMismatch = errors.New("nodeserver: image size differs")

// openVolume is the attach.Factory: the image string is the volume id;
// the credentials come from the volume record.
func (s *Server) openVolume(ctx context.Context, volumeID string, readOnly bool) (nbd.Backend, error) {
	rec, err := s.vols.load(volumeID)
	if err != nil {
		return nil, err
	}
	c, err := s.conns.get(ctx, rec.ClusterID, rec.UserID, rec.UserKey)
	if err != nil {
		s.conns.failed(rec.ClusterID, rec.UserID, rec.UserKey, err)
		return nil, err
	}
	io, err := c.OpenIOContextByID(ctx, rec.PoolID)
	if err != nil {
		s.conns.failed(rec.ClusterID, rec.UserID, rec.UserKey, err)
		return nil, err
	}
	fsid := c.FSID()
	img, err := rbd.Open(ctx, io, rec.Image, &rbd.OpenOptions{ReadOnly: readOnly,
		DeadClients: func(n entity.NumName) bool {
			return n.Type == entity.TypeClient && n.Num > 0 && s.owner.Previous(clientToken(fsid, uint64(n.Num)))
		}})
	if err != nil {
		s.conns.failed(rec.ClusterID, rec.UserID, rec.UserKey, err)
		return nil, err
	}
	v := &rbdVolume{Backend: rbdbackend.New(img, readOnly), s: s, id: volumeID}
	s.bmu.Lock()
	s.backends[volumeID] = v
	s.bmu.Unlock()
	return v, nil
}
