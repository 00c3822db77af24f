package guest

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/csi-gorbd/csi-gorbd/controllerserver"
	"github.com/csi-gorbd/csi-gorbd/driver"
	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/nodeserver"
)

// csiIDGen makes volume ids in our format naming images that do not
// exist, so the specs for unknown ids reach the cluster.
type csiIDGen struct {
	cluster string
	pool    int64
}

func (g csiIDGen) GenerateUniqueValidVolumeID() string {
	return csiceph.VolumeID{ClusterID: g.cluster, PoolID: g.pool, Image: "vmB-missing-" + csiRandHex()}.String()
}
func (g csiIDGen) GenerateInvalidVolumeID() string   { return "not-a-gorbd-volume-id" }
func (g csiIDGen) GenerateUniqueValidNodeID() string { return "node-" + csiRandHex() }
func (g csiIDGen) GenerateInvalidNodeID() string     { return "not-a-node" }

// sanitySkips collects the specs csi-sanity skipped, with its reason, for
// TestCSISanityNode to judge (a ginkgo report node has no *testing.T).
var sanitySkips []sanitySkip

type sanitySkip struct{ state, spec, msg string }

var _ = ginkgo.ReportAfterSuite("csi-gorbd: skipped specs", func(r ginkgo.Report) {
	for _, sr := range r.SpecReports {
		if sr.State == types.SpecStateSkipped || sr.State == types.SpecStatePending {
			sanitySkips = append(sanitySkips, sanitySkip{sr.State.String(), sr.FullText(), strings.TrimSpace(sr.Failure.Message)})
		}
	}
})

// allowedSkip matches csi-sanity's skip messages for capabilities the
// plugin does not advertise (ControllerPublish, ListVolumes, GetCapacity, GetSnapshot,
// volume modification, controller volume health, group snapshots,
// storage health, topology) and the attach-limit spec, which the node
// reaches because TestNodeVolumeAttachLimit is on and skips only while
// NodeGetInfo reports no limit (nbd devices are created on demand).
// Anything else skipping fails the test.
var allowedSkip = regexp.MustCompile(`(ControllerPublishVolume|Controller Publish, UnpublishVolume|ControllerUnpublishVolume|` +
	`ListVolumes|GetCapacity|GetSnapshot|Modify [vV]olume|ControllerModifyVolume|ControllerGetVolumeHealth|ControllerListVolumeHealth|` +
	`GroupControllerService|VolumeGroupSnapshots|NodeGetStorageHealth|SNAPSHOT_ACCESSIBILITY_CONSTRAINTS|` +
	`ControllerPublishVolume.readonly field) not supported$|^node does not report accessible topology$|` +
	`^No MaxVolumesPerNode$`)

// TestCSISanityNode runs the whole csi-sanity suite, node specs included,
// against the plugin in "all" mode (controller and node services on one
// socket) inside the VM: images on the host's cluster through the
// forwarder, devices through the real nbd.ko, ext4 made and mounted with
// mount-utils. Afterwards no image, trash entry or journal key of the run
// may be left in the pool, and no device may still be attached.
func TestCSISanityNode(t *testing.T) {
	c := needHostCeph(t)
	// The plugin serves until ctx ends: csi-sanity must finish inside it
	// (about 6 min under TCG on a quiet host, twice that on a busy one).
	ctx := testCtx(t, 15*time.Minute)
	clearDmesg(t)
	s := newCSISetup(t, ctx, c)

	clusters, err := csiceph.LoadClusters(s.Clusters)
	if err != nil {
		t.Fatal(err)
	}
	cs := controllerserver.New(controllerserver.Options{Clusters: clusters, Instance: s.Instance,
		Nodes: controllerserver.NodeSet{"vm-node": true}})
	defer cs.Close()
	ns, err := nodeserver.New(ctx, nodeserver.Options{NodeID: "vm-node", Clusters: clusters,
		StateDir: filepath.Join(s.Dir, "state")})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	d, err := driver.New(driver.Options{Name: "rbd.csi-gorbd.io", Version: "vm", Mode: driver.ModeAll, NodeID: "vm-node",
		Controller: cs, Node: ns, Ready: cs.Ready})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(s.Dir, "csi.sock")
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

	var sb strings.Builder
	secret := "{userID: " + s.Secrets["userID"] + ", userKey: \"" + s.Secrets["userKey"] + "\"}"
	for _, k := range []string{"CreateVolumeSecret", "DeleteVolumeSecret", "ControllerPublishVolumeSecret",
		"ControllerUnpublishVolumeSecret", "ControllerValidateVolumeCapabilitiesSecret", "NodeStageVolumeSecret",
		"NodePublishVolumeSecret", "CreateSnapshotSecret", "DeleteSnapshotSecret", "ControllerExpandVolumeSecret",
		"ListSnapshotsSecret", "GetSnapshotSecret", "ControllerModifyVolumeSecret", "NodeExpandVolumeSecret"} {
		sb.WriteString(k + ": " + secret + "\n")
	}
	secrets := filepath.Join(s.Dir, "secrets.yaml")
	writeFile0600(t, secrets, sb.String())

	cfg := sanity.NewTestConfig()
	cfg.Address = "unix://" + sock
	cfg.StagingPath = filepath.Join(s.Dir, "staging")
	cfg.TargetPath = filepath.Join(s.Dir, "mount")
	cfg.SecretsFile = secrets
	cfg.TestVolumeParameters = s.volumeParams()
	cfg.TestSnapshotParameters = map[string]string{"snapshotNamePrefix": s.Prefix + "s-"}
	cfg.TestVolumeSize = 16 << 20
	cfg.TestVolumeExpandSize = 32 << 20
	cfg.IdempotentCount = 2
	cfg.TestNodeVolumeAttachLimit = true
	cfg.IDGen = csiIDGen{cluster: s.ClusterID, pool: s.PoolID}
	start := time.Now()
	sanity.Test(t, cfg)
	t.Logf("csi-sanity took %v", time.Since(start).Round(time.Second))
	for _, sk := range sanitySkips {
		switch {
		case sk.state == "pending":
			t.Logf("csi-sanity pending (declared so by csi-sanity): %s", sk.spec)
		case allowedSkip.MatchString(sk.msg):
			t.Logf("csi-sanity skipped %q: %s", sk.spec, sk.msg)
		default:
			t.Errorf("csi-sanity skipped %q: %q: only specs for capabilities the plugin does not advertise may skip", sk.spec, sk.msg)
		}
	}
	if len(sanitySkips) == 0 {
		t.Error("the skip report of csi-sanity is empty: the ginkgo report hook did not run")
	}
	if n := ns.AttachedVolumes(); n != 0 {
		t.Errorf("%d devices still attached after the suite", n)
	}
	if bad := kernelErrors(t); len(bad) > 0 {
		t.Errorf("kernel reported errors:\n%s", strings.Join(bad, "\n"))
	}
}
