package driver_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"

	"github.com/csi-gorbd/csi-gorbd/controllerserver"
	"github.com/csi-gorbd/csi-gorbd/driver"
	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// nodeStandIn answers the node calls csi-sanity's cleanup makes: no
// capabilities, and NodeUnpublishVolume of something never published.
type nodeStandIn struct{ csi.UnimplementedNodeServer }

func (nodeStandIn) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return &csi.NodeGetCapabilitiesResponse{}, nil
}

func (nodeStandIn) NodeUnpublishVolume(context.Context, *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

func (nodeStandIn) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: "sanity-node"}, nil
}

// idGen makes ids in our format that name images which do not exist, so
// the sanity specs for unknown ids reach the cluster.
type idGen struct {
	cluster string
	pool    int64
}

func randHex() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (g idGen) GenerateUniqueValidVolumeID() string {
	return csiceph.VolumeID{ClusterID: g.cluster, PoolID: g.pool, Image: "csi-sanity-missing-" + randHex()}.String()
}
func (g idGen) GenerateInvalidVolumeID() string   { return "not-a-gorbd-volume-id" }
func (g idGen) GenerateUniqueValidNodeID() string { return "node-" + randHex() }
func (g idGen) GenerateInvalidNodeID() string     { return "not-a-node" }

// TestSanityController runs csi-sanity against the driver in controller
// mode on a unix socket, backed by the real pacific cluster, then checks
// that nothing it made is left in the pool.
func TestSanityController(t *testing.T) {
	c := cephtest.Need(t, "pacific")
	mon, key, pool := c.Get("CEPH_MON_V2"), c.Get("CEPH_ADMIN_KEY"), c.Get("CEPH_POOL")
	if pool == "" {
		pool = "rbd"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	conn, err := rados.Connect(ctx, rados.Config{Monitors: []string{mon}, User: "admin", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io, err := conn.OpenIOContext(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}

	run := randHex()
	clusterID := "pacific-" + run
	instance := "sanity-" + run
	volPrefix := "csi-sanity-" + run + "-v-"
	snapPrefix := "csi-sanity-" + run + "-s-"

	dir, err := os.MkdirTemp("/tmp", "gorbd-sanity-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	clusters, _ := json.Marshal([]csiceph.ClusterInfo{{ClusterID: clusterID, Monitors: []string{mon}}})
	cf := filepath.Join(dir, "clusters.json")
	if err := os.WriteFile(cf, clusters, 0o600); err != nil {
		t.Fatal(err)
	}
	cm, err := csiceph.LoadClusters(cf)
	if err != nil {
		t.Fatal(err)
	}
	secret := "{userID: admin, userKey: \"" + key + "\"}"
	var sb strings.Builder
	for _, k := range []string{"CreateVolumeSecret", "DeleteVolumeSecret", "ControllerPublishVolumeSecret",
		"ControllerUnpublishVolumeSecret", "ControllerValidateVolumeCapabilitiesSecret", "NodeStageVolumeSecret",
		"NodePublishVolumeSecret", "CreateSnapshotSecret", "DeleteSnapshotSecret", "ControllerExpandVolumeSecret",
		"ListSnapshotsSecret", "GetSnapshotSecret", "ControllerModifyVolumeSecret"} {
		sb.WriteString(k + ": " + secret + "\n")
	}
	secrets := filepath.Join(dir, "secrets.yaml")
	if err := os.WriteFile(secrets, []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	// One node exists: the stand-in's (csi-sanity publishes to the id
	// NodeGetInfo gives, and expects NotFound for any other).
	cs := controllerserver.New(controllerserver.Options{Clusters: cm, Instance: instance,
		Nodes: controllerserver.NodeSet{"sanity-node": true}})
	defer cs.Close()
	d, err := driver.New(driver.Options{Name: "rbd.csi-gorbd.io", Version: "test", Mode: driver.ModeController,
		Controller: cs, Ready: cs.Ready})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "csi.sock")
	ln, err := driver.Listen("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx, ln) }()
	defer func() {
		d.Stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	// The node plugin is not written yet. csi-sanity's resource cleanup
	// calls NodeUnpublishVolume and NodeGetCapabilities on cfg.Address even
	// for controller specs, so a second driver in node mode serves a
	// stand-in that offers no node capabilities there; the controller is
	// reached through cfg.ControllerAddress. The Node Service specs
	// themselves are skipped (they would test the stand-in).
	nd, err := driver.New(driver.Options{Name: "rbd.csi-gorbd.io", Version: "test", Mode: driver.ModeNode,
		NodeID: "sanity-node", Node: nodeStandIn{}})
	if err != nil {
		t.Fatal(err)
	}
	nodeSock := filepath.Join(dir, "node.sock")
	nln, err := driver.Listen("unix://" + nodeSock)
	if err != nil {
		t.Fatal(err)
	}
	ndone := make(chan error, 1)
	go func() { ndone <- nd.Serve(ctx, nln) }()
	defer func() {
		nd.Stop()
		<-ndone
	}()
	if err := flag.Set("ginkgo.skip", `Node Service`); err != nil {
		t.Fatal(err)
	}
	cfg := sanity.NewTestConfig()
	cfg.Address = "unix://" + nodeSock
	cfg.ControllerAddress = "unix://" + sock
	cfg.StagingPath = filepath.Join(dir, "staging")
	cfg.TargetPath = filepath.Join(dir, "mount")
	cfg.SecretsFile = secrets
	cfg.TestVolumeParameters = map[string]string{"clusterID": clusterID, "pool": pool, "volumeNamePrefix": volPrefix}
	cfg.TestSnapshotParameters = map[string]string{"snapshotNamePrefix": snapPrefix}
	cfg.TestVolumeMutableParameters = map[string]string{"baseIops": "1000", "rbd_qos_write_bps_limit": "64M"}
	cfg.TestVolumeSize = 16 << 20
	cfg.TestVolumeExpandSize = 32 << 20
	cfg.IdempotentCount = 3
	cfg.IDGen = idGen{cluster: clusterID, pool: io.PoolID()}
	sanity.Test(t, cfg)
	if !cs.Ready(ctx) {
		t.Error("controller not ready after the suite, with the cluster up")
	}

	// Nothing of ours may be left: images, trash entries, journal keys.
	dirm, err := io.GetAllOmapValues(ctx, rbd.DirectoryObject, "name_"+volPrefix)
	if err != nil {
		t.Fatalf("listing %s: %v", rbd.DirectoryObject, err)
	}
	for k := range dirm {
		t.Errorf("image left behind: %s", strings.TrimPrefix(k, "name_"))
	}
	trash, err := rbd.TrashList(ctx, io)
	if err != nil {
		t.Fatalf("trash list: %v", err)
	}
	for id, e := range trash {
		if strings.HasPrefix(e.Name, volPrefix) {
			t.Errorf("trash entry left behind: %s (%s)", e.Name, id)
		}
	}
	for _, oid := range []string{controllerserver.VolumeJournalObject(instance), controllerserver.SnapshotJournalObject(instance)} {
		m, err := io.GetAllOmapValues(ctx, oid, "")
		if err != nil && !errors.Is(err, syscall.ENOENT) {
			t.Errorf("reading journal %s: %v", oid, err)
		}
		for k := range m {
			t.Errorf("journal %s: key left behind: %s", oid, k)
		}
		_ = io.Remove(ctx, oid) // the journal object itself
	}
	purge(ctx, t, io, volPrefix)
}

// purge removes images named with prefix (and their snapshots), so a
// failed run does not leave the shared pool dirty. Clones go before their
// parents by retrying.
func purge(ctx context.Context, t *testing.T, io *rados.IOContext, prefix string) {
	for round := 0; round < 4; round++ {
		m, err := io.GetAllOmapValues(ctx, rbd.DirectoryObject, "name_"+prefix)
		if err != nil || len(m) == 0 {
			return
		}
		for k := range m {
			name := strings.TrimPrefix(k, "name_")
			img, err := rbd.Open(ctx, io, name, nil)
			if err != nil {
				continue
			}
			for _, si := range img.Stat().Snapshots {
				_ = img.RemoveSnapshot(ctx, si.Name)
			}
			_ = img.Close(ctx)
			if err := rbd.Remove(ctx, io, name); err != nil && round == 3 {
				t.Logf("purge %s: %v", name, err)
			}
		}
	}
}
