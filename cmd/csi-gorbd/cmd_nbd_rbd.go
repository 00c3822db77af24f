package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/internal/incarnation"
	"github.com/csi-gorbd/csi-gorbd/internal/rbdbackend"
	"github.com/csi-gorbd/csi-gorbd/nbd"
	"github.com/csi-gorbd/csi-gorbd/nbd/qos"
	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// RBD images for `nbd serve POOL/IMAGE[@SNAP]` and `nbd map`/`nbd recover`:
// this file plugs internal/rbdbackend into the hooks of cmd_nbd_serve.go
// and cmd_nbd_map.go. Credentials come from the global ceph flags.

// lockWaitHelp explains recover's --lock-wait: how long it keeps trying
// an image whose exclusive lock still looks held. After a kill -9 the dead
// server's header watch lives on in the OSD until osd_client_watch_timeout
// (30s by default) runs out; only then can rbd tell the owner is dead,
// blocklist it and break its lock. A dead server that mapped the image
// from the same state directory is known dead sooner: its clients are in
// the image's owner file (acquireImageOwner), so its lock is broken at
// once; the wait is for locks left by anybody else. "nbd map" does not
// wait: a busy image there is another live client's.
const lockWaitHelp = "keep retrying an image whose exclusive lock a dead server still seems to hold (keep it below the devices' --dead-conn-timeout)"

// rbdExport is an open image with the connection it owns; Close (the
// io.Closer the attach manager calls) releases both.
type rbdExport struct {
	*rbdbackend.Backend
	conn     *rados.Conn
	owner    *incarnation.Dir // the image's owner file (read-write maps), or nil
	stateDir string
}

func (e *rbdExport) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := e.Backend.Close(ctx)
	if cerr := e.conn.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// The lock may be left behind: keep the owner file, whose
		// clients the next server of the image may break.
		e.owner.Close()
		return err
	}
	if e.owner != nil {
		// Closed cleanly: nothing left to take over.
		err = e.owner.Remove()
		_ = os.Remove(filepath.Join(e.stateDir, "owners")) // once empty
	}
	return err
}

// openRBDExportOwned opens image on a connection of its own. With owner
// (a read-write map) the connection's client is recorded there before the
// image takes its lock, and a lock left by a client of an earlier owner
// (a dead server) is broken at once.
func (n *nbdCLI) openRBDExportOwned(ctx context.Context, cmd *cobra.Command, image string, readOnly bool, owner *incarnation.Dir) (*rbdExport, error) {
	if owner == nil {
		return n.openRBDExport(ctx, cmd, image, readOnly)
	}
	s, err := rbdbackend.ParseSpec(image)
	if err != nil {
		return nil, err
	}
	conn, err := n.ceph.connect(cmd)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*rbdExport, error) {
		conn.Close()
		return nil, err
	}
	if err := owner.Record(clientToken(conn)); err != nil {
		return fail(err)
	}
	io, err := conn.OpenIOContext(ctx, s.Pool)
	if err != nil {
		return fail(fmt.Errorf("pool %q: %w", s.Pool, err))
	}
	fsid := conn.FSID()
	img, err := rbd.Open(ctx, io, s.Image, &rbd.OpenOptions{DeadClients: func(n entity.NumName) bool {
		return n.Type == entity.TypeClient && n.Num > 0 && owner.Previous(fmt.Sprintf("%s client.%d", fsid, n.Num))
	}})
	if err != nil {
		return fail(fmt.Errorf("opening %s: %w", s, err))
	}
	b := rbdbackend.New(img, false)
	if err := unlockExport(ctx, cmd, b, image, false, n.stateDir); err != nil {
		b.Close(ctx)
		return fail(err)
	}
	if err := enableQoS(ctx, cmd, b, image); err != nil {
		b.Close(ctx)
		return fail(err)
	}
	return &rbdExport{Backend: b, conn: conn, owner: owner, stateDir: n.stateDir}, nil
}

func (n *nbdCLI) openRBDExport(ctx context.Context, cmd *cobra.Command, image string, readOnly bool) (*rbdExport, error) {
	if _, err := rbdbackend.ParseSpec(image); err != nil {
		return nil, err
	}
	conn, err := n.ceph.connect(cmd)
	if err != nil {
		return nil, err
	}
	b, err := rbdbackend.Open(ctx, conn, image, readOnly)
	if err == nil {
		if err = unlockExport(ctx, cmd, b, image, readOnly, n.stateDir); err == nil {
			err = enableQoS(ctx, cmd, b, image)
		}
		if err != nil {
			b.Close(ctx)
		}
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &rbdExport{Backend: b, conn: conn}, nil
}

// sharedConn is the one cluster connection `nbd serve` shares among all
// the images it serves, and those images.
type sharedConn struct {
	ceph   *cephFlags
	conn   *rados.Conn
	images []*rbdbackend.Backend
}

// open opens image on the shared connection (connecting first if needed);
// withQoS makes it follow the image's QoS settings (Backend.Limiter).
func (s *sharedConn) open(ctx context.Context, cmd *cobra.Command, image string, readOnly, withQoS bool) (*rbdbackend.Backend, error) {
	if _, err := rbdbackend.ParseSpec(image); err != nil {
		return nil, err
	}
	if s.conn == nil {
		c, err := s.ceph.connect(cmd)
		if err != nil {
			return nil, err
		}
		s.conn = c
	}
	b, err := rbdbackend.Open(ctx, s.conn, image, readOnly)
	if err == nil {
		if err = unlockExport(ctx, cmd, b, image, readOnly, ""); err == nil && withQoS {
			err = enableQoS(ctx, cmd, b, image)
		}
		if err != nil {
			b.Close(ctx)
		}
	}
	if err != nil {
		return nil, err
	}
	s.images = append(s.images, b)
	return b, nil
}

// closeAll closes the images, last opened first, then the connection.
func (s *sharedConn) closeAll() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for i := len(s.images) - 1; i >= 0; i-- {
		errs = append(errs, s.images[i].Close(ctx))
	}
	s.images = nil
	if s.conn != nil {
		errs = append(errs, s.conn.Close())
		s.conn = nil
	}
	return errors.Join(errs...)
}

// enableQoS makes b follow the image's librbd QoS settings (rbd config
// image|pool set rbd_qos_*), live, and reports every change on stderr.
func enableQoS(ctx context.Context, cmd *cobra.Command, b *rbdbackend.Backend, image string) error {
	w := cmd.ErrOrStderr()
	_, err := b.EnableQoS(ctx, func(l qos.Limits, err error) {
		if err != nil {
			fmt.Fprintf(w, "qos %s: %s (%v)\n", image, l, err)
			return
		}
		fmt.Fprintf(w, "qos %s: %s\n", image, l)
	})
	if err != nil {
		return fmt.Errorf("reading the QoS settings of %s: %w", image, err)
	}
	return nil
}

// ownerWait bounds waiting for an image's owner file: a server that is
// shutting down lets go of it within moments.
const ownerWait = 5 * time.Second

// acquireImageOwner takes the owner file of a read-write image in the state
// directory: held by the process serving the image, it lists the Ceph
// clients of the processes that served it before (package incarnation).
// A process that holds it is alive; one that does not is dead, and the
// exclusive lock its clients left is broken at once instead of after
// their header watch times out (osd_client_watch_timeout, 30 s).
func (n *nbdCLI) acquireImageOwner(ctx context.Context, image string) (*incarnation.Dir, error) {
	dir := filepath.Join(n.stateDir, "owners")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, ownerWait)
	defer cancel()
	d, err := incarnation.Acquire(ctx, filepath.Join(dir, url.PathEscape(image)))
	if errors.Is(err, incarnation.ErrBusy) {
		return nil, fmt.Errorf("%s is served read-write by another live csi-gorbd process: %w", image, err)
	}
	return d, err
}

func clientToken(c *rados.Conn) string { return fmt.Sprintf("%s client.%d", c.FSID(), c.GlobalID()) }

// openRBDForMap opens POOL/IMAGE[@SNAP] for map and recover. Credentials
// come from the command's own flags and config, never from the state
// directory.
func (n *nbdCLI) openRBDForMap(ctx context.Context, cmd *cobra.Command, image string, readOnly bool) (nbd.Backend, error) {
	if s, err := rbdbackend.ParseSpec(image); err == nil && s.Snap != "" && !readOnly {
		return nil, fmt.Errorf("%s: a snapshot can only be mapped with --read-only", image)
	}
	var owner *incarnation.Dir
	if !readOnly {
		var err error
		if owner, err = n.acquireImageOwner(ctx, image); err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(n.lockWait)
	for {
		e, err := n.openRBDExportOwned(ctx, cmd, image, readOnly, owner)
		if err == nil {
			return e, nil
		}
		if !errors.Is(err, rbd.ErrBusy) || time.Now().After(deadline) {
			owner.Close()
			return nil, err
		}
		t := time.NewTimer(2 * time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			owner.Close()
			return nil, fmt.Errorf("%w (gave up waiting: %w)", err, ctx.Err())
		case <-t.C:
		}
	}
}
