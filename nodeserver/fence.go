package nodeserver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// One writer per volume, on the node (see the package documentation,
// "Single writer and fencing"). A writable stage of a single-node access
// mode holds the image alone for as long as it is staged:
//
//   - an image with the exclusive-lock feature is opened Exclusive: the
//     lock is taken at open and kept, a peer's lock request is refused
//     (krbd "-o exclusive"); a lock held by a live client fails the stage
//     with a *rbd.LockedError naming it;
//   - an image without the feature has no lock: the stage refuses when
//     another client watches the header.
//
// The clients another node may take the image from at once are dead ones
// this process knows of (its own previous incarnation: the state
// directory's owner file) and withdrawn ones: the image's metadata says
// the client staged it for a node the controller has since unpublished it
// from. Both are blocklisted before the stage goes on (the lock's break
// does it for a lock holder, Blocklist for a watcher), so a holder that
// wakes up later gets EBLOCKLISTED instead of writing over this node.

// exclusiveStage reports whether a stage of rec holds the image alone.
func (r *volumeRecord) exclusiveStage() bool {
	return !r.ReadOnly && csiceph.SingleWriter(csi.VolumeCapability_AccessMode_Mode(r.AccessMode))
}

// peekTimeout bounds the metadata look before an exclusive open.
const peekTimeout = 30 * time.Second

// users reads what the image's metadata says about its users (without
// watching or locking it: the look itself must not count as a user).
func users(ctx context.Context, io *rados.IOContext, image string) (csiceph.Users, error) {
	ctx, cancel := context.WithTimeout(ctx, peekTimeout)
	defer cancel()
	img, err := rbd.Open(ctx, io, image, &rbd.OpenOptions{ReadOnly: true, NoWatch: true})
	if err != nil {
		return csiceph.Users{}, err
	}
	defer img.Close(context.WithoutCancel(ctx))
	return csiceph.ReadUsers(ctx, img)
}

// deadOrWithdrawn is the rbd.OpenOptions.DeadClients of an exclusive
// stage: this process's previous incarnation, or a client the CO took the
// volume from.
func (s *Server) deadOrWithdrawn(fsid string, u csiceph.Users) func(entity.NumName) bool {
	return func(n entity.NumName) bool {
		return s.previous(fsid, n) || u.Withdrawn(n)
	}
}

// previous reports whether n was a client of this state directory's
// previous owner (a plugin process that is gone).
func (s *Server) previous(fsid string, n entity.NumName) bool {
	return n.Type == entity.TypeClient && n.Num > 0 && s.owner.Previous(clientToken(fsid, uint64(n.Num)))
}

// inUse says who holds the volume: the lock owner (or watchers) and the
// node its stage record names.
func inUse(volumeID string, holders []string, why string) error {
	return fmt.Errorf("%w: volume %q is in use by %s (%s)", rbd.ErrBusy, volumeID, strings.Join(holders, ", "), why)
}

// lockedErr adds the holder's node to a *rbd.LockedError.
func lockedErr(volumeID string, u csiceph.Users, err error) error {
	var le *rbd.LockedError
	if !errors.As(err, &le) || (le.Owner == entity.NumName{}) {
		return err
	}
	return fmt.Errorf("volume %q is staged writable elsewhere: held by %s with the image's exclusive lock: %w",
		volumeID, u.Describe(le.Owner, le.Addr), err)
}

// claimWatchers, for an exclusive stage of an image without the
// exclusive-lock feature, fences the watchers that are dead or withdrawn
// and refuses when any other client watches the header.
func (s *Server) claimWatchers(ctx context.Context, io *rados.IOContext, img *rbd.Image, volumeID, fsid string, u csiceph.Users) error {
	ws, err := img.Watchers(ctx)
	if err != nil {
		return err
	}
	var live []string
	for _, w := range ws {
		if !s.previous(fsid, w.Entity) && !u.Withdrawn(w.Entity) {
			live = append(live, u.Describe(w.Entity, w.Addr))
			continue
		}
		if err := rbd.Blocklist(ctx, io, w.Addr); err != nil {
			return fmt.Errorf("fencing %s, which watches volume %q: %w", u.Describe(w.Entity, w.Addr), volumeID, err)
		}
	}
	if len(live) > 0 {
		return inUse(volumeID, live, "watching the header of an image without the exclusive-lock feature")
	}
	return nil
}

// recordStage writes this node's stage record: the client that holds the
// image here, for the next node to recognise it. The records of nodes
// the volume was withdrawn from go: their clients hold nothing any more
// (this open took over, fencing the one that did).
func (s *Server) recordStage(ctx context.Context, img *rbd.Image, c *rados.Conn, rec *volumeRecord, u csiceph.Users) error {
	for _, st := range u.Stages {
		if st.Node != s.o.NodeID && u.Attachments.IsWithdrawn(st.Node) {
			if err := csiceph.RemoveStage(ctx, img, st.Node); err != nil {
				return err
			}
		}
	}
	return csiceph.WriteStage(ctx, img, csiceph.Stage{Node: s.o.NodeID, Client: int64(c.GlobalID()),
		Mode: csi.VolumeCapability_AccessMode_Mode(rec.AccessMode).String(), Time: time.Now().Unix()})
}

// forgetStage removes this node's stage record once the volume is
// unstaged (best effort: a stale record names a client that no longer
// holds the image and so never matches).
func (s *Server) forgetStage(ctx context.Context, rec *volumeRecord) error {
	if !rec.exclusiveStage() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, peekTimeout)
	defer cancel()
	c, err := s.conns.Get(ctx, rec.ClusterID, rec.credentials())
	if err != nil {
		return err
	}
	io, err := c.OpenIOContextByID(ctx, rec.PoolID)
	if err != nil {
		return err
	}
	img, err := rbd.Open(ctx, io, rec.Image, &rbd.OpenOptions{NoWatch: true})
	if errors.Is(err, rbd.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer img.Close(context.WithoutCancel(ctx))
	u, err := csiceph.ReadUsers(ctx, img)
	if err != nil {
		return err
	}
	for _, st := range u.Stages {
		if st.Node == s.o.NodeID {
			return csiceph.RemoveStage(ctx, img, s.o.NodeID)
		}
	}
	return nil
}
