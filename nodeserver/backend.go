package nodeserver

import (
	"context"
	"fmt"
	"time"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
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

// clientToken names a Ceph client in the state directory's owner file: a
// previous process's clients are dead, and the locks they left are broken
// without waiting for their watches to time out (rbd.OpenOptions.DeadClients).
func clientToken(fsid string, globalID uint64) string {
	return fmt.Sprintf("%s client.%d", fsid, globalID)
}

// recordClient is the connection pool's on-connect hook: every connection's
// client is in the owner file before it can take any lock, so that the
// next process knows it is dead if this one is killed.
func recordClient(owner *incarnation.Dir) func(*rados.Conn) error {
	return func(c *rados.Conn) error {
		if err := owner.Record(clientToken(c.FSID(), c.GlobalID())); err != nil {
			return fmt.Errorf("nodeserver: recording the client in the state directory: %w", err)
		}
		return nil
	}
}

// rbdVolume is an open image served to the kernel. Close (the io.Closer
// the attach manager calls) closes the image; the connection stays pooled.
type rbdVolume struct {
	*rbdbackend.Backend
	s  *Server
	id string

	obs     nbd.Observer // the volume's metrics, or nil (volume_io.go)
	release func()       // ends obs, or nil
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
	if v.release != nil {
		v.release()
	}
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
		return fmt.Errorf("%w: image is %d bytes, not %d", csiceph.ErrSizeMismatch, got, size)
	}
	return nil
}

// openVolume is the attach.Factory: the image string is the volume id;
// the credentials come from the volume record.
func (s *Server) openVolume(ctx context.Context, volumeID string, readOnly bool) (nbd.Backend, error) {
	rec, err := s.vols.load(volumeID)
	if err != nil {
		return nil, err
	}
	c, err := s.conns.Get(ctx, rec.ClusterID, rec.credentials())
	if err != nil {
		return nil, err
	}
	io, err := c.OpenIOContextByID(ctx, rec.PoolID)
	if err != nil {
		s.conns.Failed(c, err)
		return nil, err
	}
	io.SetNamespace(rec.Namespace)
	fsid := c.FSID()
	// LockInBackground: a restarted plugin reconfigures its device while
	// it takes the lock back (Exclusive, below, takes it at Open).
	opts := &rbd.OpenOptions{ReadOnly: readOnly, LockInBackground: true,
		DeadClients: func(n entity.NumName) bool { return s.previous(fsid, n) }}
	exclusive := !readOnly && rec.exclusiveStage()
	var u csiceph.Users
	if exclusive {
		// Single writer (fence.go): the lock is kept, and a holder the
		// CO withdrew is fenced like a dead one.
		if u, err = users(ctx, io, rec.Image); err != nil {
			s.conns.Failed(c, err)
			return nil, err
		}
		opts.Exclusive = true
		opts.DeadClients = s.deadOrWithdrawn(fsid, u)
	}
	img, err := rbd.Open(ctx, io, rec.Image, opts)
	if err != nil {
		s.conns.Failed(c, err)
		return nil, lockedErr(volumeID, u, err)
	}
	if exclusive {
		err := error(nil)
		if img.Stat().Features&rbd.FeatureExclusiveLock == 0 {
			err = s.claimWatchers(ctx, io, img, volumeID, fsid, u)
		}
		if err == nil {
			err = s.recordStage(ctx, img, c, rec, u)
		}
		if err != nil {
			_ = img.Close(context.WithoutCancel(ctx))
			return nil, err
		}
	}
	v := &rbdVolume{Backend: rbdbackend.New(img, readOnly), s: s, id: volumeID}
	if rec.Encryption != nil {
		if err := s.openEncrypted(ctx, v.Backend, rec); err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
			_ = v.Backend.Close(cctx)
			cancel()
			return nil, err
		}
	}
	if err := s.instrument(ctx, v, rec); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer cancel()
		_ = v.Backend.Close(cctx)
		return nil, err
	}
	s.enableQuiesce(v)
	s.bmu.Lock()
	s.backends[volumeID] = v
	s.bmu.Unlock()
	return v, nil
}
