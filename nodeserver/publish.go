package nodeserver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
)

// NodePublishVolume bind-mounts the staged filesystem (or the device, onto
// a file) on the target path.
func (s *Server) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	volID, target, staging := req.GetVolumeId(), req.GetTargetPath(), req.GetStagingTargetPath()
	if err := csiceph.Required("volume_id", volID, "target_path", target); err != nil {
		return nil, err
	}
	vc := req.GetVolumeCapability()
	if _, err := checkCapability(vc, req.GetVolumeContext()); err != nil {
		return nil, err
	}
	if staging == "" {
		return nil, status.Error(codes.InvalidArgument, "staging_target_path is required (the plugin stages volumes)")
	}
	release, err := s.guard(volID)
	if err != nil {
		return nil, err
	}
	defer release()
	rec, err := s.staged(volID, staging)
	if status.Code(err) == codes.NotFound {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %q is not staged on this node: call NodeStageVolume first", volID)
	}
	if err != nil {
		return nil, err
	}
	if rec.StagingPath != staging {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %q is staged at %s, not %s", volID, rec.StagingPath, staging)
	}
	block := vc.GetBlock() != nil
	if block != rec.Block {
		return nil, status.Errorf(codes.InvalidArgument, "volume %q was staged as %s; publishing it as %s is not possible",
			volID, accessType(rec.Block), accessType(block))
	}
	mounted, err := s.isMountPoint(target)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "checking %s: %v", target, err)
	}
	if rec.hasTarget(target) && mounted {
		return &csi.NodePublishVolumeResponse{}, nil
	}
	if mounted {
		return nil, status.Errorf(codes.AlreadyExists, "%s is already a mount point of something else", target)
	}
	if vc.GetAccessMode().GetMode() == csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER {
		for _, t := range rec.Targets {
			if t != target {
				return nil, status.Errorf(codes.FailedPrecondition,
					"volume %q has access mode SINGLE_NODE_SINGLE_WRITER and is already published at %s", volID, t)
			}
		}
	}
	if err := s.ensureServed(ctx, rec); err != nil {
		return nil, err
	}

	opts := []string{"bind"}
	if req.GetReadonly() || rec.ReadOnly {
		opts = append(opts, "ro")
	}
	source := rec.mountSource()
	if block {
		if err := makeFile(target); err != nil {
			return nil, status.Errorf(codes.Internal, "creating the target file %s: %v", target, err)
		}
	} else {
		opts = append(opts, vc.GetMount().GetMountFlags()...)
		if err := os.MkdirAll(target, 0o750); err != nil {
			return nil, status.Errorf(codes.Internal, "creating the target directory %s: %v", target, err)
		}
	}
	// Recorded before the mount: a crash in between leaves a record that
	// NodeUnpublishVolume cleans up, never an unrecorded mount.
	if !rec.hasTarget(target) {
		rec.Targets = append(rec.Targets, target)
		if err := s.vols.save(rec); err != nil {
			return nil, status.Errorf(codes.Internal, "saving the state of volume %q: %v", volID, err)
		}
	}
	if err := s.mountIface().Mount(source, target, "", opts); err != nil {
		return nil, csiceph.Status(err, fmt.Sprintf("bind-mounting %s on %s", source, target))
	}
	return &csi.NodePublishVolumeResponse{}, nil
}

func accessType(block bool) string {
	if block {
		return "block"
	}
	return "mount"
}

func makeFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o640)
	if err != nil {
		return err
	}
	return f.Close()
}

// NodeUnpublishVolume unmounts the target path and removes it.
func (s *Server) NodeUnpublishVolume(ctx context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	volID, target := req.GetVolumeId(), req.GetTargetPath()
	if err := csiceph.Required("volume_id", volID, "target_path", target); err != nil {
		return nil, err
	}
	release, err := s.guard(volID)
	if err != nil {
		return nil, err
	}
	defer release()
	if err := s.unmountAll(target); err != nil {
		return nil, status.Errorf(codes.Internal, "unmounting %s: %v", target, err)
	}
	if err := os.Remove(target); err != nil && !os.IsNotExist(err) {
		return nil, status.Errorf(codes.Internal, "removing %s: %v", target, err)
	}
	rec, err := s.vols.load(volID)
	if err == nil && rec.hasTarget(target) {
		rec.dropTarget(target)
		if err := s.vols.save(rec); err != nil {
			return nil, status.Errorf(codes.Internal, "saving the state of volume %q: %v", volID, err)
		}
	}
	return &csi.NodeUnpublishVolumeResponse{}, nil
}
