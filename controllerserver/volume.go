package controllerserver

import (
	"context"
	"errors"
	"syscall"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// cloneSnapPrefix names the temporary snapshot a volume clone hangs from.
const cloneSnapPrefix = "csi-clone-"

// CreateVolume makes (or finds, for a repeated name) an RBD image.
func (s *Server) CreateVolume(ctx context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	name := req.GetName()
	if name == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required")
	}
	if err := csiceph.CheckCapabilities(req.GetVolumeCapabilities()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	params, err := csiceph.ParseVolumeParams(req.GetParameters())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	size, err := RoundCapacity(req.GetCapacityRange())
	if err != nil {
		return nil, status.Error(codes.OutOfRange, err.Error())
	}
	var source string
	var srcSnap *csiceph.SnapshotID
	var srcVol *csiceph.VolumeID
	if cs := req.GetVolumeContentSource(); cs != nil {
		switch {
		case cs.GetSnapshot() != nil:
			id, err := csiceph.ParseSnapshotID(cs.GetSnapshot().GetSnapshotId())
			if err != nil {
				return nil, status.Errorf(codes.NotFound, "source snapshot: %v", err)
			}
			srcSnap, source = &id, id.String()
		case cs.GetVolume() != nil:
			id, err := csiceph.ParseVolumeID(cs.GetVolume().GetVolumeId())
			if err != nil {
				return nil, status.Errorf(codes.NotFound, "source volume: %v", err)
			}
			srcVol, source = &id, id.String()
		default:
			return nil, status.Error(codes.InvalidArgument, "unknown volume content source")
		}
	}
	release, err := s.guard("volume-name/" + name)
	if err != nil {
		return nil, err
	}
	defer release()

	se, err := s.open(ctx, params.ClusterID, req.GetSecrets(), params.Pool, 0)
	if err != nil {
		return nil, err
	}
	j := se.volJournal()
	var rec volumeRecord
	found, err := j.get(ctx, volKeyPrefix+name, &rec)
	if err != nil {
		return nil, se.fail(err)
	}
	if found {
		if rec.Source != source {
			return nil, status.Errorf(codes.AlreadyExists, "volume %q exists with another content source", name)
		}
		if !fits(rec.Size, req.GetCapacityRange()) {
			return nil, status.Errorf(codes.AlreadyExists, "volume %q exists with size %d", name, rec.Size)
		}
	} else {
		rec = volumeRecord{Image: newName(params.NamePrefix), Size: size, Source: source}
		if srcVol != nil {
			rec.CloneSnap = cloneSnapPrefix + rec.Image
		}
		if err := j.put(ctx, map[string]any{volKeyPrefix + name: rec, imageKeyPrefix + rec.Image: name}); err != nil {
			return nil, se.fail(err)
		}
	}
	if err := se.makeImage(ctx, params, rec, srcSnap, srcVol); err != nil {
		if !found {
			// Undo the reservation so a failed request leaves nothing
			// behind; makeImage removes what it made itself.
			_ = j.remove(ctx, volKeyPrefix+name, imageKeyPrefix+rec.Image)
		}
		return nil, err
	}
	vol := &csi.Volume{
		VolumeId:      se.volumeID(rec.Image),
		CapacityBytes: int64(rec.Size),
		VolumeContext: map[string]string{"clusterID": params.ClusterID, "pool": params.Pool, "imageName": rec.Image},
		ContentSource: req.GetVolumeContentSource(),
	}
	if params.DataPool != "" {
		vol.VolumeContext["dataPool"] = params.DataPool
	}
	return &csi.CreateVolumeResponse{Volume: vol}, nil
}

// makeImage creates the journalled image unless it already exists.
func (se *session) makeImage(ctx context.Context, p csiceph.VolumeParams, rec volumeRecord, srcSnap *csiceph.SnapshotID, srcVol *csiceph.VolumeID) error {
	if img, err := rbd.Open(ctx, se.io, rec.Image, &rbd.OpenOptions{ReadOnly: true}); err == nil {
		_ = img.Close(ctx)
		return nil
	} else if !errors.Is(err, rbd.ErrNotFound) && !errors.Is(err, syscall.ENOENT) {
		return se.fail(err)
	}
	opts := &rbd.CreateOptions{Features: p.Features}
	if p.DataPool != "" {
		id, err := se.io.Conn().LookupPool(ctx, p.DataPool)
		if err != nil {
			return se.fail(err)
		}
		opts.DataPool, opts.DataPoolSet = id, true
	}
	var err error
	switch {
	case srcSnap != nil:
		err = se.cloneFrom(ctx, srcSnap.VolumeID, srcSnap.Snap, rec, opts, false)
	case srcVol != nil:
		err = se.cloneFrom(ctx, *srcVol, rec.CloneSnap, rec, opts, true)
	}
	if srcSnap != nil || srcVol != nil {
		if err != nil {
			return err
		}
		max := se.s.maxDepth
		if p.MaxCloneDepth > 0 {
			max = p.MaxCloneDepth
		}
		if depth, derr := chainDepth(ctx, se.io, rec.Image); derr == nil && depth > max {
			se.flattenLater(rec.Image)
		}
		return nil
	}
	if _, err := rbd.Create(ctx, se.io, rec.Image, rec.Size, opts); err != nil {
		return se.fail(err)
	}
	return nil
}

// cloneFrom makes rec.Image a clone v2 of src@snap (taking the snapshot
// first when makeSnap), then grows it to rec.Size. The source image may
// wait in the trash (its volume was deleted while snapshots remained).
func (se *session) cloneFrom(ctx context.Context, src csiceph.VolumeID, snap string, rec volumeRecord, opts *rbd.CreateOptions, makeSnap bool) error {
	if src.ClusterID != se.cluster {
		return status.Error(codes.InvalidArgument, "content source is on another cluster")
	}
	pio, err := se.poolIO(ctx, src.PoolID)
	if err != nil {
		return se.fail(err)
	}
	unlock, err := se.s.lockImage(ctx, src.ClusterID, src.PoolID, src.Image)
	if err != nil {
		return err
	}
	defer unlock()
	parent, trashID, err := openImage(ctx, pio, src.Image, nil)
	if err != nil {
		if notFound(err) {
			return status.Errorf(codes.NotFound, "content source %s: image %q does not exist in pool %s (deleted, with all its snapshots?)",
				src, src.Image, pio.PoolName())
		}
		return se.fail(err)
	}
	if trashID != "" && makeSnap {
		_ = parent.Close(ctx)
		return status.Errorf(codes.NotFound, "source volume %s was deleted", src.Image)
	}
	info := parent.Stat()
	var snapSize uint64
	var have bool
	for _, si := range info.Snapshots {
		if si.Name == snap && si.Namespace.Type == rbd.SnapNamespaceUser {
			have, snapSize = true, si.Size
		}
	}
	if !have {
		if !makeSnap {
			_ = parent.Close(ctx)
			return status.Errorf(codes.NotFound, "snapshot %s of %s not found", snap, src.Image)
		}
		if _, err := parent.CreateSnapshot(ctx, snap); err != nil {
			_ = parent.Close(ctx)
			return se.fail(err)
		}
		snapSize = parent.Size()
	}
	_ = parent.Close(ctx)
	if rec.Size < snapSize {
		return status.Errorf(codes.OutOfRange, "requested size %d is smaller than the source (%d)", rec.Size, snapSize)
	}
	opts.DataPoolSet = false // a clone keeps its parent's layout
	if trashID != "" {
		_, err = rbd.CloneByID(ctx, pio, trashID, snap, se.io, rec.Image, opts)
	} else {
		_, err = rbd.Clone(ctx, pio, src.Image, snap, se.io, rec.Image, opts)
	}
	if err != nil {
		if makeSnap && !have {
			// Drop the temporary snapshot this attempt took.
			if p, oerr := rbd.Open(ctx, pio, src.Image, nil); oerr == nil {
				_ = p.RemoveSnapshot(ctx, snap)
				_ = p.Close(ctx)
			}
		}
		return se.fail(err)
	}
	if rec.Size > snapSize {
		img, err := rbd.Open(ctx, se.io, rec.Image, nil)
		if err != nil {
			return se.fail(err)
		}
		defer img.Close(ctx)
		if err := img.Resize(ctx, rec.Size); err != nil {
			return se.fail(err)
		}
	}
	return nil
}

// DeleteVolume removes the image and its journal entries; an unknown or
// already deleted volume is success.
func (s *Server) DeleteVolume(ctx context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	}
	id, err := csiceph.ParseVolumeID(req.GetVolumeId())
	if err != nil {
		return &csi.DeleteVolumeResponse{}, nil // never ours: nothing to delete
	}
	release, err := s.guard("volume-id/" + req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	defer release()
	se, err := s.open(ctx, id.ClusterID, req.GetSecrets(), "", id.PoolID)
	if err != nil {
		if status.Code(err) == codes.NotFound {
			return &csi.DeleteVolumeResponse{}, nil // the pool is gone
		}
		return nil, err
	}
	unlock, err := s.lockImage(ctx, id.ClusterID, id.PoolID, id.Image)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := se.deleteImage(ctx, id.Image); err != nil {
		return nil, se.fail(err)
	}
	j := se.volJournal()
	var name string
	if found, err := j.get(ctx, imageKeyPrefix+id.Image, &name); err != nil {
		return nil, se.fail(err)
	} else if found {
		if err := j.remove(ctx, imageKeyPrefix+id.Image, volKeyPrefix+name); err != nil {
			return nil, se.fail(err)
		}
	}
	return &csi.DeleteVolumeResponse{}, nil
}

// deleteImage removes the image called name, or moves it to the trash
// when snapshots it must keep serving remain, then collects what it held
// on its parent. A missing (or already trashed) image is success.
func (se *session) deleteImage(ctx context.Context, name string) error {
	img, err := rbd.Open(ctx, se.io, name, nil)
	if err != nil {
		if notFound(err) {
			return nil
		}
		return err
	}
	left, err := dropDeadSnaps(ctx, img)
	info := img.Stat()
	_ = img.Close(ctx)
	if err != nil {
		return err
	}
	if left > 0 {
		if _, err := rbd.TrashMove(ctx, se.io, name, 0); err != nil && !notFound(err) {
			return err
		}
		return nil
	}
	if err := rbd.Remove(ctx, se.io, name); err != nil && !notFound(err) {
		return err
	}
	if p := info.Parent; p != nil {
		return se.collect(ctx, *p, name)
	}
	return nil
}

// ValidateVolumeCapabilities confirms the capabilities the driver supports.
func (s *Server) ValidateVolumeCapabilities(ctx context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "volume_capabilities are required")
	}
	id, err := csiceph.ParseVolumeID(req.GetVolumeId())
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "volume %q: %v", req.GetVolumeId(), err)
	}
	se, err := s.open(ctx, id.ClusterID, req.GetSecrets(), "", id.PoolID)
	if err != nil {
		return nil, err
	}
	img, err := rbd.Open(ctx, se.io, id.Image, &rbd.OpenOptions{ReadOnly: true})
	if err != nil {
		return nil, se.volumeErr(id, err)
	}
	_ = img.Close(ctx)
	if err := csiceph.CheckCapabilities(req.GetVolumeCapabilities()); err != nil {
		return &csi.ValidateVolumeCapabilitiesResponse{Message: err.Error()}, nil
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext:      req.GetVolumeContext(),
		VolumeCapabilities: req.GetVolumeCapabilities(),
		Parameters:         req.GetParameters(),
	}}, nil
}

// ControllerExpandVolume grows the image; filesystems grow on the node.
func (s *Server) ControllerExpandVolume(ctx context.Context, req *csi.ControllerExpandVolumeRequest) (*csi.ControllerExpandVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	}
	if req.GetCapacityRange() == nil {
		return nil, status.Error(codes.InvalidArgument, "capacity_range is required")
	}
	size, err := RoundCapacity(req.GetCapacityRange())
	if err != nil {
		return nil, status.Error(codes.OutOfRange, err.Error())
	}
	id, err := csiceph.ParseVolumeID(req.GetVolumeId())
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "volume %q: %v", req.GetVolumeId(), err)
	}
	release, err := s.guard("volume-id/" + req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	defer release()
	se, err := s.open(ctx, id.ClusterID, req.GetSecrets(), "", id.PoolID)
	if err != nil {
		return nil, err
	}
	img, err := rbd.Open(ctx, se.io, id.Image, nil)
	if err != nil {
		return nil, se.volumeErr(id, err)
	}
	defer img.Close(ctx)
	cur := img.Size()
	if size > cur {
		if err := img.Resize(ctx, size); err != nil {
			return nil, se.fail(err)
		}
		cur = size
	}
	nodeExpand := req.GetVolumeCapability() == nil || req.GetVolumeCapability().GetBlock() == nil
	return &csi.ControllerExpandVolumeResponse{CapacityBytes: int64(cur), NodeExpansionRequired: nodeExpand}, nil
}
