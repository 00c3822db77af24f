package nodeserver

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/mount-utils"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/nbd/attach"
)

// recordingKernel records Disconnect calls.
type recordingKernel struct {
	mu           sync.Mutex
	disconnected []int
}

func (k *recordingKernel) Connect(context.Context, []*os.File, attach.ConnectParams) (int, error) {
	return 0, os.ErrPermission
}
func (k *recordingKernel) Reconfigure(context.Context, int, []*os.File, attach.ReconfigureParams) error {
	return nil
}
func (k *recordingKernel) Disconnect(_ context.Context, i int) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.disconnected = append(k.disconnected, i)
	return nil
}
func (k *recordingKernel) Owns(context.Context, int, string) (bool, error) { return false, nil }

// cephCSIStaged lays out what ceph-csi's node plugin leaves for a staged
// volume: the stash, its mount at <staging>/<volume id>, and for krbd the
// sysfs device.
func cephCSIStaged(t *testing.T, fm *mount.FakeMounter, sys, volID string, st cephCSIStash, krbdID string) string {
	t.Helper()
	staging := t.TempDir()
	b, _ := json.Marshal(st)
	if err := os.WriteFile(filepath.Join(staging, cephCSIStashFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(staging, volID)
	if err := os.Mkdir(mnt, 0o750); err != nil {
		t.Fatal(err)
	}
	dev := st.DevicePath
	if krbdID != "" {
		d := filepath.Join(sys, "devices", krbdID)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for k, v := range map[string]string{"pool": st.Pool, "pool_ns": st.RadosNamespace, "name": st.ImageName, "current_snap": "-"} {
			_ = os.WriteFile(filepath.Join(d, k), []byte(v+"\n"), 0o644)
		}
		dev = "/dev/rbd" + krbdID
	}
	fm.MountPoints = append(fm.MountPoints, mount.MountPoint{Device: dev, Path: mnt, Type: "ext4"})
	return staging
}

// TestForeignVolumes: volumes ceph-csi's node plugin staged (krbd and
// rbd-nbd) are adopted at their first call after the switch: published
// from ceph-csi's mount, and unstaged by unmounting it and detaching the
// device the way its mapper attached it.
func TestForeignVolumes(t *testing.T) {
	sys := t.TempDir()
	if err := os.WriteFile(filepath.Join(sys, "remove_single_major"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fm := mount.NewFakeMounter(nil)
	k := &recordingKernel{}
	s, err := New(context.Background(), Options{NodeID: "n1", StateDir: t.TempDir(), Mounter: fm, Kernel: k, SysRBD: sys,
		Clusters: map[string]csiceph.ClusterInfo{testCluster: {ClusterID: testCluster, Monitors: []string{"127.0.0.1:1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const krbdVol = "0001-0009-cluster-1-0000000000000002-11111111-2222-3333-4444-555555555555"
	const nbdVol = "0001-0009-cluster-1-0000000000000002-66666666-2222-3333-4444-555555555555"
	krbdStaging := cephCSIStaged(t, fm, sys, krbdVol, cephCSIStash{Version: 3, Pool: "rbd", RadosNamespace: "ns1",
		ImageName: "csi-vol-11111111-2222-3333-4444-555555555555", UnmapOptions: "krbd:force;nbd:x"}, "4")
	nbdStaging := cephCSIStaged(t, fm, sys, nbdVol, cephCSIStash{Version: 3, Pool: "rbd",
		ImageName: "csi-vol-66666666-2222-3333-4444-555555555555", NbdAccess: true, DevicePath: "/dev/nbd3"}, "")

	// A new pod of the krbd volume: the kubelet publishes without staging.
	target := filepath.Join(t.TempDir(), "mount")
	if _, err := s.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: krbdVol, StagingTargetPath: krbdStaging,
		TargetPath: target, VolumeCapability: mountCap(snw, "ext4")}); err != nil {
		t.Fatalf("publish of ceph-csi's krbd volume: %v", err)
	}
	if m, _ := fm.IsMountPoint(target); !m {
		t.Error("not published")
	}
	// The fake mounter logs a bind mount with the device of its source.
	log := fm.GetLog()
	if len(log) == 0 || log[len(log)-1].Source != "/dev/rbd4" {
		t.Errorf("published from %+v, want a bind mount of ceph-csi's mount of /dev/rbd4", log)
	}
	// A repeated stage (kubelet restart) keeps it as it is.
	if _, err := s.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: krbdVol, StagingTargetPath: krbdStaging,
		VolumeCapability: mountCap(snw, "ext4"), Secrets: goodSC}); err != nil {
		t.Errorf("stage of an adopted volume: %v", err)
	}
	_, err = s.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: krbdVol, StagingTargetPath: krbdStaging})
	wantCode(t, "unstage while published", err, 9) // FailedPrecondition
	if _, err := s.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: krbdVol, TargetPath: target}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: krbdVol, StagingTargetPath: krbdStaging}); err != nil {
		t.Fatalf("unstage of ceph-csi's krbd volume: %v", err)
	}
	if m, _ := fm.IsMountPoint(filepath.Join(krbdStaging, krbdVol)); m {
		t.Error("ceph-csi's mount is still there")
	}
	if b, _ := os.ReadFile(filepath.Join(sys, "remove_single_major")); string(b) != "4 force" {
		t.Errorf("remove_single_major got %q, want \"4 force\" (unmapOptions krbd:force)", b)
	}
	if _, err := os.Stat(filepath.Join(krbdStaging, cephCSIStashFile)); !os.IsNotExist(err) {
		t.Errorf("stash left: %v", err)
	}
	if _, err := s.vols.load(krbdVol); !isNotStaged(err) {
		t.Errorf("record left: %v", err)
	}

	// The rbd-nbd volume: unstaged straight away (its pod was gone).
	if _, err := s.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: nbdVol, StagingTargetPath: nbdStaging}); err != nil {
		t.Fatalf("unstage of ceph-csi's rbd-nbd volume: %v", err)
	}
	if len(k.disconnected) != 1 || k.disconnected[0] != 3 {
		t.Errorf("nbd disconnects %v, want [3]", k.disconnected)
	}
	// Nothing left to do a second time.
	if _, err := s.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: nbdVol, StagingTargetPath: nbdStaging}); err != nil {
		t.Errorf("repeated unstage: %v", err)
	}
	if len(k.disconnected) != 1 {
		t.Errorf("repeated unstage disconnected again: %v", k.disconnected)
	}
}

func TestUnmapForce(t *testing.T) {
	for opts, want := range map[string]bool{"": false, "krbd:force": true, "force": true, "nbd:force": false,
		"krbd:lock_on_read,force;nbd:try-netlink": true, "krbd:lock_on_read": false} {
		if got := unmapForce(opts); got != want {
			t.Errorf("unmapForce(%q) = %v", opts, got)
		}
	}
}
