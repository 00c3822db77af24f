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

// cloneFrom makes rec.Image a clone v2 of src@snap, taking the snapshot
// first when makeSnap (a volume source), and returns the clone's size
// (the snapshot's). The source image may wait in the trash (its volume
// was deleted while snapshots remained). A temporary snapshot this call
// took goes again when the clone cannot be made.
func (se *session) cloneFrom(ctx context.Context, src csiceph.VolumeID, snap string, rec volumeRecord, opts *rbd.CreateOptions, makeSnap bool) (uint64, error) {
	if src.ClusterID != se.cluster {
		return 0, status.Error(codes.InvalidArgument, "content source is on another cluster")
	}
	pio, err := se.poolIO(ctx, src.PoolID)
	if err != nil {
		return 0, se.fail(err)
	}
	unlock, err := se.s.lockImage(ctx, src.ClusterID, src.PoolID, src.Image)
	if err != nil {
		return 0, err
	}
	defer unlock()
	size, trashID, took, err := se.sourceSnapshot(ctx, pio, src, snap, makeSnap)
	if err == nil {
		err = se.cloneSnapshot(ctx, pio, src.Image, trashID, snap, rec, size, opts)
	}
	if err != nil && took {
		se.s.cleanup(ctx, fmt.Sprintf("temporary snapshot %s@%s (DeleteVolume of the source removes it)", src.Image, snap),
			func(ctx context.Context) error { return se.dropSnapshot(ctx, pio, src.Image, snap) })
	}
	return size, err
}

// sourceSnapshot finds snapshot snap of the source image, taking it when
// makeSnap and it is not there. It returns the snapshot's size, the
// source's trash id ("" when it is not in the trash) and whether this call
// tried to take the snapshot (a failed try may still have taken it).
func (se *session) sourceSnapshot(ctx context.Context, pio *rados.IOContext, src csiceph.VolumeID, snap string, makeSnap bool) (
	size uint64, trashID string, took bool, err error) {
	parent, trashID, err := openImage(ctx, pio, src.Image, nil)
	if err != nil {
		if notFound(err) {
			return 0, "", false, status.Errorf(codes.NotFound, "content source %s: image %q does not exist in pool %s (deleted, with all its snapshots?)",
				src, src.Image, pio.PoolName())
		}
		return 0, "", false, se.fail(err)
	}
	defer se.s.closeImage(ctx, parent, src.Image)
	if trashID != "" && makeSnap {
		return 0, "", false, status.Errorf(codes.NotFound, "source volume %s was deleted", src.Image)
	}
	for _, si := range parent.Stat().Snapshots {
		if si.Name == snap && si.Namespace.Type == rbd.SnapNamespaceUser {
			return si.Size, trashID, false, nil
		}
	}
	if !makeSnap {
		return 0, "", false, status.Errorf(codes.NotFound, "snapshot %s of %s not found", snap, src.Image)
	}
	if _, err := parent.CreateSnapshot(ctx, snap); err != nil {
		return 0, "", true, se.fail(err)
	}
	return parent.Size(), trashID, true, nil
}

// cloneSnapshot clones image@snap (from the trash when trashID is set)
// as rec.Image, which must be at least as large as the snapshot.
func (se *session) cloneSnapshot(ctx context.Context, pio *rados.IOContext, image, trashID, snap string, rec volumeRecord, snapSize uint64,
	opts *rbd.CreateOptions) error {
	if rec.Size < snapSize {
		return status.Errorf(codes.OutOfRange, "requested size %d is smaller than the source (%d)", rec.Size, snapSize)
	}
	opts.DataPoolSet = false // a clone keeps its parent's layout
	var err error
	if trashID != "" {
		_, err = rbd.CloneByID(ctx, pio, trashID, snap, se.io, rec.Image, opts)
	} else {
		_, err = rbd.Clone(ctx, pio, image, snap, se.io, rec.Image, opts)
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
