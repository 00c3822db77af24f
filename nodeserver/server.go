package nodeserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/mount-utils"
	utilexec "k8s.io/utils/exec"

	"github.com/csi-gorbd/csi-gorbd/crypt/luks"
	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/internal/incarnation"
	"github.com/csi-gorbd/csi-gorbd/internal/kms"
	"github.com/csi-gorbd/csi-gorbd/nbd/attach"
	"github.com/csi-gorbd/csi-gorbd/nbd/qos"
)

// ownerWait bounds waiting for the state directory's lock.
const ownerWait = time.Minute

// Options configure a Server.
type Options struct {
	NodeID   string
	Clusters csiceph.Clusters
	// StateDir holds nbd/ and volumes/ (see the package documentation).
	StateDir string
	// MaxVolumes is reported by NodeGetInfo (0: no limit reported); it
	// should match the nbd module's nbds_max.
	MaxVolumes int64
	// Connections is the number of NBD sockets per device (0: 1).
	Connections int
	// DeadConnTimeout is how long the kernel holds I/O while no process
	// serves a device (0: attach.DefaultDeadConnTimeout).
	DeadConnTimeout time.Duration
	// ConnectTimeout bounds dialling a cluster (0: 30s).
	ConnectTimeout time.Duration
	// OnEvent receives the attach manager's events (may be nil; must not
	// block).
	OnEvent func(attach.Event)
	// Mapping is ceph-csi's cluster-mapping.json: where else a handle's
	// volume may be.
	Mapping csiceph.ClusterMapping
	// Topology is the node's accessible topology NodeGetInfo reports
	// (topology.<driver>/<domain> → value, from the node's domain labels;
	// nil: none).
	Topology map[string]string

	// KMS loads the KMS configuration encrypted volumes name by
	// encryptionKMSID; Kube reads the Secrets a KMS entry names (nil:
	// none). KDF is the keyslot KDF when a stage formats a volume ceph-csi
	// prepared (zero: luks.DefaultKDF).
	KMS  kms.Loader
	Kube kms.SecretReader
	KDF  luks.KDF
	// KeyDir holds the record key that seals encrypted volumes' keys in
	// the state directory (see sealer.go): it must be on tmpfs or ramfs
	// unless KeyDirAnyFS ("": DefaultKeyDir).
	KeyDir      string
	KeyDirAnyFS bool

	// SysRBD is krbd's sysfs directory ("": /sys/bus/rbd), where volumes
	// ceph-csi mapped with krbd are found and unmapped.
	SysRBD string

	// QuiesceHold is how long a volume stays quiesced for a snapshot
	// without word from the snapshotter (0: librbd's 10 s); Freezer
	// freezes staged filesystems for snapshots (nil: FIFREEZE/FITHAW);
	// OnQuiesce is told each freeze and thaw (may be nil; must not
	// block). See quiesce.go.
	QuiesceHold time.Duration
	Freezer     Freezer
	OnQuiesce   func(volumeID, what string, took time.Duration, err error)

	// OnQoS is told the QoS limits of a volume whenever they change, or
	// could not be read (may be nil; must not block).
	OnQoS func(volumeID string, l qos.Limits, err error)
	// VolumeMetrics receives every served volume's I/O (may be nil).
	VolumeMetrics VolumeMetrics

	// Kernel, Mounter and Exec replace the real kernel, mount(8) and
	// command runner (tests); nil means the real ones.
	Kernel  attach.Kernel
	Mounter mount.Interface
	Exec    utilexec.Interface
}

// Server is the CSI Node service.
type Server struct {
	csi.UnimplementedNodeServer

	o       Options
	vols    volumeStore
	conns   *csiceph.Pool
	mgr     *attach.Manager
	resizer *mount.ResizeFs

	// mounted is closed once mnt and mounter are set: mount.New runs a
	// umount(8) probe, which a restarted plugin does not wait for before
	// taking its devices over (New starts it, Recover does not need it).
	mounted chan struct{}
	mnt     mount.Interface
	mounter *mount.SafeFormatAndMount

	inflight sync.Map // volume id → struct{}

	bmu      sync.Mutex
	backends map[string]*rbdVolume // open images by volume id

	// sealer seals encrypted volumes' keys for their records; nil, with
	// sealErr saying why, when the key directory is unusable (encrypted
	// volumes then fail to stage, and to recover).
	sealer  *sealer
	sealErr error

	fz freezes // filesystems frozen for snapshots (quiesce.go)

	// owner is the state directory's lock, held while the server lives,
	// with the Ceph clients of the processes that held it before.
	owner *incarnation.Dir
}

var _ csi.NodeServer = (*Server)(nil)

// New makes the Node service. Serving devices stops when ctx ends or
// Close is called; neither disconnects a device.
func New(ctx context.Context, o Options) (*Server, error) {
	if o.NodeID == "" {
		return nil, errors.New("nodeserver: a node id is required")
	}
	if o.StateDir == "" {
		return nil, errors.New("nodeserver: a state directory is required")
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 30 * time.Second
	}
	if o.Connections == 0 {
		o.Connections = 1
	}
	if o.DeadConnTimeout == 0 {
		o.DeadConnTimeout = attach.DefaultDeadConnTimeout
	}
	if o.KeyDir == "" {
		o.KeyDir = DefaultKeyDir
	}
	if o.Exec == nil {
		o.Exec = utilexec.New()
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, err
	}
	// One process serves a state directory. Waiting (not failing) lets a
	// replacement started a moment early take over when the old one exits.
	octx, cancel := context.WithTimeout(ctx, ownerWait)
	owner, err := incarnation.Acquire(octx, filepath.Join(o.StateDir, "owner"))
	cancel()
	if err != nil {
		return nil, fmt.Errorf("nodeserver: another process is serving %s: %w", o.StateDir, err)
	}
	s := &Server{
		o:     o,
		owner: owner,
		vols:  volumeStore{dir: filepath.Join(o.StateDir, "volumes")},
		conns: csiceph.NewPool(csiceph.PoolOptions{Clusters: o.Clusters, ConnectTimeout: o.ConnectTimeout,
			OnConnect: recordClient(owner)}),
		resizer:  mount.NewResizeFs(o.Exec),
		backends: map[string]*rbdVolume{},
		mounted:  make(chan struct{}),
	}
	setMounter := func(m mount.Interface) {
		s.mnt, s.mounter = m, mount.NewSafeFormatAndMount(m, o.Exec)
		close(s.mounted)
	}
	if o.Mounter != nil {
		setMounter(o.Mounter)
	} else {
		go func() { setMounter(mount.New("")) }() // Close waits for it
	}
	s.sealer, s.sealErr = openSealer(o.KeyDir, o.KeyDirAnyFS)
	// This process is the directory's only writer: any temporary record
	// file is what a crashed predecessor left.
	if _, err := s.vols.records().RemoveTemps(0); err != nil {
		<-s.mounted
		owner.Close()
		return nil, fmt.Errorf("nodeserver: removing stale temporary records: %w", err)
	}
	m, err := attach.New(ctx, attach.Config{
		StateDir: filepath.Join(o.StateDir, "nbd"),
		Factory:  s.openVolume,
		OnEvent:  o.OnEvent,
		Kernel:   o.Kernel,
	})
	if err != nil {
		<-s.mounted
		owner.Close()
		return nil, err
	}
	s.mgr = m
	return s, nil
}

// Recover takes over the devices recorded in the state directory (a
// restart): every image is reopened and the kernel gets fresh sockets. Run
// it before serving gRPC. It returns the devices now served; the error
// lists those that could not be taken over.
func (s *Server) Recover(ctx context.Context) ([]attach.Record, error) {
	recs, err := s.mgr.Recover(ctx)
	out := make([]attach.Record, 0, len(recs))
	for _, r := range recs {
		out = append(out, *r)
	}
	return out, err
}

// AttachedVolumes is the number of devices this process serves (for the
// attached-volumes metric).
func (s *Server) AttachedVolumes() int { return len(s.mgr.Served()) }

// Ready reports whether every cached cluster connection answers a monitor
// command within 5 seconds (no connection: ready).
func (s *Server) Ready(ctx context.Context) bool {
	for _, h := range s.SessionHealth(ctx) {
		if !h.Up {
			return false
		}
	}
	return true
}

// SessionHealth checks every pooled cluster connection (the sessions the
// staged volumes use) concurrently and reports each one.
func (s *Server) SessionHealth(ctx context.Context) []csiceph.Session {
	return s.conns.Health(ctx)
}

// Close stops serving the devices (they stay connected; a new process
// recovers them) and closes the cluster connections.
func (s *Server) Close() error {
	<-s.mounted
	err := s.mgr.Close()
	s.conns.Close()
	if e := s.owner.Close(); err == nil {
		err = e
	}
	return err
}

// mountIface is the mounter (mount(8)), once its probe is done.
func (s *Server) mountIface() mount.Interface {
	<-s.mounted
	return s.mnt
}

// formatter is the mounter that formats first, once its probe is done.
func (s *Server) formatter() *mount.SafeFormatAndMount {
	<-s.mounted
	return s.mounter
}

// guard takes the per-volume in-flight lock; a concurrent call on the same
// volume gets Aborted.
func (s *Server) guard(volumeID string) (func(), error) {
	if _, busy := s.inflight.LoadOrStore(volumeID, struct{}{}); busy {
		return nil, status.Errorf(codes.Aborted, "an operation on volume %q is already in progress", volumeID)
	}
	return func() { s.inflight.Delete(volumeID) }, nil
}

// NodeGetInfo returns the node id and, with domain labels, its topology.
func (s *Server) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	r := &csi.NodeGetInfoResponse{NodeId: s.o.NodeID, MaxVolumesPerNode: s.o.MaxVolumes}
	if len(s.o.Topology) > 0 {
		r.AccessibleTopology = &csi.Topology{Segments: s.o.Topology}
	}
	return r, nil
}

// NodeGetCapabilities lists what the node service does.
func (s *Server) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	var caps []*csi.NodeServiceCapability
	for _, c := range []csi.NodeServiceCapability_RPC_Type{
		csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME,
		csi.NodeServiceCapability_RPC_EXPAND_VOLUME,
		csi.NodeServiceCapability_RPC_GET_VOLUME_STATS,
		csi.NodeServiceCapability_RPC_GET_VOLUME_HEALTH,
		csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
	} {
		caps = append(caps, &csi.NodeServiceCapability{Type: &csi.NodeServiceCapability_Rpc{
			Rpc: &csi.NodeServiceCapability_RPC{Type: c}}})
	}
	return &csi.NodeGetCapabilitiesResponse{Capabilities: caps}, nil
}
