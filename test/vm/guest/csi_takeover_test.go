package guest

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/csi-gorbd/csi-gorbd/nbd"
	"github.com/csi-gorbd/csi-gorbd/nbd/memory"
	"github.com/csi-gorbd/csi-gorbd/nbd/nbdnl"
)

// The node side of the migration from ceph-csi (docs/migrating-from-ceph-csi.md),
// on the real kernel: a volume ceph-csi's node plugin staged with krbd
// (mapped through /sys/bus/rbd as `rbd map` does, formatted, mounted at
// <staging>/<volume id>, its image-meta.json beside) is published to a new
// pod by csi-gorbd, running under ceph-csi's driver name, then unstaged:
// unmounted and unmapped the krbd way. The next stage is csi-gorbd's own,
// over NBD, with the data intact.

var v1Mon = regexp.MustCompile(`v1:([0-9.]+:[0-9]+)`)

// krbdMap maps pool/image with the kernel RBD client as `rbd map` does
// and returns the device id.
func krbdMap(t *testing.T, c *hostCeph, pool, image string) string {
	t.Helper()
	if _, err := os.Stat("/sys/bus/rbd/add_single_major"); err != nil {
		t.Fatalf("no krbd in the VM (rbd.ko): %v", err)
	}
	mon := c.MonHost
	if m := v1Mon.FindStringSubmatch(mon); m != nil {
		mon = m[1]
	}
	before := map[string]bool{}
	ents, _ := os.ReadDir("/sys/bus/rbd/devices")
	for _, e := range ents {
		before[e.Name()] = true
	}
	name := strings.TrimPrefix(c.User, "client.")
	add := mon + " name=" + name + ",secret=" + c.Key + " " + pool + " " + image + " -"
	if err := os.WriteFile("/sys/bus/rbd/add_single_major", []byte(add), 0); err != nil {
		t.Fatalf("krbd map %s/%s: %v (dmesg: %s)", pool, image, err, sh(t, "dmesg | tail -5"))
	}
	ents, _ = os.ReadDir("/sys/bus/rbd/devices")
	for _, e := range ents {
		if !before[e.Name()] {
			return e.Name()
		}
	}
	t.Fatal("krbd map made no device")
	return ""
}

func TestCSITakeoverKRBD(t *testing.T) {
	c := needHostCeph(t)
	ctx := testCtx(t, 6*time.Minute)
	clearDmesg(t)
	s := newCSISetup(t, ctx, c)
	sock := filepath.Join(s.Dir, "csi.sock")
	startPlugin(t, ctx, sock, "all", "--endpoint", "unix://"+sock, "--nodeid", "vm-node", "--drivername", "rbd.csi.ceph.com",
		"--clusters", s.Clusters, "--state-dir", filepath.Join(s.Dir, "state"), "--instance-id", s.Instance)
	conn := csiConn(t, sock)
	cc, nc := csi.NewControllerClient(conn), csi.NewNodeClient(conn)
	vc := &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "ext4"}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
	cv, err := cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-krbd-" + s.Instance,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 64 << 20}, VolumeCapabilities: []*csi.VolumeCapability{vc},
		Parameters: s.volumeParams(), Secrets: s.Secrets})
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	volID, image := cv.GetVolume().GetVolumeId(), cv.GetVolume().GetVolumeContext()["imageName"]
	defer cc.DeleteVolume(context.WithoutCancel(ctx), &csi.DeleteVolumeRequest{VolumeId: volID, Secrets: s.Secrets})

	// Before the switch: ceph-csi's node plugin staged and published it.
	id := krbdMap(t, c, s.Pool, image)
	dev := "/dev/rbd" + id
	staging := filepath.Join(s.Dir, "globalmount")
	cephMount := filepath.Join(staging, volID)
	old := filepath.Join(s.Dir, "pods", "old", "data")
	for _, d := range []string{cephMount, old} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	sh(t, "mkfs.ext4 -q -m0 "+dev+" && mount "+dev+" "+cephMount+" && mount --bind "+cephMount+" "+old)
	sum := randomFile(t, filepath.Join(old, "data"), 1<<20)
	sh(t, "sync")
	stash, _ := json.Marshal(map[string]any{"Version": 3, "pool": s.Pool, "radosNamespace": "", "image": image,
		"unmapOptions": "", "accessType": false, "encrypted": false, "device": "", "logDir": "", "logFileStrategy": ""})
	writeFile0600(t, filepath.Join(staging, "image-meta.json"), string(stash))

	// After the switch: a new pod is published from ceph-csi's mount.
	newPod := filepath.Join(s.Dir, "pods", "new", "data")
	if _, err := nc.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: volID, StagingTargetPath: staging,
		TargetPath: newPod, VolumeCapability: vc}); err != nil {
		t.Fatalf("NodePublishVolume of ceph-csi's krbd volume: %v", err)
	}
	if got := sh(t, "sha256sum "+filepath.Join(newPod, "data")); !strings.HasPrefix(got, sum) {
		t.Errorf("new pod reads sha256 %s, want %s", got, sum)
	}
	st, err := nc.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: volID, VolumePath: newPod})
	if err != nil || len(st.GetUsage()) == 0 || st.GetUsage()[0].GetUsed() < 1<<20 {
		t.Errorf("stats of the adopted volume: %v %v", st, err)
	}
	// The pods go; the volume is unstaged the krbd way.
	for _, p := range []string{old, newPod} {
		if _, err := nc.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: volID, TargetPath: p}); err != nil {
			t.Fatalf("NodeUnpublishVolume %s: %v", p, err)
		}
	}
	if _, err := nc.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: volID, StagingTargetPath: staging}); err != nil {
		t.Fatalf("NodeUnstageVolume of ceph-csi's krbd volume: %v", err)
	}
	if _, err := os.Stat("/sys/bus/rbd/devices/" + id); !os.IsNotExist(err) {
		t.Errorf("krbd device %s still mapped: %v", id, err)
	}
	if out := sh(t, "cat /proc/mounts"); strings.Contains(out, dev) || strings.Contains(out, cephMount) {
		t.Errorf("mounts left:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(staging, "image-meta.json")); !os.IsNotExist(err) {
		t.Errorf("image-meta.json left: %v", err)
	}

	// Its next stage is csi-gorbd's, over NBD, data intact.
	if _, err := nc.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: volID, StagingTargetPath: staging,
		VolumeCapability: vc, Secrets: s.Secrets}); err != nil {
		t.Fatalf("NodeStageVolume after the takeover: %v", err)
	}
	if d, _ := mountSource(t, staging); !strings.HasPrefix(d, "/dev/nbd") {
		t.Errorf("staged from %q, want an nbd device", d)
	}
	pod := filepath.Join(s.Dir, "pods", "nbd", "data")
	if _, err := nc.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: volID, StagingTargetPath: staging,
		TargetPath: pod, VolumeCapability: vc}); err != nil {
		t.Fatal(err)
	}
	if got := sh(t, "sha256sum "+filepath.Join(pod, "data")); !strings.HasPrefix(got, sum) {
		t.Errorf("after the takeover: sha256 %s, want %s", got, sum)
	}
	if _, err := nc.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: volID, TargetPath: pod}); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: volID, StagingTargetPath: staging}); err != nil {
		t.Fatal(err)
	}
}

// TestCSIMkfsOptions: a StorageClass's mkfsOptions reach mkfs: the
// filesystem has the inode size, inode ratio, label and features they ask
// for (read from its superblock), none of which the defaults give.
func TestCSIMkfsOptions(t *testing.T) {
	c := needHostCeph(t)
	ctx := testCtx(t, 4*time.Minute)
	s := newCSISetup(t, ctx, c)
	sock := filepath.Join(s.Dir, "csi.sock")
	startPlugin(t, ctx, sock, "all", "--endpoint", "unix://"+sock, "--nodeid", "vm-node",
		"--clusters", s.Clusters, "--state-dir", filepath.Join(s.Dir, "state"), "--instance-id", s.Instance)
	conn := csiConn(t, sock)
	cc, nc := csi.NewControllerClient(conn), csi.NewNodeClient(conn)
	vc := &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "ext4"}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
	params := s.volumeParams()
	params["mkfsOptions"] = "-m0 -I 512 -i 65536 -L gorbdmkfs -O ^metadata_csum"
	cv, err := cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-mkfs-" + s.Instance,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 64 << 20}, VolumeCapabilities: []*csi.VolumeCapability{vc},
		Parameters: params, Secrets: s.Secrets})
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	volID := cv.GetVolume().GetVolumeId()
	defer cc.DeleteVolume(context.WithoutCancel(ctx), &csi.DeleteVolumeRequest{VolumeId: volID, Secrets: s.Secrets})
	if got := cv.GetVolume().GetVolumeContext()["mkfsOptions"]; got != params["mkfsOptions"] {
		t.Fatalf("volume context mkfsOptions %q", got)
	}
	staging := filepath.Join(s.Dir, "staging")
	if _, err := nc.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: volID, StagingTargetPath: staging,
		VolumeCapability: vc, Secrets: s.Secrets, VolumeContext: cv.GetVolume().GetVolumeContext()}); err != nil {
		t.Fatalf("NodeStageVolume: %v", err)
	}
	dev, _ := mountSource(t, staging)
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	sb := make([]byte, 1024)
	_, err = f.ReadAt(sb, 1024)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	inodes, blocks, reserved := le.Uint32(sb[0:]), le.Uint32(sb[4:]), le.Uint32(sb[8:])
	blockSize := uint64(1024) << le.Uint32(sb[24:])
	inodeSize := le.Uint16(sb[88:])
	label := strings.TrimRight(string(sb[120:136]), "\x00")
	bytesPerInode := uint64(blocks) * blockSize / uint64(inodes)
	t.Logf("ext4 on %s: %d inodes, %d blocks of %d, %d reserved, inode size %d, label %q", dev, inodes, blocks, blockSize, reserved, inodeSize, label)
	roCompat := le.Uint32(sb[100:])
	const metadataCsum = 0x400
	if label != "gorbdmkfs" || inodeSize != 512 || bytesPerInode < 60000 || bytesPerInode > 70000 || reserved != 0 ||
		roCompat&metadataCsum != 0 {
		t.Errorf("superblock: label %q, inode size %d, %d bytes per inode, %d blocks reserved, ro_compat %#x; "+
			"want gorbdmkfs, 512, 65536, 0, without metadata_csum", label, inodeSize, bytesPerInode, reserved, roCompat)
	}
	// A context off the allowlist is refused, nothing attached.
	bad := cv.GetVolume().GetVolumeContext()
	bad["mkfsOptions"] = "-d /etc"
	if _, err := nc.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: volID, StagingTargetPath: filepath.Join(s.Dir, "other"),
		VolumeCapability: vc, Secrets: s.Secrets, VolumeContext: bad}); err == nil || !strings.Contains(err.Error(), "mkfsOptions") {
		t.Errorf("stage with mkfsOptions -d /etc: %v", err)
	}
	if _, err := nc.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: volID, StagingTargetPath: staging}); err != nil {
		t.Fatal(err)
	}
}

// TestCSITakeoverNBD: a volume ceph-csi's node staged with rbd-nbd (here a
// userspace NBD server of the test's own, connected over netlink as
// rbd-nbd does, with ext4 on it mounted at <staging>/<volume id>) is
// unstaged by csi-gorbd's node plugin: unmounted, and the device
// disconnected through nbd netlink. No Ceph is involved in that.
func TestCSITakeoverNBD(t *testing.T) {
	needVM(t)
	ctx := testCtx(t, 3*time.Minute)
	t.Setenv("PATH", csiPath)
	dir := t.TempDir()
	const index, size = 6, 64 << 20
	exp := &nbd.Export{Name: "rbd-nbd", Backend: memory.New(size)}
	sock, served := pair(t, ctx, exp)
	got, err := nbdnl.Connect(ctx, []*os.File{sock}, nbdnl.WithIndex(index), nbdnl.WithSize(size), nbdnl.WithBlockSize(4096),
		nbdnl.WithServerFlags(uint64(exp.TransmissionFlags(false))))
	sock.Close()
	if err != nil || got != index {
		t.Fatalf("connect nbd%d: %d %v", index, got, err)
	}
	dev := "/dev/nbd6"
	const volID = "0001-0009-cluster-1-0000000000000002-66666666-2222-4333-8444-555555555555"
	staging := filepath.Join(dir, "globalmount")
	cephMount := filepath.Join(staging, volID)
	if err := os.MkdirAll(cephMount, 0o750); err != nil {
		t.Fatal(err)
	}
	sh(t, "mkfs.ext4 -q "+dev+" && mount "+dev+" "+cephMount+" && echo data > "+cephMount+"/f && sync")
	stash, _ := json.Marshal(map[string]any{"Version": 3, "pool": "rbd", "radosNamespace": "", "image": "csi-vol-66666666",
		"unmapOptions": "nbd:force", "accessType": true, "encrypted": false, "device": dev})
	writeFile0600(t, filepath.Join(staging, "image-meta.json"), string(stash))

	clusters := filepath.Join(dir, "clusters.json")
	writeFile0600(t, clusters, `[{"clusterID":"cluster-1","monitors":["127.0.0.1:1"]}]`)
	psock := filepath.Join(dir, "csi.sock")
	startPlugin(t, ctx, psock, "node", "--endpoint", "unix://"+psock, "--nodeid", "vm-node", "--drivername", "rbd.csi.ceph.com",
		"--clusters", clusters, "--state-dir", filepath.Join(dir, "state"))
	nc := csi.NewNodeClient(csiConn(t, psock))
	if _, err := nc.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: volID, StagingTargetPath: staging}); err != nil {
		t.Fatalf("NodeUnstageVolume of ceph-csi's rbd-nbd volume: %v", err)
	}
	waitDisconnected(t, ctx, index)
	if out := sh(t, "cat /proc/mounts"); strings.Contains(out, cephMount) {
		t.Errorf("ceph-csi's mount left:\n%s", out)
	}
	select {
	case <-served:
	case <-time.After(30 * time.Second):
		t.Error("the rbd-nbd stand-in still serves after the disconnect")
	}
	// The data went through the device: it is in the stand-in's backend.
	buf := make([]byte, 4096)
	if err := exp.Backend.ReadAt(ctx, buf, 1024); err != nil || buf[56] != 0x53 || buf[57] != 0xef {
		t.Errorf("no ext4 superblock in the backend: %v", err)
	}
}
