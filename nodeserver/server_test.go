package nodeserver

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/mount-utils"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
)

// These tests cover what needs neither a kernel nbd device nor a cluster:
// argument checks and their codes, idempotent no-ops, the access-mode
// rules and the state records. Attach, mkfs, mount, expand and restart
// recovery run for real in test/vm/guest (csi_*_test.go).

const testCluster = "c1"

func newTestServer(t *testing.T) (*Server, *mount.FakeMounter) {
	t.Helper()
	fm := mount.NewFakeMounter(nil)
	s, err := New(context.Background(), Options{
		NodeID:   "n1",
		Clusters: map[string]csiceph.ClusterInfo{testCluster: {ClusterID: testCluster, Monitors: []string{"127.0.0.1:1"}}},
		StateDir: t.TempDir(),
		Mounter:  fm,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, fm
}

func volID(image string) string {
	return csiceph.VolumeID{ClusterID: testCluster, PoolID: 2, Image: image}.String()
}

func mountCap(mode csi.VolumeCapability_AccessMode_Mode, fs string) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: fs}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}

func blockCap(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}

var (
	snw    = csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
	snsw   = csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER
	mnmw   = csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER
	goodSC = map[string]string{"userID": "admin", "userKey": "AQAAAAAAAAAAABAAAAAAAAAAAAAAAAAAAAAAAA=="}
)

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("%s: code %v (%v), want %v", what, got, err, want)
	}
}

func TestStageArguments(t *testing.T) {
	s, _ := newTestServer(t)
	ctx := context.Background()
	staging := t.TempDir()
	for _, tc := range []struct {
		name string
		req  *csi.NodeStageVolumeRequest
		want codes.Code
	}{
		{"no volume id", &csi.NodeStageVolumeRequest{StagingTargetPath: staging, VolumeCapability: mountCap(snw, "")}, codes.InvalidArgument},
		{"no staging path", &csi.NodeStageVolumeRequest{VolumeId: volID("a"), VolumeCapability: mountCap(snw, "")}, codes.InvalidArgument},
		{"no capability", &csi.NodeStageVolumeRequest{VolumeId: volID("a"), StagingTargetPath: staging}, codes.InvalidArgument},
		{"multi-node writer filesystem", &csi.NodeStageVolumeRequest{VolumeId: volID("a"), StagingTargetPath: staging,
			VolumeCapability: mountCap(mnmw, "ext4"), Secrets: goodSC}, codes.InvalidArgument},
		{"unsupported filesystem", &csi.NodeStageVolumeRequest{VolumeId: volID("a"), StagingTargetPath: staging,
			VolumeCapability: mountCap(snw, "btrfs"), Secrets: goodSC}, codes.InvalidArgument},
		{"not our volume id", &csi.NodeStageVolumeRequest{VolumeId: "pvc-123", StagingTargetPath: staging,
			VolumeCapability: mountCap(snw, ""), Secrets: goodSC}, codes.NotFound},
		{"no secrets", &csi.NodeStageVolumeRequest{VolumeId: volID("a"), StagingTargetPath: staging,
			VolumeCapability: mountCap(snw, "")}, codes.InvalidArgument},
		{"key without user", &csi.NodeStageVolumeRequest{VolumeId: volID("a"), StagingTargetPath: staging,
			VolumeCapability: mountCap(snw, ""), Secrets: map[string]string{"userKey": "x"}}, codes.InvalidArgument},
		{"unknown cluster", &csi.NodeStageVolumeRequest{
			VolumeId:          csiceph.VolumeID{ClusterID: "elsewhere", PoolID: 1, Image: "a"}.String(),
			StagingTargetPath: staging, VolumeCapability: mountCap(snw, ""), Secrets: goodSC}, codes.InvalidArgument},
	} {
		_, err := s.NodeStageVolume(ctx, tc.req)
		wantCode(t, tc.name, err, tc.want)
	}
	// None of these may leave a record behind.
	if recs, err := s.vols.list(); err != nil || len(recs) != 0 {
		t.Errorf("records after refused stages: %v, %v", recs, err)
	}
}

func TestOtherArguments(t *testing.T) {
	s, _ := newTestServer(t)
	ctx := context.Background()
	dir := t.TempDir()
	_, err := s.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{StagingTargetPath: dir})
	wantCode(t, "unstage without id", err, codes.InvalidArgument)
	_, err = s.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: volID("a")})
	wantCode(t, "unstage without path", err, codes.InvalidArgument)
	_, err = s.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{TargetPath: dir, StagingTargetPath: dir, VolumeCapability: mountCap(snw, "")})
	wantCode(t, "publish without id", err, codes.InvalidArgument)
	_, err = s.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: volID("a"), StagingTargetPath: dir, VolumeCapability: mountCap(snw, "")})
	wantCode(t, "publish without target", err, codes.InvalidArgument)
	_, err = s.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: volID("a"), TargetPath: dir + "/t", StagingTargetPath: dir})
	wantCode(t, "publish without capability", err, codes.InvalidArgument)
	_, err = s.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: volID("a"), TargetPath: dir + "/t", VolumeCapability: mountCap(snw, "")})
	wantCode(t, "publish without staging path", err, codes.InvalidArgument)
	_, err = s.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: volID("a"), TargetPath: dir + "/t",
		StagingTargetPath: dir, VolumeCapability: mountCap(snw, "")})
	wantCode(t, "publish of a volume not staged", err, codes.FailedPrecondition)
	_, err = s.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{TargetPath: dir})
	wantCode(t, "unpublish without id", err, codes.InvalidArgument)
	_, err = s.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: volID("a")})
	wantCode(t, "unpublish without target", err, codes.InvalidArgument)
	_, err = s.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumePath: dir})
	wantCode(t, "stats without id", err, codes.InvalidArgument)
	_, err = s.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: volID("a")})
	wantCode(t, "stats without path", err, codes.InvalidArgument)
	_, err = s.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: volID("a"), VolumePath: dir})
	wantCode(t, "stats of an unknown volume", err, codes.NotFound)
	_, err = s.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumePath: dir})
	wantCode(t, "expand without id", err, codes.InvalidArgument)
	_, err = s.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: volID("a")})
	wantCode(t, "expand without path", err, codes.InvalidArgument)
	_, err = s.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: volID("a"), VolumePath: dir})
	wantCode(t, "expand of an unknown volume", err, codes.NotFound)
	_, err = s.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{})
	wantCode(t, "health without id", err, codes.InvalidArgument)
	_, err = s.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: volID("a")})
	wantCode(t, "health of an unknown volume", err, codes.NotFound)
}

// Unstage and unpublish of things never staged or published succeed
// (the CO retries them after crashes), and unpublish removes the target.
func TestIdempotentTeardown(t *testing.T) {
	s, fm := newTestServer(t)
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := s.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: volID("a"), StagingTargetPath: dir}); err != nil {
		t.Errorf("unstage of a volume never staged: %v", err)
	}
	target := filepath.Join(dir, "target")
	if err := os.Mkdir(target, 0o750); err != nil {
		t.Fatal(err)
	}
	fm.MountPoints = append(fm.MountPoints, mount.MountPoint{Device: dir + "/staging", Path: target, Type: "ext4"})
	for i := 0; i < 2; i++ {
		if _, err := s.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: volID("a"), TargetPath: target}); err != nil {
			t.Fatalf("unpublish %d: %v", i, err)
		}
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("target still there: %v", err)
	}
	if len(fm.MountPoints) != 0 {
		t.Errorf("still mounted: %v", fm.MountPoints)
	}
}

// A SINGLE_NODE_SINGLE_WRITER volume published at one target may not be
// published at another; a repeat of the same publish is fine.
func TestSingleWriterRule(t *testing.T) {
	s, fm := newTestServer(t)
	ctx := context.Background()
	dir := t.TempDir()
	staging, t1, t2 := filepath.Join(dir, "staging"), filepath.Join(dir, "t1"), filepath.Join(dir, "t2")
	id := volID("sw")
	rec := &volumeRecord{VolumeID: id, ClusterID: testCluster, PoolID: 2, Image: "sw", UserID: "admin", UserKey: "k",
		StagingPath: staging, FSType: "ext4", AccessMode: int32(snsw), Device: "/dev/nbd0", Targets: []string{t1}}
	if err := s.vols.save(rec); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(t1, 0o750)
	fm.MountPoints = append(fm.MountPoints, mount.MountPoint{Device: staging, Path: t1, Type: "ext4"})
	req := &csi.NodePublishVolumeRequest{VolumeId: id, StagingTargetPath: staging, TargetPath: t2, VolumeCapability: mountCap(snsw, "ext4")}
	_, err := s.NodePublishVolume(ctx, req)
	wantCode(t, "second target of a single writer", err, codes.FailedPrecondition)
	req.TargetPath = t1
	if _, err := s.NodePublishVolume(ctx, req); err != nil {
		t.Errorf("repeated publish: %v", err)
	}
	req.TargetPath, req.StagingTargetPath = t2, filepath.Join(dir, "other")
	_, err = s.NodePublishVolume(ctx, req)
	wantCode(t, "publish from another staging path", err, codes.FailedPrecondition)
	req.StagingTargetPath, req.VolumeCapability = staging, blockCap(snsw)
	_, err = s.NodePublishVolume(ctx, req)
	wantCode(t, "block publish of a filesystem volume", err, codes.InvalidArgument)
	// Stats only for the paths the volume is at.
	_, err = s.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: id, VolumePath: dir})
	wantCode(t, "stats of another path", err, codes.NotFound)
}

func TestCapabilitiesAndInfo(t *testing.T) {
	s, _ := newTestServer(t)
	r, err := s.NodeGetCapabilities(context.Background(), &csi.NodeGetCapabilitiesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[csi.NodeServiceCapability_RPC_Type]bool{}
	for _, c := range r.GetCapabilities() {
		got[c.GetRpc().GetType()] = true
	}
	for _, want := range []csi.NodeServiceCapability_RPC_Type{csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME,
		csi.NodeServiceCapability_RPC_EXPAND_VOLUME, csi.NodeServiceCapability_RPC_GET_VOLUME_STATS,
		csi.NodeServiceCapability_RPC_GET_VOLUME_HEALTH, csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER} {
		if !got[want] {
			t.Errorf("capability %v not advertised", want)
		}
	}
	info, err := s.NodeGetInfo(context.Background(), &csi.NodeGetInfoRequest{})
	if err != nil || info.GetNodeId() != "n1" {
		t.Errorf("NodeGetInfo: %v, %v", info, err)
	}
}

func TestVolumeStore(t *testing.T) {
	st := volumeStore{dir: filepath.Join(t.TempDir(), "volumes")}
	r := &volumeRecord{VolumeID: volID("x"), ClusterID: testCluster, PoolID: 2, Image: "x", UserID: "admin", UserKey: "secret",
		StagingPath: "/s", Targets: []string{"/t1", "/t2"}}
	if err := st.save(r); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(st.path(r.VolumeID))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("record mode %v, %v; want 0600", fi.Mode(), err)
	}
	if di, err := os.Stat(st.dir); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, %v; want 0700", di.Mode(), err)
	}
	got, err := st.load(r.VolumeID)
	if err != nil || got.UserKey != "secret" || len(got.Targets) != 2 {
		t.Fatalf("load: %+v, %v", got, err)
	}
	got.dropTarget("/t1")
	if got.hasTarget("/t1") || !got.hasTarget("/t2") {
		t.Errorf("targets after drop: %v", got.Targets)
	}
	if _, err := st.load(volID("other")); status.Code(csiceph.Status(err, "")) != codes.NotFound {
		t.Errorf("load of a missing record: %v", err)
	}
	if err := os.WriteFile(filepath.Join(st.dir, "junk.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	recs, err := st.list()
	if len(recs) != 1 || err == nil {
		t.Errorf("list with a bad file: %d records, %v; want 1 and an error", len(recs), err)
	}
	if err := st.remove(r.VolumeID); err != nil {
		t.Fatal(err)
	}
	if err := st.remove(r.VolumeID); err != nil {
		t.Errorf("second remove: %v", err)
	}
}

func FuzzDecodeVolumeRecord(f *testing.F) {
	f.Add([]byte(`{"version":1,"volumeID":"v1.YzE.2.img","clusterID":"c1","poolID":2,"image":"img","userID":"admin","userKey":"k","stagingPath":"/s","accessMode":1,"device":"/dev/nbd0","targets":["/t"]}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"volumeID":"x","clusterID":"c","poolID":-1,"image":"i"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeVolumeRecord(b)
		if err != nil {
			return
		}
		if r.VolumeID == "" || r.Image == "" || r.ClusterID == "" || r.PoolID < 0 || r.Version != volumeRecordVersion {
			t.Fatalf("accepted an invalid record: %+v", r)
		}
	})
}

// TestMalformedKey: a userKey that is no Ceph key is the request's fault
// (InvalidArgument), as the controller service says too (controllerserver
// TestMalformedKey): both use one table. Opening the image fails before
// any device is touched, and no record stays.
func TestMalformedKey(t *testing.T) {
	s, _ := newTestServer(t)
	_, err := s.NodeStageVolume(context.Background(), &csi.NodeStageVolumeRequest{VolumeId: volID("badkey"),
		StagingTargetPath: t.TempDir(), VolumeCapability: mountCap(snw, "ext4"),
		Secrets: map[string]string{"userID": "admin", "userKey": "not-a-key"}})
	wantCode(t, "malformed userKey", err, codes.InvalidArgument)
	if recs, err := s.vols.list(); err != nil || len(recs) != 0 {
		t.Errorf("records after a refused stage: %v, %v", recs, err)
	}
}

// TestNewRemovesStaleTemps: a temporary volume record a crash left behind
// is deleted when the server starts; the records stay.
func TestNewRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	st := volumeStore{dir: filepath.Join(dir, "volumes")}
	rec := &volumeRecord{VolumeID: volID("keep"), ClusterID: testCluster, PoolID: 2, Image: "keep", UserID: "admin", UserKey: "k",
		StagingPath: "/s", Device: "/dev/nbd0"}
	if err := st.save(rec); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(st.dir, ".tmp-123-"+filepath.Base(st.path(volID("torn"))))
	if err := os.WriteFile(tmp, []byte(`{"version":1,"volumeID":`), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), Options{NodeID: "n1", StateDir: dir, Mounter: mount.NewFakeMounter(nil),
		Clusters: csiceph.Clusters{testCluster: {ClusterID: testCluster, Monitors: []string{"127.0.0.1:1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temporary record still there: %v", err)
	}
	if got, err := s.vols.load(rec.VolumeID); err != nil || got.Image != "keep" {
		t.Errorf("record after start: %+v, %v", got, err)
	}
}
