package nodeserver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/mount-utils"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/nbd/attach"
)

// defaultMkfsOptions are used when the volume context has no mkfsOptions
// (ceph-csi's defaults: no discard pass over a fresh image, lazy inode
// table and journal initialisation).
var defaultMkfsOptions = map[string][]string{
	"ext4": {"-m0", "-Enodiscard,lazy_itable_init=1,lazy_journal_init=1"},
	"xfs":  {"-K"},
}

// checkCapability validates one capability and returns the filesystem
// type (empty for block).
func checkCapability(vc *csi.VolumeCapability, volCtx map[string]string) (string, error) {
	if vc == nil {
		return "", status.Error(codes.InvalidArgument, "volume_capability is required")
	}
	if err := csiceph.CheckCapabilities([]*csi.VolumeCapability{vc}); err != nil {
		return "", status.Error(codes.InvalidArgument, err.Error())
	}
	if vc.GetBlock() != nil {
		return "", nil
	}
	fsType := vc.GetMount().GetFsType()
	if fsType == "" {
		fsType = volCtx[csiceph.ParamFSType]
	}
	if fsType == "" {
		fsType = "ext4"
	}
	if _, ok := defaultMkfsOptions[fsType]; !ok {
		return "", status.Errorf(codes.InvalidArgument, "filesystem type %q is not supported (ext4 or xfs)", fsType)
	}
	return fsType, nil
}

// checkContext reads the encryption a volume context asks for (nil: a
// plain volume; see encryption.go) and refuses what the node cannot do:
// encryptionType file (ceph-csi's fscrypt), mkfsOptions off the
// allowlist. The rest of ceph-csi's keys (mounter, mapOptions, ...)
// choose how its node maps volumes and mean nothing here.
func checkContext(vctx map[string]string, fsType string) (*csiceph.Encryption, error) {
	enc, err := csiceph.ParseEncryption(vctx)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "volume context: %v", err)
	}
	if o := vctx[csiceph.ParamMkfsOptions]; o != "" && fsType != "" {
		if _, err := csiceph.CheckMkfsOptions(fsType, o); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
	}
	return enc, nil
}

// mountOptions are the options for mounting the staged filesystem.
func mountOptions(vc *csi.VolumeCapability, fsType string, ro bool) []string {
	opts := append([]string(nil), vc.GetMount().GetMountFlags()...)
	if ro {
		opts = append(opts, "ro")
		// A read-only device cannot replay a journal.
		if fsType == "ext4" {
			opts = append(opts, "noload")
		} else if fsType == "xfs" {
			opts = append(opts, "norecovery")
		}
	}
	if fsType == "xfs" {
		// Clones and snapshots restore the same xfs UUID.
		opts = append(opts, "nouuid")
	}
	return opts
}

// NodeStageVolume attaches the image and mounts its filesystem on the
// staging path (block volumes: attach only).
func (s *Server) NodeStageVolume(ctx context.Context, req *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	volID, staging := req.GetVolumeId(), req.GetStagingTargetPath()
	if err := csiceph.Required("volume_id", volID, "staging_target_path", staging); err != nil {
		return nil, err
	}
	vc := req.GetVolumeCapability()
	fsType, err := checkCapability(vc, req.GetVolumeContext())
	if err != nil {
		return nil, err
	}
	id, err := csiceph.ParseVolumeID(volID)
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "volume %q is not a volume of this driver: %v", volID, err)
	}
	enc, err := checkContext(req.GetVolumeContext(), fsType)
	if err != nil {
		return nil, err
	}
	release, err := s.guard(volID)
	if err != nil {
		return nil, err
	}
	defer release()

	block := vc.GetBlock() != nil
	ro := csiceph.ReadOnlyMode(vc.GetAccessMode().GetMode())
	rec, err := s.loadOrAdopt(volID, staging)
	if err == nil && rec.Foreign != "" {
		return s.stageForeign(rec, block)
	}
	if err == nil && rec.Device == "" {
		// A crash between recording the volume and attaching it: start
		// over.
		if err := s.vols.remove(volID); err != nil {
			return nil, status.Errorf(codes.Internal, "removing the stale state of volume %q: %v", volID, err)
		}
		rec, err = nil, fmt.Errorf("%w: %s", csiceph.ErrNotStaged, volID)
	}
	fresh := false
	switch {
	case err == nil:
		if rec.StagingPath != staging {
			return nil, status.Errorf(codes.FailedPrecondition, "volume %q is already staged at %s", volID, rec.StagingPath)
		}
		if rec.Block != block || rec.ReadOnly != ro {
			return nil, status.Errorf(codes.AlreadyExists, "volume %q is already staged with another access type or mode", volID)
		}
		if err := s.ensureServed(ctx, rec); err != nil {
			return nil, err
		}
		if err := s.rotateCredentials(ctx, rec, req.GetSecrets()); err != nil {
			return nil, err
		}
	case errors.Is(err, csiceph.ErrNotStaged):
		if rec, err = s.attachNew(ctx, id, volID, req, block, ro, fsType, enc); err != nil {
			return nil, err
		}
		fresh = true
	default:
		return nil, status.Errorf(codes.Internal, "reading the state of volume %q: %v", volID, err)
	}
	if block {
		return &csi.NodeStageVolumeResponse{}, nil
	}

	if err := os.MkdirAll(staging, 0o750); err != nil {
		return nil, s.undoStage(ctx, fresh, volID, status.Errorf(codes.Internal, "creating the staging path: %v", err))
	}
	mounted, err := s.isMountPoint(staging)
	if err != nil {
		return nil, s.undoStage(ctx, fresh, volID, status.Errorf(codes.Internal, "checking the staging path: %v", err))
	}
	if !mounted {
		mkfs := defaultMkfsOptions[fsType]
		if o := req.GetVolumeContext()[csiceph.ParamMkfsOptions]; o != "" {
			if mkfs, err = csiceph.CheckMkfsOptions(fsType, o); err != nil {
				return nil, s.undoStage(ctx, fresh, volID, status.Error(codes.InvalidArgument, err.Error()))
			}
		}
		err = s.formatter().FormatAndMountSensitiveWithFormatOptions(rec.Device, staging, fsType, mountOptions(vc, fsType, ro), nil, mkfs)
		if err != nil {
			return nil, s.undoStage(ctx, fresh, volID, csiceph.Status(err, fmt.Sprintf("formatting or mounting %s (%s) on %s", rec.Device, volID, staging)))
		}
	}
	// A volume restored from a snapshot or cloned at a larger size than
	// its source carries the source's smaller filesystem: grow it to the
	// device (also on a retry, when the staging path is already mounted).
	if !ro {
		if grow, err := s.resizer.NeedResize(rec.Device, staging); err != nil {
			return nil, status.Errorf(codes.Internal, "checking the %s filesystem size on %s: %v", fsType, rec.Device, err)
		} else if grow {
			if _, err := s.resizer.Resize(rec.Device, staging); err != nil {
				return nil, status.Errorf(codes.Internal, "growing the %s filesystem on %s to the volume's size: %v", fsType, rec.Device, err)
			}
		}
	}
	return &csi.NodeStageVolumeResponse{}, nil
}

// attachNew records the volume (with its secrets) and attaches it.
func (s *Server) attachNew(ctx context.Context, id csiceph.VolumeID, volID string, req *csi.NodeStageVolumeRequest,
	block, ro bool, fsType string, enc *csiceph.Encryption) (*volumeRecord, error) {
	cr, err := csiceph.CredentialsFrom(req.GetSecrets())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "node-stage secrets: %v", err)
	}
	if _, err := s.o.Clusters.Lookup(id.ClusterID); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "volume %q: %v (this node plugin's)", volID, err)
	}
	loc, err := s.conns.ResolveVolume(ctx, id, cr, s.o.Mapping)
	if err != nil {
		return nil, csiceph.Status(err, "finding the image of volume "+volID)
	}
	rec := &volumeRecord{
		VolumeID: volID, ClusterID: loc.ClusterID, PoolID: loc.PoolID, Namespace: loc.Namespace, Image: loc.Image,
		UserID: cr.User, UserKey: cr.Key,
		StagingPath: req.GetStagingTargetPath(), Block: block, FSType: fsType,
		AccessMode: int32(req.GetVolumeCapability().GetAccessMode().GetMode()), ReadOnly: ro,
		PVName: req.GetVolumeContext()[ContextPVName],
	}
	if enc != nil {
		if err := s.unlock(ctx, rec, enc, loc.Owner, req.GetSecrets()); err != nil {
			return nil, err
		}
	}
	if err := s.vols.save(rec); err != nil {
		return nil, status.Errorf(codes.Internal, "saving the state of volume %q: %v", volID, err)
	}
	// A device left connected by an earlier attempt of this volume (the
	// volume record was lost) would make Attach fail: let it go first.
	if err := s.mgr.Detach(ctx, volID); err != nil && !errors.Is(err, attach.ErrNoRecord) {
		_ = s.vols.remove(volID)
		return nil, csiceph.Status(err, "detaching a stale device of volume "+volID)
	}
	r, err := s.mgr.Attach(ctx, attach.Spec{
		ID: volID, Image: volID, ReadOnly: ro,
		Connections: s.o.Connections, DeadConnTimeout: s.o.DeadConnTimeout,
	})
	if err != nil {
		_ = s.vols.remove(volID)
		return nil, csiceph.Status(err, fmt.Sprintf("attaching image %s (pool id %d, namespace %q) of volume %q", loc.Image, loc.PoolID, loc.Namespace, volID))
	}
	rec.Device = r.Device()
	if err := s.vols.save(rec); err != nil {
		return nil, s.undoStage(ctx, true, volID, status.Errorf(codes.Internal, "saving the state of volume %q: %v", volID, err))
	}
	return rec, nil
}

// stageForeign answers NodeStageVolume for a volume ceph-csi's node
// plugin staged (adopted): it stays on its kernel device and mount until
// it is unstaged; its access type cannot change meanwhile.
func (s *Server) stageForeign(rec *volumeRecord, block bool) (*csi.NodeStageVolumeResponse, error) {
	if rec.Block != block {
		return nil, status.Errorf(codes.AlreadyExists, "volume %q is staged by ceph-csi's node plugin as %s", rec.VolumeID, accessType(rec.Block))
	}
	if !block {
		if m, err := s.isMountPoint(rec.ForeignMount); err != nil || !m {
			return nil, status.Errorf(codes.FailedPrecondition,
				"volume %q: ceph-csi's staging left %s but nothing is mounted at %s (%v): unstage it and stage again",
				rec.VolumeID, cephCSIStashFile, rec.ForeignMount, err)
		}
	}
	return &csi.NodeStageVolumeResponse{}, nil
}

// rotateCredentials rewrites the record of a staged volume whose
// node-stage secrets changed (a rotated key): the record is what a
// restarted plugin reopens the image with, long after the old key may
// have been revoked. The new credentials must connect first; a request
// without secrets changes nothing.
func (s *Server) rotateCredentials(ctx context.Context, rec *volumeRecord, secrets map[string]string) error {
	cr, err := csiceph.CredentialsFrom(secrets)
	if err != nil || (cr.User == rec.UserID && cr.Key == rec.UserKey) {
		return nil
	}
	if _, err := s.conns.Get(ctx, rec.ClusterID, cr); err != nil {
		return csiceph.Status(err, fmt.Sprintf("volume %q is staged, but its new node-stage secrets (user %q) do not connect", rec.VolumeID, cr.User))
	}
	rec.UserID, rec.UserKey = cr.User, cr.Key
	if err := s.vols.save(rec); err != nil {
		return status.Errorf(codes.Internal, "saving the rotated credentials of volume %q: %v", rec.VolumeID, err)
	}
	return nil
}

// ensureServed makes sure the device of a staged volume is served by this
// process, recovering it when it is not (a failed recovery at start).
func (s *Server) ensureServed(ctx context.Context, rec *volumeRecord) error {
	if rec.Foreign != "" || s.served(rec.VolumeID) {
		return nil
	}
	_, err := s.mgr.Recover(ctx)
	if s.served(rec.VolumeID) {
		return nil
	}
	if err == nil {
		err = errors.New("no device record")
	}
	return status.Errorf(codes.Unavailable, "volume %q is staged but its device %s is not served by this plugin and could not be recovered: %v",
		rec.VolumeID, rec.Device, err)
}

// served reports whether this process serves the volume's device.
func (s *Server) served(volID string) bool {
	done := s.mgr.Done(volID)
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// undoStage detaches a volume this call attached, when a later step
// failed, so that a retry starts clean; it returns err.
func (s *Server) undoStage(ctx context.Context, fresh bool, volID string, err error) error {
	if !fresh {
		return err
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if derr := s.mgr.Detach(dctx, volID); derr != nil && !errors.Is(derr, attach.ErrNoRecord) {
		return err // keep the record: NodeUnstageVolume can still clean up
	}
	_ = s.vols.remove(volID)
	return err
}

// NodeUnstageVolume unmounts the staging path, disconnects the device and
// forgets the volume.
func (s *Server) NodeUnstageVolume(ctx context.Context, req *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	volID, staging := req.GetVolumeId(), req.GetStagingTargetPath()
	if err := csiceph.Required("volume_id", volID, "staging_target_path", staging); err != nil {
		return nil, err
	}
	release, err := s.guard(volID)
	if err != nil {
		return nil, err
	}
	defer release()
	rec, err := s.loadOrAdopt(volID, staging)
	if err != nil && !errors.Is(err, csiceph.ErrNotStaged) {
		return nil, csiceph.Status(err, "reading the state of volume "+volID)
	}
	if rec != nil {
		for _, t := range rec.Targets {
			if m, _ := s.isMountPoint(t); m {
				return nil, status.Errorf(codes.FailedPrecondition, "volume %q is still published at %s", volID, t)
			}
		}
	}
	if rec != nil && rec.Foreign != "" {
		if err := s.unstageForeign(ctx, rec); err != nil {
			return nil, err
		}
		if err := s.vols.remove(volID); err != nil {
			return nil, status.Errorf(codes.Internal, "removing the state of volume %q: %v", volID, err)
		}
		return &csi.NodeUnstageVolumeResponse{}, nil
	}
	if rec == nil || !rec.Block {
		if err := s.unmountAll(staging); err != nil {
			return nil, status.Errorf(codes.Internal, "unmounting %s: %v", staging, err)
		}
	}
	if err := s.mgr.Detach(ctx, volID); err != nil && !errors.Is(err, attach.ErrNoRecord) {
		return nil, csiceph.Status(err, "detaching volume "+volID)
	}
	if rec != nil {
		_ = s.forgetStage(ctx, rec) // best effort (fence.go)
	}
	if err := s.vols.remove(volID); err != nil {
		return nil, status.Errorf(codes.Internal, "removing the state of volume %q: %v", volID, err)
	}
	return &csi.NodeUnstageVolumeResponse{}, nil
}

// isMountPoint reports whether path is a mount point (bind mounts
// included); a missing path is not one.
func (s *Server) isMountPoint(path string) (bool, error) {
	m, err := s.mountIface().IsMountPoint(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil && mount.IsCorruptedMnt(err) {
		return true, nil
	}
	return m, err
}

// unmountAll unmounts path until it is no longer a mount point.
func (s *Server) unmountAll(path string) error {
	for range 8 {
		m, err := s.isMountPoint(path)
		if err != nil || !m {
			return err
		}
		if err := s.mountIface().Unmount(path); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s is still a mount point", path)
}
