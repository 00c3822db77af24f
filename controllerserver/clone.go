package controllerserver

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// cloneSnapPrefix names the temporary snapshot a volume clone hangs from.
const cloneSnapPrefix = "csi-clone-"

// cloneFromSnapshot makes rec.Image a clone v2 of the snapshot id: a
// native snapshot (csi-gorbd's, on the source volume's image) or
// ceph-csi's (the snapshot of its csi-snap-<uuid> image). It returns the
// clone's size.
func (se *session) cloneFromSnapshot(ctx context.Context, id csiceph.SnapshotID, rec volumeRecord, opts *rbd.CreateOptions) (uint64, error) {
	src, r, err := se.s.openSnapshot(ctx, id, se.secrets())
	if err != nil {
		return 0, gone(err, "source snapshot "+id.String())
	}
	if err := se.sameCluster(src); err != nil {
		return 0, err
	}
	return se.cloneFrom(ctx, r.io, r.holder, r.snap, rec, opts, false)
}

// cloneFromVolume makes rec.Image a clone v2 of the volume id, through a
// temporary snapshot (rec.CloneSnap) of its image.
func (se *session) cloneFromVolume(ctx context.Context, id csiceph.VolumeID, rec volumeRecord, opts *rbd.CreateOptions) (uint64, error) {
	src, v, err := se.s.openVolume(ctx, id, se.secrets())
	if err != nil {
		return 0, gone(err, "source volume "+id.String())
	}
	if err := se.sameCluster(src); err != nil {
		return 0, err
	}
	return se.cloneFrom(ctx, v.io, v.image, rec.CloneSnap, rec, opts, true)
}

// sameCluster refuses a content source on another Ceph cluster (clones
// cannot cross clusters).
func (se *session) sameCluster(src *session) error {
	if src.io.Conn().FSID() != se.io.Conn().FSID() {
		return status.Error(codes.InvalidArgument, "content source is on another cluster")
	}
	return nil
}

// secrets are the session's credentials as CSI secrets (to open the
// content source with).
func (se *session) secrets() map[string]string {
	return map[string]string{csiceph.SecretUserID: se.cred.User, csiceph.SecretUserKey: se.cred.Key}
}

// cloneFrom makes rec.Image a clone v2 of image@snap in pio, taking the
// snapshot first when makeSnap (a volume source), and returns the clone's
// size (the snapshot's). The source image may wait in the trash (its
// volume was deleted while snapshots remained). A temporary snapshot this
// call took goes again when the clone cannot be made.
func (se *session) cloneFrom(ctx context.Context, pio *rados.IOContext, image, snap string, rec volumeRecord, opts *rbd.CreateOptions, makeSnap bool) (uint64, error) {
	unlock, err := se.s.lockImage(ctx, pio, image)
	if err != nil {
		return 0, err
	}
	defer unlock()
	src, took, err := se.sourceSnapshot(ctx, pio, image, snap, makeSnap)
	size := src.size
	if err == nil {
		err = se.cloneSnapshot(ctx, pio, image, src, snap, rec, opts)
	}
	if err != nil && took {
		se.s.cleanup(ctx, fmt.Sprintf("temporary snapshot %s@%s (DeleteVolume of the source removes it)", image, snap),
			func(ctx context.Context) error { return se.dropSnapshot(ctx, pio, image, snap) })
	}
	return size, err
}

// snapSource is the snapshot a clone hangs from: its size, the source
// image's id and trash id ("" when it is not in the trash), and the
// snapshot's id when it is a group snapshot's member (0: a user
// snapshot, cloned by name).
type snapSource struct {
	size        uint64
	imageID     string
	trashID     string
	groupSnapID uint64
}

// sourceSnapshot finds snapshot snap of the source image (a user
// snapshot, or a group snapshot's member), taking it when makeSnap and it
// is not there. It also reports whether this call tried to take the
// snapshot (a failed try may still have taken it).
func (se *session) sourceSnapshot(ctx context.Context, pio *rados.IOContext, image, snap string, makeSnap bool) (
	src snapSource, took bool, err error) {
	parent, trashID, err := openImage(ctx, pio, image, nil)
	if err != nil {
		if notFound(err) {
			return src, false, status.Errorf(codes.NotFound, "content source: image %q does not exist in pool %s (deleted, with all its snapshots?)",
				image, poolSpec(pio))
		}
		return src, false, se.fail(err)
	}
	defer se.s.closeImage(ctx, parent, image)
	if trashID != "" && makeSnap {
		return src, false, status.Errorf(codes.NotFound, "source volume %s was deleted", image)
	}
	src.imageID, src.trashID = parent.Stat().ID, trashID
	for _, si := range parent.Stat().Snapshots {
		if si.Name != snap {
			continue
		}
		switch si.Namespace.Type {
		case rbd.SnapNamespaceUser:
			src.size = si.Size
			return src, false, nil
		case rbd.SnapNamespaceGroup:
			if !makeSnap {
				src.size, src.groupSnapID = si.Size, si.ID
				return src, false, nil
			}
		}
	}
	if !makeSnap {
		return snapSource{}, false, status.Errorf(codes.NotFound, "snapshot %s of %s not found", snap, image)
	}
	if _, err := parent.CreateSnapshot(ctx, snap); err != nil {
		return src, true, se.fail(err)
	}
	src.size = parent.Size()
	return src, true, nil
}

// cloneSnapshot clones image@snap (from the trash when src.trashID is
// set; by snapshot id when it is a group snapshot's member) as rec.Image,
// which must be at least as large as the snapshot.
func (se *session) cloneSnapshot(ctx context.Context, pio *rados.IOContext, image string, src snapSource, snap string, rec volumeRecord,
	opts *rbd.CreateOptions) error {
	if rec.Size < src.size {
		return status.Errorf(codes.OutOfRange, "requested size %d is smaller than the source (%d)", rec.Size, src.size)
	}
	o := *opts
	// A clone keeps its parent's layout.
	o.DataPoolSet, o.Order, o.StripeUnit, o.StripeCount = false, 0, 0, 0
	var err error
	switch {
	case src.groupSnapID != 0:
		_, err = rbd.CloneSnapshotID(ctx, pio, src.imageID, src.groupSnapID, se.io, rec.Image, &o)
	case src.trashID != "":
		_, err = rbd.CloneByID(ctx, pio, src.trashID, snap, se.io, rec.Image, &o)
	default:
		_, err = rbd.Clone(ctx, pio, image, snap, se.io, rec.Image, &o)
	}
	if err != nil {
		return se.fail(err)
	}
	return nil
}

// dropSnapshot removes snapshot snap of the image called image, if both
// are there.
func (se *session) dropSnapshot(ctx context.Context, io *rados.IOContext, image, snap string) error {
	img, err := rbd.Open(ctx, io, image, nil)
	if notFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer se.s.closeImage(ctx, img, image)
	if err := img.RemoveSnapshot(ctx, snap); err != nil && !notFound(err) {
		return err
	}
	return nil
}
