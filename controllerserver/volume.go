package controllerserver

import (
	"context"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// createRequest is a checked CreateVolume request.
type createRequest struct {
	name   string
	params csiceph.VolumeParams
	size   uint64
	cap    *csi.CapacityRange
	// source is the content source's id ("": a blank volume); one of
	// srcSnap and srcVol is set with it.
	source  string
	srcSnap *csiceph.SnapshotID
	srcVol  *csiceph.VolumeID
}

// parseCreate checks a CreateVolume request.
func parseCreate(req *csi.CreateVolumeRequest) (createRequest, error) {
	cr := createRequest{name: req.GetName(), cap: req.GetCapacityRange()}
	if cr.name == "" {
		return cr, status.Error(codes.InvalidArgument, "name is required")
	}
	if err := csiceph.CheckCapabilities(req.GetVolumeCapabilities()); err != nil {
		return cr, status.Error(codes.InvalidArgument, err.Error())
	}
	var err error
	if cr.params, err = csiceph.ParseVolumeParams(req.GetParameters()); err != nil {
		return cr, status.Error(codes.InvalidArgument, err.Error())
	}
	if cr.size, err = RoundCapacity(cr.cap); err != nil {
		return cr, status.Error(codes.OutOfRange, err.Error())
	}
	cs := req.GetVolumeContentSource()
	switch {
	case cs == nil:
	case cs.GetSnapshot() != nil:
		id, err := csiceph.ParseSnapshotID(cs.GetSnapshot().GetSnapshotId())
		if err != nil {
			return cr, status.Errorf(codes.NotFound, "source snapshot: %v", err)
		}
		cr.srcSnap, cr.source = &id, id.String()
	case cs.GetVolume() != nil:
		id, err := csiceph.ParseVolumeID(cs.GetVolume().GetVolumeId())
		if err != nil {
			return cr, status.Errorf(codes.NotFound, "source volume: %v", err)
		}
		cr.srcVol, cr.source = &id, id.String()
	default:
		return cr, status.Error(codes.InvalidArgument, "unknown volume content source")
	}
	return cr, nil
}

// CreateVolume makes (or finds, for a repeated name) an RBD image.
func (s *Server) CreateVolume(ctx context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	cr, err := parseCreate(req)
	if err != nil {
		return nil, err
	}
	release, err := s.guard("volume-name/" + cr.name)
	if err != nil {
		return nil, err
	}
	defer release()

	se, err := s.open(ctx, cr.params.ClusterID, req.GetSecrets(), cr.params.Pool, 0)
	if err != nil {
		return nil, err
	}
	rec, found, err := se.reserveVolume(ctx, cr)
	if err != nil {
		return nil, err
	}
	if err := se.makeImage(ctx, cr, rec); err != nil {
		if !found {
			// A failed request leaves nothing behind: what this call
			// made goes, with its reservation.
			s.cleanup(ctx, fmt.Sprintf("image %s and the journal entry of volume %q (a retry of the request finishes them)", rec.Image, cr.name),
				func(ctx context.Context) error { return se.undoCreate(ctx, cr.name, rec.Image) })
		}
		return nil, err
	}
	vol := &csi.Volume{
		VolumeId:      se.volumeID(rec.Image),
		CapacityBytes: int64(rec.Size),
		VolumeContext: map[string]string{csiceph.ParamClusterID: cr.params.ClusterID, csiceph.ParamPool: cr.params.Pool,
			csiceph.ContextImageName: rec.Image},
		ContentSource: req.GetVolumeContentSource(),
	}
	if cr.params.DataPool != "" {
		vol.VolumeContext[csiceph.ParamDataPool] = cr.params.DataPool
	}
	return &csi.CreateVolumeResponse{Volume: vol}, nil
}

// reserveVolume finds the journal record of the request name, or makes
// one (found false) with a new image name. A record that does not match
// the request is AlreadyExists.
func (se *session) reserveVolume(ctx context.Context, cr createRequest) (rec volumeRecord, found bool, err error) {
	j := se.volJournal()
	found, err = j.get(ctx, volKeyPrefix+cr.name, &rec)
	if err != nil {
		return rec, false, se.fail(err)
	}
	if found {
		if rec.Source != cr.source {
			return rec, true, status.Errorf(codes.AlreadyExists, "volume %q exists with another content source", cr.name)
		}
		if !fits(rec.Size, cr.cap) {
			return rec, true, status.Errorf(codes.AlreadyExists, "volume %q exists with size %d", cr.name, rec.Size)
		}
		return rec, true, nil
	}
	rec = volumeRecord{Image: newName(cr.params.NamePrefix), Size: cr.size, Source: cr.source}
	if cr.srcVol != nil {
		rec.CloneSnap = cloneSnapPrefix + rec.Image
	}
	err = se.reserve(ctx, j, fmt.Sprintf("volume %q", cr.name), map[string]any{volKeyPrefix + cr.name: rec, imageKeyPrefix + rec.Image: cr.name})
	return rec, false, err
}

// undoCreate removes what a failed CreateVolume made: the image, if it
// got that far (with what it holds on its parent), and the journal
// entries.
func (se *session) undoCreate(ctx context.Context, name, image string) error {
	if err := se.deleteImage(ctx, image); err != nil {
		return err
	}
	return se.volJournal().remove(ctx, volKeyPrefix+name, imageKeyPrefix+image)
}

// makeImage creates the journalled image unless it exists, and grows it
// to the journalled size (a clone is made at its source's size; a retry
// finishes one whose growing failed).
func (se *session) makeImage(ctx context.Context, cr createRequest, rec volumeRecord) error {
	size, err := se.imageSize(ctx, rec.Image)
	if notFound(err) {
		size, err = se.createImage(ctx, cr, rec)
	}
	if err != nil {
		return se.fail(err)
	}
	if size >= rec.Size {
		return nil
	}
	img, err := rbd.Open(ctx, se.io, rec.Image, nil)
	if err != nil {
		return se.fail(err)
	}
	defer se.s.closeImage(ctx, img, rec.Image)
	if err := img.Resize(ctx, rec.Size); err != nil {
		return se.fail(err)
	}
	return nil
}

// imageSize returns the size of the image called name.
func (se *session) imageSize(ctx context.Context, name string) (uint64, error) {
	img, err := rbd.Open(ctx, se.io, name, &rbd.OpenOptions{ReadOnly: true})
	if err != nil {
		return 0, err
	}
	defer se.s.closeImage(ctx, img, name)
	return img.Size(), nil
}

// createImage makes the journalled image: blank, or a clone of the
// content source (flattened later when its chain is too deep). It returns
// the size it made.
func (se *session) createImage(ctx context.Context, cr createRequest, rec volumeRecord) (uint64, error) {
	opts := &rbd.CreateOptions{Features: cr.params.Features}
	if cr.params.DataPool != "" {
		id, err := se.io.Conn().LookupPool(ctx, cr.params.DataPool)
		if err != nil {
			return 0, err
		}
		opts.DataPool, opts.DataPoolSet = id, true
	}
	if cr.srcSnap == nil && cr.srcVol == nil {
		_, err := rbd.Create(ctx, se.io, rec.Image, rec.Size, opts)
		return rec.Size, err
	}
	var size uint64
	var err error
	if cr.srcSnap != nil {
		size, err = se.cloneFrom(ctx, cr.srcSnap.VolumeID, cr.srcSnap.Snap, rec, opts, false)
	} else {
		size, err = se.cloneFrom(ctx, *cr.srcVol, rec.CloneSnap, rec, opts, true)
	}
	if err != nil {
		return 0, err
	}
	max := se.s.maxDepth
	if cr.params.MaxCloneDepth > 0 {
		max = cr.params.MaxCloneDepth
	}
	if depth, derr := se.chainDepth(ctx, rec.Image); derr == nil && depth > max {
		se.flattenLater(rec.Image)
	}
	return size, nil
}

// DeleteVolume removes the image and its journal entries; an unknown or
// already deleted volume is success.
func (s *Server) DeleteVolume(ctx context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	if err := csiceph.Required("volume_id", req.GetVolumeId()); err != nil {
		return nil, err
	}
	id, err := csiceph.ParseVolumeID(req.GetVolumeId())
	if err != nil {
		return &csi.DeleteVolumeResponse{}, nil // never ours: nothing to delete
	}
	se, done, err := s.begin(ctx, "volume-id/"+req.GetVolumeId(), id, req.GetSecrets(), true)
	if status.Code(err) == codes.NotFound {
		return &csi.DeleteVolumeResponse{}, nil // the pool is gone
	}
	if err != nil {
		return nil, err
	}
	defer done()
	if err := se.deleteImage(ctx, id.Image); err != nil {
		return nil, se.fail(err)
	}
	if err := se.volJournal().forget(ctx, imageKeyPrefix+id.Image, volKeyPrefix); err != nil {
		return nil, se.fail(err)
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
	se.s.closeImage(ctx, img, name)
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
	if err := csiceph.Required("volume_id", req.GetVolumeId()); err != nil {
		return nil, err
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
	s.closeImage(ctx, img, id.Image)
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
	if err := csiceph.Required("volume_id", req.GetVolumeId()); err != nil {
		return nil, err
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
	se, done, err := s.begin(ctx, "volume-id/"+req.GetVolumeId(), id, req.GetSecrets(), false)
	if err != nil {
		return nil, err
	}
	defer done()
	img, err := rbd.Open(ctx, se.io, id.Image, nil)
	if err != nil {
		return nil, se.volumeErr(id, err)
	}
	defer s.closeImage(ctx, img, id.Image)
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
