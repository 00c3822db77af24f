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

// QoS on the controller side: the QoS parameters of a StorageClass and of
// a VolumeAttributesClass (CreateVolume's and ControllerModifyVolume's
// mutable parameters) become image metadata, as ceph-csi writes it (see
// csiceph/qos.go): librbd's config overrides, which every client of the
// image applies (librbd, rbd-nbd, and this driver's node, which follows
// them live through the header watch), and the scaling policy an
// expansion re-applies.

// ControllerModifyVolume applies a VolumeAttributesClass's parameters to
// the volume: only QoS parameters are mutable; any other key is refused
// with InvalidArgument naming it. Applying the same parameters again
// changes nothing; none is nothing to do.
func (s *Server) ControllerModifyVolume(ctx context.Context, req *csi.ControllerModifyVolumeRequest) (*csi.ControllerModifyVolumeResponse, error) {
	if err := csiceph.Required("volume_id", req.GetVolumeId()); err != nil {
		return nil, err
	}
	q, err := csiceph.ParseMutableParams(req.GetMutableParameters())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	se, v, done, err := s.beginVolume(ctx, req.GetVolumeId(), req.GetSecrets())
	if err != nil {
		return nil, err
	}
	defer done()
	img, err := rbd.Open(ctx, v.io, v.image, &rbd.OpenOptions{NoWatch: true})
	if err != nil {
		return nil, se.volumeErr(v, err)
	}
	defer s.closeImage(ctx, img, v.image)
	if err := applyQoS(ctx, img, q); err != nil {
		return nil, se.fail(fmt.Errorf("applying QoS parameters to image %s: %w", v.image, err))
	}
	return &csi.ControllerModifyVolumeResponse{}, nil
}

// applyQoS writes what q asks for to the image's metadata (only what
// differs), each change notifying the image's watchers.
func applyQoS(ctx context.Context, img *rbd.Image, q csiceph.QoSRequest) error {
	if q.Empty() {
		return nil
	}
	md, err := metadataStrings(ctx, img)
	if err != nil {
		return err
	}
	return writeChanges(ctx, img, q.Changes(md, img.Size()))
}

// rescaleQoS re-applies the image's QoS scaling policy to its size (after
// an expansion).
func rescaleQoS(ctx context.Context, img *rbd.Image) error {
	md, err := metadataStrings(ctx, img)
	if err != nil {
		return err
	}
	return writeChanges(ctx, img, csiceph.RescaleQoS(md, img.Size()))
}

func metadataStrings(ctx context.Context, img *rbd.Image) (map[string]string, error) {
	raw, err := img.Metadata(ctx)
	if err != nil {
		return nil, err
	}
	md := make(map[string]string, len(raw))
	for k, v := range raw {
		md[k] = string(v)
	}
	return md, nil
}

func writeChanges(ctx context.Context, img *rbd.Image, c csiceph.QoSChanges) error {
	for k, v := range c.Set {
		if err := img.SetMetadata(ctx, k, []byte(v)); err != nil {
			return err
		}
	}
	for _, k := range c.Remove {
		if err := img.RemoveMetadata(ctx, k); err != nil && !notFound(err) {
			return err
		}
	}
	return nil
}

// parseCreateQoS checks CreateVolume's QoS parameters: the StorageClass's
// (params) and the VolumeAttributesClass's (mutable), which win.
func parseCreateQoS(params, mutable map[string]string) (csiceph.QoSRequest, error) {
	sc, err := csiceph.ParseQoSParams(params)
	if err != nil {
		return sc, status.Error(codes.InvalidArgument, err.Error())
	}
	vac, err := csiceph.ParseMutableParams(mutable)
	if err != nil {
		return sc, status.Error(codes.InvalidArgument, err.Error())
	}
	return sc.Merge(vac), nil
}
