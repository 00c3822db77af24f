package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/internal/rbdbackend"
	"github.com/csi-gorbd/csi-gorbd/nbd"
	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// RBD images for `nbd serve POOL/IMAGE[@SNAP]` and `nbd map`/`nbd recover`:
// this file plugs internal/rbdbackend into the hooks of cmd_nbd_serve.go
// and cmd_nbd_map.go. Credentials come from the global ceph flags.

// nbdLockWait is how long "nbd recover" keeps trying an image whose
// exclusive lock still looks held. After a kill -9 the dead server's
// header watch lives on in the OSD until osd_client_watch_timeout (30s by
// default) runs out; only then can rbd tell the owner is dead, blocklist
// it and break its lock. "nbd map" does not wait: a busy image there is
// another live client's.
var nbdLockWait time.Duration

func init() {
	nbdServeOpenImage = openRBDForServe
	nbdMapOpenImage = openRBDForMap
	nbdRecoverCmd.Flags().DurationVar(&nbdLockWait, "lock-wait", 90*time.Second,
		"keep retrying an image whose exclusive lock a dead server still seems to hold (keep it below the devices' --dead-conn-timeout)")
}

// rbdExport is an open image with the connection it owns; Close (the
// io.Closer the attach manager calls) releases both.
type rbdExport struct {
	*rbdbackend.Backend
	conn *rados.Conn
}

func (e *rbdExport) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := e.Backend.Close(ctx)
	if cerr := e.conn.Close(); err == nil {
		err = cerr
	}
	return err
}

func openRBDExport(ctx context.Context, cmd *cobra.Command, image string, readOnly bool) (*rbdExport, error) {
	if _, err := rbdbackend.ParseSpec(image); err != nil {
		return nil, err
	}
	conn, err := connectCeph(cmd)
	if err != nil {
		return nil, err
	}
	b, err := rbdbackend.Open(ctx, conn, image, readOnly)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &rbdExport{Backend: b, conn: conn}, nil
}

// serveConn is the one cluster connection `nbd serve` shares among all
// the images it serves; serveRefs counts the open images.
var (
	serveConn *rados.Conn
	serveRefs int
)

func openRBDForServe(ctx context.Context, cmd *cobra.Command, image string) (nbd.Backend, string, func() error, error) {
	if _, err := rbdbackend.ParseSpec(image); err != nil {
		return nil, "", nil, err
	}
	if serveConn == nil {
		c, err := connectCeph(cmd)
		if err != nil {
			return nil, "", nil, err
		}
		serveConn = c
	}
	release := func() error {
		if serveRefs--; serveRefs == 0 {
			err := serveConn.Close()
			serveConn = nil
			return err
		}
		return nil
	}
	serveRefs++
	b, err := rbdbackend.Open(ctx, serveConn, image, nbdServeFlags.readOnly)
	if err != nil {
		release()
		return nil, "", nil, err
	}
	closeFn := func() error {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := b.Close(cctx)
		if rerr := release(); err == nil {
			err = rerr
		}
		return err
	}
	return b, b.Description(), closeFn, nil
}

func openRBDForMap(ctx context.Context, cmd *cobra.Command, image string, readOnly bool) (nbd.Backend, error) {
	if s, err := rbdbackend.ParseSpec(image); err == nil && s.Snap != "" && !readOnly {
		return nil, fmt.Errorf("%s: a snapshot can only be mapped with --read-only", image)
	}
	deadline := time.Now().Add(nbdLockWait)
	for {
		e, err := openRBDExport(ctx, cmd, image, readOnly)
		if err == nil {
			return e, nil
		}
		if !errors.Is(err, rbd.ErrBusy) || time.Now().After(deadline) {
			return nil, err
		}
		t := time.NewTimer(2 * time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (gave up waiting: %w)", err, ctx.Err())
		case <-t.C:
		}
	}
}
