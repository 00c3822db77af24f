package controllerserver

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// cloneSnapPrefix names the temporary snapshot a volume clone hangs from.
const cloneSnapPrefix = "csi-clone-"

// Options configure a Server.
type Options struct {
	Clusters map[string]ClusterInfo
	// Instance separates the journals of drivers sharing a pool
	// (ceph-csi's instance id); "" is "default".
	Instance string
	// ConnectTimeout bounds dialling a cluster (0: 30s).
	ConnectTimeout time.Duration
	// MaxCloneDepth: a new clone whose parent chain is deeper than this is
	// flattened in the background (0: DefaultMaxCloneDepth). The
	// StorageClass parameter maxCloneDepth overrides it per volume.
	MaxCloneDepth int
}

// DefaultMaxCloneDepth is the clone chain depth past which new clones are
// flattened in the background.
const DefaultMaxCloneDepth = 8

// Server is the CSI Controller service.
type Server struct {
	csi.UnimplementedControllerServer

	instance string
	conns    *connPool
	inflight sync.Map // name or id → struct{}
	maxDepth int

	lockMu sync.Mutex
	locks  map[string]chan struct{} // image → held lock (see lockImage)

	bg       sync.WaitGroup // background flattens
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bgMu     sync.Mutex
	bgErrs   []error
}

// New returns a Controller service.
func New(o Options) *Server {
	if o.Instance == "" {
		o.Instance = "default"
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 30 * time.Second
	}
	if o.MaxCloneDepth == 0 {
		o.MaxCloneDepth = DefaultMaxCloneDepth
	}
	s := &Server{instance: o.Instance, conns: &connPool{clusters: o.Clusters, timeout: o.ConnectTimeout},
		maxDepth: o.MaxCloneDepth, locks: map[string]chan struct{}{}}
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	return s
}

// lockImage serialises the operations that change an image's snapshot
// set or existence (DeleteVolume, CreateSnapshot, cloning from it): they
// wait for each other rather than fail, until ctx ends. The caller must
// call the returned unlock.
func (s *Server) lockImage(ctx context.Context, cluster string, pool int64, image string) (func(), error) {
	key := fmt.Sprintf("%s/%d/%s", cluster, pool, image)
	for {
		s.lockMu.Lock()
		held, busy := s.locks[key]
		if !busy {
			ch := make(chan struct{})
			s.locks[key] = ch
			s.lockMu.Unlock()
			return func() {
				s.lockMu.Lock()
				delete(s.locks, key)
				s.lockMu.Unlock()
				close(ch)
			}, nil
		}
		s.lockMu.Unlock()
		select {
		case <-held:
		case <-ctx.Done():
			return nil, status.Errorf(codes.Aborted, "waiting for another operation on image %s: %v", image, ctx.Err())
		}
	}
}

// Ready reports whether the controller can reach Ceph: every cached
// connection must answer a monitor command ("version") within 5 seconds
// (only connection-level failures count: a refusal still proves the
// cluster is up), and every configured cluster that has no connection yet
// (they are dialled lazily, with the secrets requests carry) must have a
// monitor that accepts a TCP connection.
func (s *Server) Ready(ctx context.Context) bool {
	sessions := s.SessionHealth(ctx)
	dialled := map[string]bool{}
	for _, h := range sessions {
		if !h.Up {
			return false
		}
		dialled[h.Cluster] = true
	}
	for id, ci := range s.conns.clusters {
		if !dialled[id] && !reachable(ctx, ci) {
			return false
		}
	}
	return true
}

// Session is the health of one cached cluster connection.
type Session struct {
	Cluster, User string
	Up            bool
}

// SessionHealth checks every cached cluster connection as Ready does
// (concurrently) and reports each one.
func (s *Server) SessionHealth(ctx context.Context) []Session {
	all := s.conns.all()
	out := make([]Session, len(all))
	var wg sync.WaitGroup
	for i, c := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, _, err := c.conn.MonCommand(cctx, `{"prefix": "version"}`, nil)
			cancel()
			up := true
			switch Code(err) {
			case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
				up = false
			}
			out[i] = Session{Cluster: c.cluster, User: c.user, Up: up}
		}()
	}
	wg.Wait()
	return out
}

// Close stops background work and drops every cached cluster connection.
func (s *Server) Close() {
	s.bgCancel()
	s.bg.Wait()
	s.conns.closeAll()
}

// guard takes the in-flight lock on key; the caller must call the
// returned release. A duplicate in flight gets Aborted.
func (s *Server) guard(key string) (func(), error) {
	if _, busy := s.inflight.LoadOrStore(key, struct{}{}); busy {
		return nil, status.Errorf(codes.Aborted, "an operation on %q is already in progress", key)
	}
	return func() { s.inflight.Delete(key) }, nil
}

// session is one request's view of a pool.
type session struct {
	s       *Server
	cluster string
	cred    Credentials
	io      *rados.IOContext
}

func (s *Server) open(ctx context.Context, cluster string, secrets map[string]string, pool string, poolID int64) (*session, error) {
	cr, err := CredentialsFrom(secrets)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	c, err := s.conns.get(ctx, cluster, cr)
	if err != nil {
		switch Code(err) {
		case codes.PermissionDenied:
			err = fmt.Errorf("cluster %q refused Ceph user %q: check userID and userKey in the secret: %w", cluster, cr.User, err)
		case codes.Unavailable, codes.DeadlineExceeded:
			err = fmt.Errorf("cannot reach the monitors of cluster %q %v (clusters file): %w", cluster, s.conns.clusters[cluster].Monitors, err)
		}
		return nil, s.fail(cluster, cr, err)
	}
	var io *rados.IOContext
	if pool != "" {
		io, err = c.OpenIOContext(ctx, pool)
	} else {
		io, err = c.OpenIOContextByID(ctx, poolID)
	}
	if err != nil {
		if Code(err) == codes.NotFound {
			if pool != "" {
				err = fmt.Errorf("pool %q (StorageClass parameter pool) does not exist on cluster %q: %w", pool, cluster, err)
			} else {
				err = fmt.Errorf("pool id %d does not exist on cluster %q any more: %w", poolID, cluster, err)
			}
		}
		return nil, s.fail(cluster, cr, err)
	}
	return &session{s: s, cluster: cluster, cred: cr, io: io}, nil
}

// volumeErr says which volume a failure is about; a missing image gets
// NotFound with the image and pool named.
func (se *session) volumeErr(id VolumeID, err error) error {
	if notFound(err) {
		return status.Errorf(codes.NotFound, "volume %s: image %q does not exist in pool %s of cluster %q",
			id, id.Image, se.io.PoolName(), id.ClusterID)
	}
	return se.fail(err)
}

func (s *Server) fail(cluster string, cr Credentials, err error) error {
	s.conns.failed(cluster, cr, err)
	return toStatus(err)
}

func (se *session) fail(err error) error { return se.s.fail(se.cluster, se.cred, err) }

func (se *session) volJournal() journal {
	return journal{io: se.io, oid: VolumeJournalObject(se.s.instance)}
}

func (se *session) snapJournal() journal {
	return journal{io: se.io, oid: SnapshotJournalObject(se.s.instance)}
}

func (se *session) volumeID(image string) string {
	return VolumeID{ClusterID: se.cluster, PoolID: se.io.PoolID(), Image: image}.String()
}

// CreateVolume makes (or finds, for a repeated name) an RBD image.
func (s *Server) CreateVolume(ctx context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	name := req.GetName()
	if name == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required")
	}
	if err := CheckCapabilities(req.GetVolumeCapabilities()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	params, err := ParseVolumeParams(req.GetParameters())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	size, err := RoundCapacity(req.GetCapacityRange())
	if err != nil {
		return nil, status.Error(codes.OutOfRange, err.Error())
	}
	var source string
	var srcSnap *SnapshotID
	var srcVol *VolumeID
	if cs := req.GetVolumeContentSource(); cs != nil {
		switch {
		case cs.GetSnapshot() != nil:
			id, err := ParseSnapshotID(cs.GetSnapshot().GetSnapshotId())
			if err != nil {
				return nil, status.Errorf(codes.NotFound, "source snapshot: %v", err)
			}
			srcSnap, source = &id, id.String()
		case cs.GetVolume() != nil:
			id, err := ParseVolumeID(cs.GetVolume().GetVolumeId())
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
func (se *session) makeImage(ctx context.Context, p VolumeParams, rec volumeRecord, srcSnap *SnapshotID, srcVol *VolumeID) error {
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
func (se *session) cloneFrom(ctx context.Context, src VolumeID, snap string, rec volumeRecord, opts *rbd.CreateOptions, makeSnap bool) error {
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
	id, err := ParseVolumeID(req.GetVolumeId())
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
	id, err := ParseVolumeID(req.GetVolumeId())
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
	if err := CheckCapabilities(req.GetVolumeCapabilities()); err != nil {
		return &csi.ValidateVolumeCapabilitiesResponse{Message: err.Error()}, nil
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext:      req.GetVolumeContext(),
		VolumeCapabilities: req.GetVolumeCapabilities(),
		Parameters:         req.GetParameters(),
	}}, nil
}

// ControllerGetCapabilities lists what this controller does.
func (s *Server) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	var caps []*csi.ControllerServiceCapability
	for _, c := range []csi.ControllerServiceCapability_RPC_Type{
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT,
		csi.ControllerServiceCapability_RPC_LIST_SNAPSHOTS,
		csi.ControllerServiceCapability_RPC_CLONE_VOLUME,
		csi.ControllerServiceCapability_RPC_EXPAND_VOLUME,
	} {
		caps = append(caps, &csi.ControllerServiceCapability{Type: &csi.ControllerServiceCapability_Rpc{
			Rpc: &csi.ControllerServiceCapability_RPC{Type: c}}})
	}
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: caps}, nil
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
	id, err := ParseVolumeID(req.GetVolumeId())
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

// CreateSnapshot takes a native RBD snapshot of the source image.
func (s *Server) CreateSnapshot(ctx context.Context, req *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	name := req.GetName()
	if name == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required")
	}
	if req.GetSourceVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "source_volume_id is required")
	}
	src, err := ParseVolumeID(req.GetSourceVolumeId())
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "source volume: %v", err)
	}
	prefix := req.GetParameters()["snapshotNamePrefix"]
	if prefix == "" {
		prefix = "csi-snap-"
	}
	release, err := s.guard("snapshot-name/" + name)
	if err != nil {
		return nil, err
	}
	defer release()
	se, err := s.open(ctx, src.ClusterID, req.GetSecrets(), "", src.PoolID)
	if err != nil {
		return nil, err
	}
	unlock, err := s.lockImage(ctx, src.ClusterID, src.PoolID, src.Image)
	if err != nil {
		return nil, err
	}
	defer unlock()
	j := se.snapJournal()
	var rec snapRecord
	found, err := j.get(ctx, snapKeyPrefix+name, &rec)
	if err != nil {
		return nil, se.fail(err)
	}
	if found && rec.Source != src.String() {
		return nil, status.Errorf(codes.AlreadyExists, "snapshot %q exists for another volume", name)
	}
	img, err := rbd.Open(ctx, se.io, src.Image, nil)
	if err != nil {
		return nil, se.volumeErr(src, err)
	}
	defer img.Close(ctx)
	if !found {
		rec = snapRecord{Source: src.String(), Snap: newName(prefix), Size: img.Size(), Created: time.Now().UnixNano()}
		if err := j.put(ctx, map[string]any{snapKeyPrefix + name: rec, snapIDKeyPrefix + src.Image + "@" + rec.Snap: name}); err != nil {
			return nil, se.fail(err)
		}
	}
	have := false
	for _, si := range img.Stat().Snapshots {
		if si.Name == rec.Snap {
			have = true
		}
	}
	if !have {
		if _, err := img.CreateSnapshot(ctx, rec.Snap); err != nil {
			if !found {
				_ = j.remove(ctx, snapKeyPrefix+name, snapIDKeyPrefix+src.Image+"@"+rec.Snap)
			}
			return nil, se.fail(err)
		}
	}
	return &csi.CreateSnapshotResponse{Snapshot: rec.csi(src)}, nil
}

func (r snapRecord) csi(src VolumeID) *csi.Snapshot {
	return &csi.Snapshot{
		SnapshotId:     SnapshotID{VolumeID: src, Snap: r.Snap}.String(),
		SourceVolumeId: r.Source,
		SizeBytes:      int64(r.Size),
		CreationTime:   timestamppb.New(time.Unix(0, r.Created)),
		ReadyToUse:     true,
	}
}

// DeleteSnapshot removes the RBD snapshot; unknown ids are success.
func (s *Server) DeleteSnapshot(ctx context.Context, req *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	if req.GetSnapshotId() == "" {
		return nil, status.Error(codes.InvalidArgument, "snapshot_id is required")
	}
	id, err := ParseSnapshotID(req.GetSnapshotId())
	if err != nil {
		return &csi.DeleteSnapshotResponse{}, nil
	}
	release, err := s.guard("snapshot-id/" + req.GetSnapshotId())
	if err != nil {
		return nil, err
	}
	defer release()
	se, err := s.open(ctx, id.ClusterID, req.GetSecrets(), "", id.PoolID)
	if err != nil {
		if status.Code(err) == codes.NotFound {
			return &csi.DeleteSnapshotResponse{}, nil
		}
		return nil, err
	}
	unlock, err := s.lockImage(ctx, id.ClusterID, id.PoolID, id.Image)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := se.deleteSnapshot(ctx, id.Image, id.Snap); err != nil {
		return nil, se.fail(err)
	}
	j := se.snapJournal()
	key := snapIDKeyPrefix + id.Image + "@" + id.Snap
	var name string
	if found, err := j.get(ctx, key, &name); err != nil {
		return nil, se.fail(err)
	} else if found {
		if err := j.remove(ctx, key, snapKeyPrefix+name); err != nil {
			return nil, se.fail(err)
		}
	}
	return &csi.DeleteSnapshotResponse{}, nil
}

// deleteSnapshot removes snapshot snap of the image called image (which
// may wait in the trash). A snapshot with clone children moves to the
// trash snapshot namespace until its last child goes; a trashed image
// left without snapshots is purged.
func (se *session) deleteSnapshot(ctx context.Context, image, snap string) error {
	img, _, err := openImage(ctx, se.io, image, nil)
	if err != nil {
		if notFound(err) {
			return nil
		}
		return err
	}
	if err = img.RemoveSnapshot(ctx, snap); notFound(err) {
		err = nil
	}
	if err != nil {
		_ = img.Close(ctx)
		return err
	}
	next, name, err := se.purgeIfEmpty(ctx, se.io, img)
	if err != nil || next == nil {
		return err
	}
	return se.collect(ctx, *next, name)
}

// ListSnapshots lists journalled snapshots. With a snapshot or source
// volume id it looks in that id's pool; otherwise in every pool of every
// configured cluster the request's secrets can reach. The starting token
// is an offset into the list sorted by snapshot id.
func (s *Server) ListSnapshots(ctx context.Context, req *csi.ListSnapshotsRequest) (*csi.ListSnapshotsResponse, error) {
	start := 0
	if t := req.GetStartingToken(); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return nil, status.Errorf(codes.Aborted, "invalid starting_token %q", t)
		}
		start = n
	}
	if req.GetMaxEntries() < 0 {
		return nil, status.Error(codes.InvalidArgument, "max_entries must not be negative")
	}
	var entries []*csi.ListSnapshotsResponse_Entry
	add := func(se *session) error {
		m, err := se.snapJournal().all(ctx, snapKeyPrefix)
		if err != nil {
			return err
		}
		for _, v := range m {
			var rec snapRecord
			if jsonUnmarshal(v, &rec) != nil {
				continue
			}
			src, err := ParseVolumeID(rec.Source)
			if err != nil {
				continue
			}
			sn := rec.csi(src)
			if req.GetSnapshotId() != "" && sn.SnapshotId != req.GetSnapshotId() {
				continue
			}
			if req.GetSourceVolumeId() != "" && sn.SourceVolumeId != req.GetSourceVolumeId() {
				continue
			}
			entries = append(entries, &csi.ListSnapshotsResponse_Entry{Snapshot: sn})
		}
		return nil
	}
	var scope *VolumeID
	if id := req.GetSnapshotId(); id != "" {
		sid, err := ParseSnapshotID(id)
		if err != nil {
			return &csi.ListSnapshotsResponse{}, nil
		}
		scope = &sid.VolumeID
	} else if id := req.GetSourceVolumeId(); id != "" {
		vid, err := ParseVolumeID(id)
		if err != nil {
			return &csi.ListSnapshotsResponse{}, nil
		}
		scope = &vid
	}
	if scope != nil {
		se, err := s.open(ctx, scope.ClusterID, req.GetSecrets(), "", scope.PoolID)
		if err != nil {
			if status.Code(err) == codes.NotFound {
				return &csi.ListSnapshotsResponse{}, nil
			}
			return nil, err
		}
		if err := add(se); err != nil {
			return nil, se.fail(err)
		}
	} else {
		clusters := make([]string, 0, len(s.conns.clusters))
		for c := range s.conns.clusters {
			clusters = append(clusters, c)
		}
		sort.Strings(clusters)
		cr, err := CredentialsFrom(req.GetSecrets())
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		for _, cl := range clusters {
			c, err := s.conns.get(ctx, cl, cr)
			if err != nil {
				return nil, s.fail(cl, cr, err)
			}
			pools, err := c.ListPools(ctx)
			if err != nil {
				return nil, s.fail(cl, cr, err)
			}
			for _, p := range pools {
				se, err := s.open(ctx, cl, req.GetSecrets(), p, 0)
				if err != nil {
					return nil, err
				}
				if err := add(se); err != nil && Code(err) != codes.PermissionDenied {
					return nil, se.fail(err)
				}
			}
		}
	}
	sort.Slice(entries, func(a, b int) bool { return entries[a].Snapshot.SnapshotId < entries[b].Snapshot.SnapshotId })
	if start > len(entries) {
		return nil, status.Errorf(codes.Aborted, "starting_token %d is past the end (%d)", start, len(entries))
	}
	entries = entries[start:]
	resp := &csi.ListSnapshotsResponse{}
	if n := int(req.GetMaxEntries()); n > 0 && n < len(entries) {
		resp.NextToken = strconv.Itoa(start + n)
		entries = entries[:n]
	}
	resp.Entries = entries
	return resp, nil
}
