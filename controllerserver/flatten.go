package controllerserver

import (
	"context"
	"fmt"
	"time"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// Background flattening. Clone chains cost a lookup per level on every
// read that misses, so a new clone whose chain is deeper than the
// configured maximum is flattened — never inside the request (CreateVolume
// returns as soon as the clone exists), but by a goroutine the Server
// owns. It works on the new clone only, which no node uses yet; if the
// image is busy it tries again later, a bounded number of times.

const (
	flattenAttempts = 5
	flattenRetry    = 10 * time.Second
	flattenTimeout  = 30 * time.Minute
)

// chainDepth counts the parents above the image called name (0: not a
// clone).
func (se *session) chainDepth(ctx context.Context, name string) (int, error) {
	img, err := rbd.Open(ctx, se.io, name, &rbd.OpenOptions{ReadOnly: true})
	if err != nil {
		return 0, err
	}
	p := img.Stat().Parent
	se.s.closeImage(ctx, img, name)
	depth := 0
	for p != nil && depth < maxCollectDepth {
		depth++
		pio, err := se.poolIO(ctx, p.PoolID, p.Namespace)
		if err != nil {
			return depth, err
		}
		img, err := rbd.OpenByID(ctx, pio, p.ImageID, &rbd.OpenOptions{ReadOnly: true})
		if err != nil {
			return depth, err
		}
		next := img.Stat().Parent
		se.s.closeImage(ctx, img, "id "+p.ImageID)
		p = next
	}
	return depth, nil
}

// flattenLater queues a background flatten of the clone called image.
func (se *session) flattenLater(image string) {
	s, cluster, cred, pool, ns := se.s, se.cluster, se.cred, se.io.PoolID(), se.io.Namespace()
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		ctx, cancel := context.WithTimeout(s.bgCtx, flattenTimeout)
		defer cancel()
		var err error
		for attempt := 0; attempt < flattenAttempts; attempt++ {
			if err = s.flatten(ctx, cluster, cred, pool, ns, image); err == nil {
				return
			}
			t := time.NewTimer(flattenRetry)
			select {
			case <-ctx.Done():
				t.Stop()
				s.noteBackground(fmt.Errorf("flatten %s: %w (last error: %v)", image, ctx.Err(), err))
				return
			case <-t.C:
			}
		}
		s.noteBackground(fmt.Errorf("flatten %s: giving up after %d attempts: %w", image, flattenAttempts, err))
	}()
}

func (s *Server) flatten(ctx context.Context, cluster string, cred csiceph.Credentials, pool int64, ns, image string) error {
	c, err := s.conns.Get(ctx, cluster, cred)
	if err != nil {
		return err
	}
	io, err := c.OpenIOContextByID(ctx, pool)
	if err != nil {
		s.conns.Failed(c, err)
		return err
	}
	io.SetNamespace(ns)
	se := &session{s: s, cluster: cluster, cred: cred, io: io}
	unlock, err := s.lockImage(ctx, io, image)
	if err != nil {
		return err
	}
	defer unlock()
	img, err := rbd.Open(ctx, io, image, nil)
	if err != nil {
		if notFound(err) {
			return nil // deleted meanwhile
		}
		s.conns.Failed(c, err)
		return err
	}
	p := img.Stat().Parent
	if p == nil {
		s.closeImage(ctx, img, image)
		return nil
	}
	err = img.Flatten(ctx)
	s.closeImage(ctx, img, image)
	if err != nil {
		s.conns.Failed(c, err)
		return err
	}
	return se.collect(ctx, *p, image)
}

// noteBackground logs a background failure and keeps it for
// BackgroundErrors.
func (s *Server) noteBackground(err error) {
	s.log.Error(err, "background flatten failed")
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if len(s.bgErrs) < 100 {
		s.bgErrs = append(s.bgErrs, err)
	}
}

// BackgroundErrors returns (and forgets) the failures of background
// flattens since the last call.
func (s *Server) BackgroundErrors() []error {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	out := s.bgErrs
	s.bgErrs = nil
	return out
}

// WaitBackground waits until no background flatten is running or ctx
// ends.
func (s *Server) WaitBackground(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.bg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
