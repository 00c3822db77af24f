package guest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestCSIBlockAndReadOnly covers what the pod test does not: a raw block
// volume (device bind-mounted onto a file, written and read back with
// O_DIRECT through a second, read-only publish, online expansion of the
// device, then staged MULTI_NODE_READER_ONLY: the device refuses writes),
// and a MULTI_NODE_READER_ONLY filesystem
// (refused while blank, then mounted read-only with its data visible and
// writes refused).
func TestCSIBlockAndReadOnly(t *testing.T) {
	c := needHostCeph(t)
	ctx := testCtx(t, 4*time.Minute)
	clearDmesg(t)
	s := newCSISetup(t, ctx, c)
	sock := filepath.Join(s.Dir, "csi.sock")
	startPlugin(t, ctx, sock, "all", "--endpoint", "unix://"+sock, "--nodeid", "vm-node",
		"--clusters", s.Clusters, "--state-dir", filepath.Join(s.Dir, "state"), "--instance-id", s.Instance)
	conn := csiConn(t, sock)
	cc, nc := csi.NewControllerClient(conn), csi.NewNodeClient(conn)
	mode := func(m csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability_AccessMode {
		return &csi.VolumeCapability_AccessMode{Mode: m}
	}
	create := func(name string, size int64, vc *csi.VolumeCapability) string {
		t.Helper()
		r, err := cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: name + "-" + s.Instance,
			CapacityRange: &csi.CapacityRange{RequiredBytes: size}, VolumeCapabilities: []*csi.VolumeCapability{vc},
			Parameters: s.volumeParams(), Secrets: s.Secrets})
		if err != nil {
			t.Fatalf("CreateVolume %s: %v", name, err)
		}
		id := r.GetVolume().GetVolumeId()
		t.Cleanup(func() {
			cc.DeleteVolume(context.WithoutCancel(ctx), &csi.DeleteVolumeRequest{VolumeId: id, Secrets: s.Secrets})
		})
		return id
	}

	// Raw block.
	blk := &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: mode(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)}
	bid := create("blk", 32<<20, blk)
	staging := filepath.Join(s.Dir, "staging-blk")
	os.MkdirAll(staging, 0o750)

	// Bad input first: a key that is not a cephx key, a valid key that is
	// not the user's, an image that does not exist. Each gets its code and
	// leaves nothing attached or recorded.
	for _, k := range []struct {
		key  string
		want codes.Code
	}{
		{"bm90IGEga2V5", codes.InvalidArgument},
		// type 1 (AES), created 0, 16-byte secret: well formed, wrong.
		{"AQAAAAAAAAAAABAAMDEyMzQ1Njc4OWFiY2RlZg==", codes.PermissionDenied},
	} {
		_, err := nc.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: bid, StagingTargetPath: staging,
			VolumeCapability: blk, Secrets: map[string]string{"userID": s.Secrets["userID"], "userKey": k.key}})
		if status.Code(err) != k.want {
			t.Errorf("stage with key %q: %v, want %v", k.key, err, k.want)
		}
	}
	// The same handle with another journal uuid: no such volume.
	missing := bid[:len(bid)-36] + "00000000-0000-4000-8000-" + csiRandHex() + "00"
	_, err := nc.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: missing, StagingTargetPath: staging,
		VolumeCapability: blk, Secrets: s.Secrets})
	if status.Code(err) != codes.NotFound {
		t.Errorf("stage of a missing image: %v, want NotFound", err)
	}
	for _, sub := range []string{"nbd", "volumes"} {
		if ents, _ := os.ReadDir(filepath.Join(s.Dir, "state", "node", sub)); len(ents) != 0 {
			t.Errorf("state left by refused stages in %s: %v", sub, ents)
		}
	}
	if _, err := nc.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: bid, StagingTargetPath: staging,
		VolumeCapability: blk, Secrets: s.Secrets}); err != nil {
		t.Fatalf("NodeStageVolume block: %v", err)
	}
	if dev, _ := mountSource(t, staging); dev != "" {
		t.Errorf("block volume: staging path mounted from %s", dev)
	}
	rw, ro := filepath.Join(s.Dir, "pods", "b1", "dev"), filepath.Join(s.Dir, "pods", "b2", "dev")
	for _, p := range []struct {
		target string
		ro     bool
	}{{rw, false}, {ro, true}} {
		if _, err := nc.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: bid, StagingTargetPath: staging,
			TargetPath: p.target, VolumeCapability: blk, Readonly: p.ro}); err != nil {
			t.Fatalf("NodePublishVolume block at %s (read-only %v): %v", p.target, p.ro, err)
		}
	}
	sum := randomFile(t, "/tmp/csi-blk", 1<<20)
	sh(t, "dd if=/tmp/csi-blk of="+rw+" bs=1M oflag=direct conv=fsync 2>/dev/null")
	if got := sh(t, "dd if="+ro+" bs=1M count=1 iflag=direct 2>/dev/null | sha256sum"); !strings.HasPrefix(got, sum) {
		t.Errorf("read through the read-only publish: sha256 %s, want %s", got, sum)
	}
	// A read-only mount does not stop writes through a device node (the
	// CO's device cgroup does): only the bind mount's flag is checked.
	if _, opts := mountSource(t, ro); !strings.HasPrefix(opts, "ro") {
		t.Errorf("read-only block publish mounted %q", opts)
	}
	if _, err := cc.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: bid,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 48 << 20}, Secrets: s.Secrets, VolumeCapability: blk}); err != nil {
		t.Fatalf("ControllerExpandVolume: %v", err)
	}
	if _, err := nc.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: bid, VolumePath: rw,
		StagingTargetPath: staging, CapacityRange: &csi.CapacityRange{RequiredBytes: 48 << 20}, VolumeCapability: blk}); err != nil {
		t.Fatalf("NodeExpandVolume block: %v", err)
	}
	if got := strings.TrimSpace(sh(t, "blockdev --getsize64 "+rw)); got != strconv.Itoa(48<<20) {
		t.Errorf("device size after expansion: %s, want %d", got, 48<<20)
	}
	st, err := nc.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: bid, VolumePath: rw})
	if err != nil || len(st.GetUsage()) != 1 || st.GetUsage()[0].GetTotal() != 48<<20 {
		t.Errorf("NodeGetVolumeStats block: %v, %v", st, err)
	}
	for _, tp := range []string{rw, ro} {
		if _, err := nc.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: bid, TargetPath: tp}); err != nil {
			t.Fatalf("NodeUnpublishVolume %s: %v", tp, err)
		}
		if _, err := os.Stat(tp); !os.IsNotExist(err) {
			t.Errorf("%s still there after NodeUnpublishVolume: %v", tp, err)
		}
	}
	if _, err := nc.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: bid, StagingTargetPath: staging}); err != nil {
		t.Fatalf("NodeUnstageVolume block: %v", err)
	}
	// A reader-only access mode attaches the device read-only: the kernel
	// refuses writes whatever the mount says.
	blkro := &csi.VolumeCapability{AccessType: blk.AccessType, AccessMode: mode(csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY)}
	if _, err := nc.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: bid, StagingTargetPath: staging,
		VolumeCapability: blkro, Secrets: s.Secrets}); err != nil {
		t.Fatalf("NodeStageVolume block read-only: %v", err)
	}
	if _, err := nc.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: bid, StagingTargetPath: staging,
		TargetPath: ro, VolumeCapability: blkro, Readonly: true}); err != nil {
		t.Fatalf("NodePublishVolume block read-only: %v", err)
	}
	if got := sh(t, "dd if="+ro+" bs=1M count=1 iflag=direct 2>/dev/null | sha256sum"); !strings.HasPrefix(got, sum) {
		t.Errorf("read of the read-only device: sha256 %s, want %s", got, sum)
	}
	if out, err := shOK("dd if=/tmp/csi-blk of=" + ro + " bs=1M count=1 oflag=direct 2>&1"); err == nil {
		t.Errorf("write to a device attached read-only succeeded: %s", out)
	}
	if _, err := nc.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: bid, TargetPath: ro}); err != nil {
		t.Fatalf("NodeUnpublishVolume: %v", err)
	}
	if _, err := nc.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: bid, StagingTargetPath: staging}); err != nil {
		t.Fatalf("NodeUnstageVolume: %v", err)
	}

	// Read-only many: refused while blank, then read-only with data.
	fsw := &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: mode(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)}
	fsro := &csi.VolumeCapability{AccessType: fsw.AccessType,
		AccessMode: mode(csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY)}
	rid := create("rox", 32<<20, fsw)
	staging = filepath.Join(s.Dir, "staging-rox")
	os.MkdirAll(staging, 0o750)
	stage := &csi.NodeStageVolumeRequest{VolumeId: rid, StagingTargetPath: staging, VolumeCapability: fsro, Secrets: s.Secrets}
	_, err = nc.NodeStageVolume(ctx, stage)
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("read-only stage of a blank volume: %v, want FailedPrecondition", err)
	}
	stage.VolumeCapability = fsw
	if _, err := nc.NodeStageVolume(ctx, stage); err != nil {
		t.Fatalf("NodeStageVolume rw: %v", err)
	}
	want := randomFile(t, staging+"/data", 256<<10)
	if _, err := nc.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: rid, StagingTargetPath: staging}); err != nil {
		t.Fatalf("NodeUnstageVolume: %v", err)
	}
	stage.VolumeCapability = fsro
	if _, err := nc.NodeStageVolume(ctx, stage); err != nil {
		t.Fatalf("NodeStageVolume read-only: %v", err)
	}
	if _, opts := mountSource(t, staging); !strings.HasPrefix(opts, "ro") {
		t.Errorf("read-only volume mounted %q", opts)
	}
	if got := fileSum(t, staging+"/data"); got != want {
		t.Errorf("data on the read-only volume: sha256 %s, want %s", got, want)
	}
	if err := os.WriteFile(staging+"/new", []byte("x"), 0o600); err == nil {
		t.Error("write to the read-only volume succeeded")
	}
	target := filepath.Join(s.Dir, "pods", "r1", "vol")
	if _, err := nc.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: rid, StagingTargetPath: staging,
		TargetPath: target, VolumeCapability: fsro, Readonly: true}); err != nil {
		t.Fatalf("NodePublishVolume read-only: %v", err)
	}
	if _, opts := mountSource(t, target); !strings.HasPrefix(opts, "ro") {
		t.Errorf("read-only publish mounted %q", opts)
	}
	if _, err := nc.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: rid, TargetPath: target}); err != nil {
		t.Fatalf("NodeUnpublishVolume: %v", err)
	}
	if _, err := nc.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: rid, StagingTargetPath: staging}); err != nil {
		t.Fatalf("NodeUnstageVolume read-only: %v", err)
	}
	if bad := kernelErrors(t); len(bad) > 0 {
		t.Errorf("kernel reported errors:\n%s", strings.Join(bad, "\n"))
	}
	for _, id := range []string{bid, rid} {
		if _, err := cc.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id, Secrets: s.Secrets}); err != nil {
			t.Errorf("DeleteVolume %s: %v", id, err)
		}
	}
}
