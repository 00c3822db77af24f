package nodeserver

import (
	"context"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
)

// NodeExpandVolume makes the device as large as the image (grown by
// ControllerExpandVolume) with NBD_CMD_RECONFIGURE and grows the
// filesystem on it.
func (s *Server) NodeExpandVolume(ctx context.Context, req *csi.NodeExpandVolumeRequest) (*csi.NodeExpandVolumeResponse, error) {
	volID, path := req.GetVolumeId(), req.GetVolumePath()
	rec, err := s.stagedAt(volID, path, req.GetStagingTargetPath())
	if err != nil {
		return nil, err
	}
	release, err := s.guard(volID)
	if err != nil {
		return nil, err
	}
	defer release()
	if rec.Foreign != "" {
		return s.expandForeign(rec, path)
	}
	if err := s.ensureServed(ctx, rec); err != nil {
		return nil, err
	}
	if rec.ReadOnly {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %q is staged read-only", volID)
	}
	b := s.backend(volID)
	if b == nil {
		return nil, status.Errorf(codes.Unavailable, "volume %q: device not served by this plugin", volID)
	}
	if err := b.Image().Refresh(ctx); err != nil {
		return nil, csiceph.Status(err, "re-reading the image header of "+volID)
	}
	size := b.Size()
	if need := req.GetCapacityRange().GetRequiredBytes(); need > size {
		return nil, status.Errorf(codes.OutOfRange, "volume %q: the image has %d bytes, less than the %d required: expand it on the controller first",
			volID, size, need)
	}
	if lim := req.GetCapacityRange().GetLimitBytes(); lim > 0 && size > lim {
		return nil, status.Errorf(codes.OutOfRange, "volume %q: the image has %d bytes, more than the limit %d", volID, size, lim)
	}
	if err := s.mgr.Resize(ctx, volID, size); err != nil {
		return nil, csiceph.Status(err, fmt.Sprintf("resizing %s to %d bytes", rec.Device, size))
	}
	if !rec.Block {
		mnt := rec.StagingPath
		if m, _ := s.isMountPoint(path); m {
			mnt = path
		}
		if _, err := s.resizer.Resize(rec.Device, mnt); err != nil {
			return nil, status.Errorf(codes.Internal, "growing the %s filesystem on %s: %v", rec.FSType, rec.Device, err)
		}
	}
	return &csi.NodeExpandVolumeResponse{CapacityBytes: size}, nil
}

// backend returns the open image of a volume this process serves.
func (s *Server) backend(volID string) *rbdVolume {
	s.bmu.Lock()
	defer s.bmu.Unlock()
	return s.backends[volID]
}

// expandForeign grows the filesystem of a volume ceph-csi staged: its
// krbd device follows the image's size by itself (the kernel client
// watches the header); an rbd-nbd device needs its daemon, which went
// with ceph-csi's node plugin.
func (s *Server) expandForeign(rec *volumeRecord, path string) (*csi.NodeExpandVolumeResponse, error) {
	if rec.Foreign != mapperKRBD || rec.Device == "" {
		return nil, status.Errorf(codes.FailedPrecondition,
			"volume %q is still attached by ceph-csi's %s; unstage it (its pods stop) and stage it again to expand it", rec.VolumeID, rec.Foreign)
	}
	size, err := deviceSize(rec.Device)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "size of %s: %v", rec.Device, err)
	}
	if !rec.Block {
		mnt := rec.ForeignMount
		if m, _ := s.isMountPoint(path); m {
			mnt = path
		}
		if _, err := s.resizer.Resize(rec.Device, mnt); err != nil {
			return nil, status.Errorf(codes.Internal, "growing the filesystem on %s: %v", rec.Device, err)
		}
	}
	return &csi.NodeExpandVolumeResponse{CapacityBytes: size}, nil
}
