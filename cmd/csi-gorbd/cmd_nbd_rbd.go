package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/internal/rbdbackend"
	"github.com/csi-gorbd/csi-gorbd/nbd"
	"github.com/csi-gorbd/csi-gorbd/rados"
)

// RBD images for `nbd serve POOL/IMAGE[@SNAP]` and `nbd map`/`nbd recover`:
// this file plugs internal/rbdbackend into the hooks of cmd_nbd_serve.go
// and cmd_nbd_map.go. Credentials come from the global ceph flags.

func init() {
	nbdServeOpenImage = openRBDForServe
	nbdMapOpenImage = openRBDForMap
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

func openRBDForServe(ctx context.Context, cmd *cobra.Command, image string) (nbd.Backend, string, func() error, error) {
	e, err := openRBDExport(ctx, cmd, image, nbdServeFlags.readOnly)
	if err != nil {
		return nil, "", nil, err
	}
	if e.ReadOnly() {
		// A snapshot: advertise the export read-only (runNBDServe reads
		// the flag after opening the backend).
		nbdServeFlags.readOnly = true
	}
	return e, e.Description(), e.Close, nil
}

func openRBDForMap(ctx context.Context, cmd *cobra.Command, image string, readOnly bool) (nbd.Backend, error) {
	if s, err := rbdbackend.ParseSpec(image); err == nil && s.Snap != "" && !readOnly {
		return nil, fmt.Errorf("%s: a snapshot can only be mapped with --read-only", image)
	}
	e, err := openRBDExport(ctx, cmd, image, readOnly)
	if err != nil {
		return nil, err
	}
	return e, nil
}
