package nodeserver

import (
	"context"
	"fmt"
	"os"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
)

// NodeGetVolumeStats reports bytes and inodes of a published or staged
// path (bytes only for a block volume). The CSI 1.13 spec moved the
// volume condition to NodeGetVolumeHealth.
func (s *Server) NodeGetVolumeStats(ctx context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	volID, path := req.GetVolumeId(), req.GetVolumePath()
	rec, err := s.stagedAt(volID, path, req.GetStagingTargetPath())
	if err != nil {
		return nil, err
	}
	// For a block volume the kubelet asks about its own per-pod device
	// node (volumeDevices/<pv>/dev/<pod uid>), a bind of the NBD device.
	if rec.Foreign != "" && path == rec.StagingPath {
		path = rec.ForeignMount // ceph-csi mounted below the staging path
	}
	if path != rec.StagingPath && path != rec.ForeignMount && !rec.hasTarget(path) && !(rec.Block && sameDevice(path, rec.Device)) {
		return nil, status.Errorf(codes.NotFound, "volume %q is not staged or published at %s", volID, path)
	}
	st, err := os.Stat(path)
	if os.IsNotExist(err) {
		return nil, status.Errorf(codes.NotFound, "%s does not exist", path)
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "stat %s: %v", path, err)
	}
	resp := &csi.NodeGetVolumeStatsResponse{}
	if rec.Block || st.Mode()&os.ModeDevice != 0 {
		dev := path
		if st.Mode()&os.ModeDevice == 0 {
			dev = rec.Device // the staging path of a block volume
		}
		size, err := deviceSize(dev)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "size of %s: %v", dev, err)
		}
		resp.Usage = []*csi.VolumeUsage{{Unit: csi.VolumeUsage_BYTES, Total: size}}
		return resp, nil
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return nil, status.Errorf(codes.Internal, "statfs %s: %v", path, err)
	}
	bs := int64(fs.Bsize)
	resp.Usage = []*csi.VolumeUsage{
		{Unit: csi.VolumeUsage_BYTES, Total: int64(fs.Blocks) * bs, Available: int64(fs.Bavail) * bs,
			Used: int64(fs.Blocks-fs.Bfree) * bs},
		{Unit: csi.VolumeUsage_INODES, Total: int64(fs.Files), Available: int64(fs.Ffree),
			Used: int64(fs.Files - fs.Ffree)},
	}
	return resp, nil
}

// NodeGetVolumeHealth reports a staged volume INACCESSIBLE when this
// process no longer serves its device or its cluster does not answer.
func (s *Server) NodeGetVolumeHealth(ctx context.Context, req *csi.NodeGetVolumeHealthRequest) (*csi.NodeGetVolumeHealthResponse, error) {
	volID := req.GetVolumeId()
	if err := csiceph.Required("volume_id", volID); err != nil {
		return nil, err
	}
	rec, err := s.staged(volID, "")
	if err != nil {
		return nil, err
	}
	return &csi.NodeGetVolumeHealthResponse{VolumeHealth: &csi.VolumeHealth{VolumeId: volID,
		HealthStatuses: s.health(ctx, rec)}}, nil
}

// health lists what is wrong with a staged volume (nothing: empty).
func (s *Server) health(ctx context.Context, rec *volumeRecord) []*csi.VolumeHealth_VolumeHealthEntry {
	if rec.Foreign != "" {
		if _, err := os.Stat(rec.Device); rec.Device == "" || err != nil {
			return []*csi.VolumeHealth_VolumeHealthEntry{{Status: csi.VolumeHealthErrorType_INACCESSIBLE, Reason: "DeviceGone",
				Message: fmt.Sprintf("ceph-csi's %s device %q of this volume is gone", rec.Foreign, rec.Device)}}
		}
		return nil
	}
	if !s.served(rec.VolumeID) {
		return []*csi.VolumeHealth_VolumeHealthEntry{{Status: csi.VolumeHealthErrorType_INACCESSIBLE, Reason: "DeviceNotServed",
			Message: fmt.Sprintf("device %s is not served by this node plugin: its I/O stalls, then fails", rec.Device)}}
	}
	c, err := s.conns.Get(ctx, rec.ClusterID, rec.credentials())
	if err != nil || !csiceph.Ping(ctx, c) {
		return []*csi.VolumeHealth_VolumeHealthEntry{{Status: csi.VolumeHealthErrorType_INACCESSIBLE, Reason: "ClusterUnreachable",
			Message: fmt.Sprintf("the monitors of cluster %q do not answer: I/O to %s waits for them", rec.ClusterID, rec.Device)}}
	}
	return nil
}

// deviceSize is BLKGETSIZE64 of a block device node.
func deviceSize(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var size uint64
	if err := ioctlGetUint64(int(f.Fd()), unix.BLKGETSIZE64, &size); err != nil {
		return 0, err
	}
	return int64(size), nil
}

// sameDevice reports whether path is a block device node of the same
// device as dev.
func sameDevice(path, dev string) bool {
	var a, b unix.Stat_t
	if dev == "" || unix.Stat(path, &a) != nil || unix.Stat(dev, &b) != nil {
		return false
	}
	return a.Mode&unix.S_IFMT == unix.S_IFBLK && b.Mode&unix.S_IFMT == unix.S_IFBLK && a.Rdev == b.Rdev
}
