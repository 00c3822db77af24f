package controllerserver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"

	"github.com/csi-gorbd/csi-gorbd/crypt/luks"
	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/internal/journal"
	"github.com/csi-gorbd/csi-gorbd/internal/kms"
	"github.com/csi-gorbd/csi-gorbd/rados"
)

// Options configure a Server.
type Options struct {
	Clusters csiceph.Clusters
	// Instance separates the journals of drivers sharing a pool
	// (ceph-csi's instance id); "" is "default".
	Instance string
	// ConnectTimeout bounds dialling a cluster (0: 30s).
	ConnectTimeout time.Duration
	// MaxCloneDepth: a new clone whose parent chain is deeper than this is
	// flattened in the background (0: DefaultMaxCloneDepth). The
	// StorageClass parameter maxCloneDepth overrides it per volume.
	MaxCloneDepth int
	// Logger receives what requests cannot report: cleanups that failed
	// (with what they left behind) and background flattens that failed,
	// and the one line per request that names StorageClass parameters
	// without meaning here. The zero Logger discards.
	Logger klog.Logger
	// Mapping is ceph-csi's cluster-mapping.json: where else a handle's
	// volume may be (nil: nowhere).
	Mapping csiceph.ClusterMapping
	// DriverName prefixes the topology keys (topology.<DriverName>/<domain>),
	// as the node plugin's NodeGetInfo reports them.
	DriverName string
	// Nodes tells ControllerPublishVolume which node ids exist (others
	// are NotFound); nil: every node exists.
	Nodes NodeDirectory
	// KMS loads the KMS configuration encrypted volumes name by
	// encryptionKMSID (ceph-csi's config.json or ConfigMap); Kube reads
	// the Secrets a KMS entry names (nil: none). KDF is the keyslot KDF
	// of new encrypted volumes (zero: luks.DefaultKDF).
	KMS  kms.Loader
	Kube kms.SecretReader
	KDF  luks.KDF
}

// NodeDirectory knows the nodes that run this driver's node plugin (in
// Kubernetes: the CSINode objects).
type NodeDirectory interface {
	NodeExists(ctx context.Context, nodeID string) (bool, error)
}

// DefaultMaxCloneDepth is the clone chain depth past which new clones are
// flattened in the background.
const DefaultMaxCloneDepth = 8

// Server is the CSI Controller service.
type Server struct {
	csi.UnimplementedControllerServer
	csi.UnimplementedGroupControllerServer

	instance string
	log      klog.Logger
	nodes    NodeDirectory
	conns    *csiceph.Pool
	mapping  csiceph.ClusterMapping
	driver   string
	inflight sync.Map // name or id → struct{}
	maxDepth int
	kms      kms.Loader
	kube     kms.SecretReader
	kdf      luks.KDF

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
	if o.MaxCloneDepth == 0 {
		o.MaxCloneDepth = DefaultMaxCloneDepth
	}
	s := &Server{instance: o.Instance, log: o.Logger, nodes: o.Nodes, conns: csiceph.NewPool(csiceph.PoolOptions{Clusters: o.Clusters, ConnectTimeout: o.ConnectTimeout}),
		maxDepth: o.MaxCloneDepth, locks: map[string]chan struct{}{}, mapping: o.Mapping, driver: o.DriverName,
		kms: o.KMS, kube: o.Kube, kdf: o.KDF}
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	return s
}

// lockImage serialises the operations that change an image's snapshot
// set or existence (DeleteVolume, CreateSnapshot, cloning from it): they
// wait for each other rather than fail, until ctx ends. The image is the
// one called image in io's pool and namespace (on io's cluster, by fsid:
// two clusterIDs may name one cluster). The caller must call the returned
// unlock.
func (s *Server) lockImage(ctx context.Context, io *rados.IOContext, image string) (func(), error) {
	key := fmt.Sprintf("%s/%d/%s/%s", io.Conn().FSID(), io.PoolID(), io.Namespace(), image)
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

// Ready reports whether the controller can reach Ceph: every pooled
// connection must answer a monitor command ("version") within 5 seconds
// (only connection-level failures count: a refusal still proves the
// cluster is up), and every configured cluster that has no connection yet
// (they are dialled lazily, with the secrets requests carry) must have a
// monitor that accepts a TCP connection.
func (s *Server) Ready(ctx context.Context) bool {
	dialled := map[string]bool{}
	for _, h := range s.SessionHealth(ctx) {
		if !h.Up {
			return false
		}
		dialled[h.Cluster] = true
	}
	for id, ci := range s.conns.Clusters() {
		if !dialled[id] && !csiceph.Reachable(ctx, ci) {
			return false
		}
	}
	return true
}

// SessionHealth checks every pooled cluster connection as Ready does
// (concurrently) and reports each one.
func (s *Server) SessionHealth(ctx context.Context) []csiceph.Session {
	return s.conns.Health(ctx)
}

// Close stops background work and drops every cluster connection.
func (s *Server) Close() {
	s.bgCancel()
	s.bg.Wait()
	s.conns.Close()
}

// guard takes the in-flight lock on key; the caller must call the
// returned release. A duplicate in flight gets Aborted.
func (s *Server) guard(key string) (func(), error) {
	if _, busy := s.inflight.LoadOrStore(key, struct{}{}); busy {
		return nil, status.Errorf(codes.Aborted, "an operation on %q is already in progress", key)
	}
	return func() { s.inflight.Delete(key) }, nil
}

// begin takes the in-flight guard on key and finds the volume of id (the
// session is on its image's pool and namespace), and with lock also takes
// the lock of its image. The caller must call done when err is nil. A
// volume that does not exist is errGone.
func (s *Server) begin(ctx context.Context, key string, id csiceph.VolumeID, secrets map[string]string, lock bool) (
	se *session, v *volRef, done func(), err error) {
	release, err := s.guard(key)
	if err != nil {
		return nil, nil, nil, err
	}
	if se, v, err = s.openVolume(ctx, id, secrets); err != nil {
		release()
		return nil, nil, nil, err
	}
	if !lock {
		return se, v, release, nil
	}
	unlock, err := s.lockImage(ctx, v.io, v.image)
	if err != nil {
		release()
		return nil, nil, nil, err
	}
	return se, v, func() { unlock(); release() }, nil
}

// session is one request's view of a pool.
type session struct {
	s       *Server
	cluster string
	cred    csiceph.Credentials
	io      *rados.IOContext
}

// conn returns the pooled connection for cluster, with the error saying
// what to fix when there is none.
func (s *Server) conn(ctx context.Context, cluster string, cr csiceph.Credentials) (*rados.Conn, error) {
	c, err := s.conns.Get(ctx, cluster, cr)
	if err == nil {
		return c, nil
	}
	switch csiceph.Code(err) {
	case codes.InvalidArgument:
		if errors.Is(err, csiceph.ErrUnknownCluster) {
			err = fmt.Errorf("%w; fix the StorageClass parameter clusterID or the clusters file", err)
		}
	case codes.PermissionDenied:
		err = fmt.Errorf("cluster %q refused Ceph user %q: check userID and userKey in the secret: %w", cluster, cr.User, err)
	case codes.Unavailable, codes.DeadlineExceeded:
		err = fmt.Errorf("cannot reach the monitors of cluster %q %v (clusters file): %w", cluster, s.conns.Clusters()[cluster].Monitors, err)
	}
	return nil, csiceph.Status(err, "")
}

// open starts a session on the pool named pool, or with id poolID when
// pool is "", in the cluster's RADOS namespace (rbd.radosNamespace).
func (s *Server) open(ctx context.Context, cluster string, secrets map[string]string, pool string, poolID int64) (*session, error) {
	cr, err := csiceph.CredentialsFrom(secrets)
	if err != nil {
		return nil, csiceph.Status(err, "")
	}
	c, err := s.conn(ctx, cluster, cr)
	if err != nil {
		return nil, err
	}
	var io *rados.IOContext
	if pool != "" {
		io, err = c.OpenIOContext(ctx, pool)
	} else {
		io, err = c.OpenIOContextByID(ctx, poolID)
	}
	if err != nil {
		if csiceph.Code(err) == codes.NotFound {
			if pool != "" {
				err = fmt.Errorf("pool %q (StorageClass parameter pool) does not exist on cluster %q: %w", pool, cluster, err)
			} else {
				err = fmt.Errorf("pool id %d does not exist on cluster %q any more: %w", poolID, cluster, err)
			}
		}
		return nil, s.fail(c, err)
	}
	io.SetNamespace(s.conns.Clusters()[cluster].Namespace())
	return &session{s: s, cluster: cluster, cred: cr, io: io}, nil
}

// fail drops c from the pool when err shows it broken and returns err as
// a status.
func (s *Server) fail(c *rados.Conn, err error) error {
	s.conns.Failed(c, err)
	return csiceph.Status(err, "")
}

func (se *session) fail(err error) error { return se.s.fail(se.io.Conn(), err) }

// volumeErr says which volume a failure is about; a missing image gets
// NotFound with the image and pool named.
func (se *session) volumeErr(v *volRef, err error) error {
	if notFound(err) {
		return status.Errorf(codes.NotFound, "volume %s: image %q does not exist in pool %s of cluster %q",
			v.id, v.image, poolSpec(v.io), se.cluster)
	}
	return se.fail(err)
}

// poolSpec names io's pool and namespace as rbd does (pool or pool/ns).
func poolSpec(io *rados.IOContext) string {
	if ns := io.Namespace(); ns != "" {
		return io.PoolName() + "/" + ns
	}
	return io.PoolName()
}

// volJournal and snapJournal are the journals of the session's pool and
// namespace; legacyVolJournal and legacySnapJournal read what this driver
// wrote before (the same directory objects, JSON values).
func (se *session) volJournal() journal.Journal {
	return journal.Journal{IO: se.io, Instance: se.s.instance, Kind: journal.Volumes}
}

func (se *session) snapJournal() journal.Journal {
	return journal.Journal{IO: se.io, Instance: se.s.instance, Kind: journal.Snapshots}
}

func (se *session) legacyVolJournal() legacyJournal {
	return legacyJournal{io: se.io, oid: VolumeJournalObject(se.s.instance)}
}

func (se *session) legacySnapJournal() legacyJournal {
	return legacyJournal{io: se.io, oid: SnapshotJournalObject(se.s.instance)}
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
		csi.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME,
		csi.ControllerServiceCapability_RPC_MODIFY_VOLUME,
	} {
		caps = append(caps, &csi.ControllerServiceCapability{Type: &csi.ControllerServiceCapability_Rpc{
			Rpc: &csi.ControllerServiceCapability_RPC{Type: c}}})
	}
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: caps}, nil
}
