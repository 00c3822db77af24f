package controllerserver

import (
	"context"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// Cleanup after failures and around images.
//
// A request that fails undoes what it made, and every image it opens is
// closed (releasing its header watch and any lock). Both run on a context
// that outlives the request (context.WithoutCancel: a request that timed
// out must still clean up), bounded by cleanupTimeout. When the cleanup
// itself fails, the error is logged with what was left behind. Nothing is
// lost: everything the controller makes is found again by name, so what is
// left is picked up by a retry of the same request (the CO retries until
// it succeeds: a journal reservation is reused, a temporary clone snapshot
// too) or by a later call (DeleteVolume of a source drops temporary clone
// snapshots without children). An image that could not be closed keeps its
// header watch until its pooled connection is dropped.

// cleanupTimeout bounds one cleanup step.
const cleanupTimeout = 30 * time.Second

// cleanup runs undo on a context that outlives ctx, bounded by
// cleanupTimeout, and logs its failure with what it left behind.
func (s *Server) cleanup(ctx context.Context, left string, undo func(context.Context) error) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := undo(cctx); err != nil {
		s.log.Error(err, "cleanup failed", "left", left)
	}
}

// closeImage closes img, the image called name, as a cleanup step.
func (s *Server) closeImage(ctx context.Context, img *rbd.Image, name string) {
	s.cleanup(ctx, "header watch on image "+name+" (until its connection is dropped)", img.Close)
}
