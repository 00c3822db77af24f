package guest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// startPlugin starts "csi-gorbd all" with args, its log into the test
// log, and waits until its endpoint answers Probe.
func startPlugin(t *testing.T, ctx context.Context, sock string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Getenv("GORBD_BIN"), args...)
	cmd.Env = append(os.Environ(), "PATH="+csiPath)
	cmd.Stdout = testWriter{t, "plugin"}
	cmd.Stderr = testWriter{t, "plugin"}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	conn := csiConn(t, sock)
	id := csi.NewIdentityClient(conn)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		r, err := id.Probe(pctx, &csi.ProbeRequest{})
		cancel()
		if err == nil && r.GetReady().GetValue() {
			return cmd
		}
		select {
		case <-ctx.Done():
			t.Fatalf("plugin did not answer Probe: %v", err)
		case <-tick.C:
		}
	}
}

func csiConn(t *testing.T, sock string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// mountSource is the device mounted at dir, from /proc/mounts.
func mountSource(t *testing.T, dir string) (dev, opts string) {
	t.Helper()
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 4 && f[1] == dir {
			dev, opts = f[0], f[3]
		}
	}
	return dev, opts
}

func statfsBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Blocks) * int64(st.Bsize)
}

// TestCSIPodRestart is the pod-like flow through the CSI API against
// "csi-gorbd all" (a separate process): CreateVolume, NodeStageVolume
// (blank image: mkfs.ext4), NodePublishVolume, a write loop of fsync'ed
// files with checksums on the published path, kill -9 of the plugin in
// the middle of the loop, a restart (which takes the device over before
// it serves gRPC), the loop finishes; then online expansion
// (ControllerExpandVolume + NodeExpandVolume), NodeUnpublishVolume, a
// clean fsck, NodeUnstageVolume, and a second stage that reads every
// file back from RADOS through a fresh attach. No I/O error, no
// read-only remount, nothing left in the pool.
func TestCSIPodRestart(t *testing.T) {
	c := needHostCeph(t)
	ctx := testCtx(t, 6*time.Minute)
	clearDmesg(t)
	s := newCSISetup(t, ctx, c)
	state, sock := filepath.Join(s.Dir, "state"), filepath.Join(s.Dir, "csi.sock")
	args := []string{"all", "--endpoint", "unix://" + sock, "--nodeid", "vm-node", "--clusters", s.Clusters,
		"--state-dir", state, "--instance-id", s.Instance, "-v", "2"}
	plugin := startPlugin(t, ctx, sock, args...)
	conn := csiConn(t, sock)
	cc, nc := csi.NewControllerClient(conn), csi.NewNodeClient(conn)

	vc := &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "ext4"}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
	// With exclusive-lock the killed plugin leaves its lock and header
	// watch behind (the watch for 30 s): the restarted plugin must take
	// them over from its state directory's owner file, not wait.
	params := s.volumeParams()
	params["imageFeatures"] = "layering,exclusive-lock,object-map,fast-diff"
	cv, err := cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-" + s.Instance,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 64 << 20}, VolumeCapabilities: []*csi.VolumeCapability{vc},
		Parameters: params, Secrets: s.Secrets})
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	volID := cv.GetVolume().GetVolumeId()
	deleted := false
	defer func() {
		if !deleted {
			cc.DeleteVolume(context.WithoutCancel(ctx), &csi.DeleteVolumeRequest{VolumeId: volID, Secrets: s.Secrets})
		}
	}()
	staging, target := filepath.Join(s.Dir, "staging"), filepath.Join(s.Dir, "pods", "p1", "volumes", "data")
	if err := os.MkdirAll(staging, 0o750); err != nil {
		t.Fatal(err)
	}
	stage := &csi.NodeStageVolumeRequest{VolumeId: volID, StagingTargetPath: staging, VolumeCapability: vc,
		Secrets: s.Secrets, VolumeContext: cv.GetVolume().GetVolumeContext()}
	if _, err := nc.NodeStageVolume(ctx, stage); err != nil {
		t.Fatalf("NodeStageVolume: %v", err)
	}
	dev, _ := mountSource(t, staging)
	if !strings.HasPrefix(dev, "/dev/nbd") {
		t.Fatalf("staging path mounted from %q, want an nbd device", dev)
	}
	publish := &csi.NodePublishVolumeRequest{VolumeId: volID, StagingTargetPath: staging, TargetPath: target,
		VolumeCapability: vc, VolumeContext: cv.GetVolume().GetVolumeContext()}
	if _, err := nc.NodePublishVolume(ctx, publish); err != nil {
		t.Fatalf("NodePublishVolume: %v", err)
	}
	if _, err := nc.NodePublishVolume(ctx, publish); err != nil {
		t.Fatalf("NodePublishVolume repeated: %v", err)
	}
	t.Logf("volume %s staged on %s, published at %s", volID, dev, target)
	pre := randomFile(t, "/tmp/csi-pre", 2<<20)
	sh(t, "dd if=/tmp/csi-pre of="+target+"/pre bs=1M conv=fsync 2>/dev/null")

	const files = 16
	loop := startWriteLoop(t, ctx, target, files)
	plugin.Process.Signal(syscall.SIGKILL)
	plugin.Wait()
	killed := time.Now()
	t.Logf("plugin killed with -9 after %d files", lines("/tmp/sums"))
	plugin = startPlugin(t, ctx, sock, args...)
	t.Logf("plugin restarted and serving %v after the kill", time.Since(killed).Round(time.Millisecond))
	if err := waitCmd(t, ctx, loop); err != nil {
		t.Fatalf("write loop failed across the restart: %v\n%s", err, dmesgTail(30))
	}
	t.Logf("write loop finished %v after the kill", time.Since(killed).Round(time.Millisecond))
	if _, opts := mountSource(t, target); !strings.HasPrefix(opts, "rw") {
		t.Errorf("published path mounted %q after the restart, want rw", opts)
	}
	if h, err := nc.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: volID}); err != nil {
		t.Errorf("NodeGetVolumeHealth: %v", err)
	} else if e := h.GetVolumeHealth().GetHealthStatuses(); len(e) != 0 {
		t.Errorf("volume unhealthy after the restart: %v", e)
	}

	// Online expansion through the restarted plugin.
	before := statfsBytes(t, target)
	if _, err := cc.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: volID,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 128 << 20}, Secrets: s.Secrets, VolumeCapability: vc}); err != nil {
		t.Fatalf("ControllerExpandVolume: %v", err)
	}
	ex, err := nc.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: volID, VolumePath: target,
		StagingTargetPath: staging, CapacityRange: &csi.CapacityRange{RequiredBytes: 128 << 20}, VolumeCapability: vc})
	if err != nil {
		t.Fatalf("NodeExpandVolume: %v", err)
	}
	if after := statfsBytes(t, target); ex.GetCapacityBytes() != 128<<20 || after < before+48<<20 {
		t.Errorf("expand: capacity %d, filesystem %d -> %d bytes", ex.GetCapacityBytes(), before, after)
	}
	st, err := nc.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: volID, VolumePath: target})
	if err != nil || len(st.GetUsage()) != 2 || st.GetUsage()[0].GetTotal() < 100<<20 {
		t.Errorf("NodeGetVolumeStats: %v, %v", st, err)
	}
	if bad := kernelErrors(t); len(bad) > 0 {
		t.Errorf("kernel reported errors:\n%s", strings.Join(bad, "\n"))
	}

	if _, err := nc.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: volID, TargetPath: target}); err != nil {
		t.Fatalf("NodeUnpublishVolume: %v", err)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("target path still there after NodeUnpublishVolume: %v", err)
	}
	// fsck needs the filesystem unmounted while the device is still
	// attached; NodeUnstageVolume then finds the staging path unmounted.
	sh(t, "umount "+staging)
	if out, err := shOK("fsck.ext4 -fn " + dev); err != nil {
		t.Errorf("fsck after the restart: %v\n%s", err, out)
	}
	if _, err := nc.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: volID, StagingTargetPath: staging}); err != nil {
		t.Fatalf("NodeUnstageVolume: %v", err)
	}
	if _, err := nc.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: volID, StagingTargetPath: staging}); err != nil {
		t.Fatalf("NodeUnstageVolume repeated: %v", err)
	}

	// Stage again: a fresh attach reads everything back from RADOS.
	dropCaches(t)
	if _, err := nc.NodeStageVolume(ctx, stage); err != nil {
		t.Fatalf("NodeStageVolume again: %v", err)
	}
	if got := fileSum(t, staging+"/pre"); got != pre {
		t.Errorf("pre-restart file changed")
	}
	sums, _ := os.ReadFile("/tmp/sums")
	verified := 0
	for _, l := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		sum, name, _ := strings.Cut(l, " ")
		if got := fileSum(t, staging+"/"+name); got != sum {
			t.Errorf("%s: sha256 %s, want %s", name, got, sum)
		}
		verified++
	}
	if verified != files {
		t.Errorf("verified %d files, want %d", verified, files)
	}
	t.Logf("%d files and the pre-restart file verified after a fresh attach", verified)
	if _, err := nc.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: volID, StagingTargetPath: staging}); err != nil {
		t.Fatalf("NodeUnstageVolume: %v", err)
	}
	// The killed plugin's header watch stays on the OSD until its watch
	// timeout (osd_client_watch_timeout, 30 s): until then DeleteVolume
	// answers FailedPrecondition ("has 1 watchers") and, like the
	// external-provisioner, we retry.
	dctx, dcancel := context.WithTimeout(ctx, 90*time.Second)
	defer dcancel()
	for {
		_, err := cc.DeleteVolume(dctx, &csi.DeleteVolumeRequest{VolumeId: volID, Secrets: s.Secrets})
		if err == nil {
			break
		}
		if status.Code(err) != codes.FailedPrecondition || dctx.Err() != nil {
			t.Fatalf("DeleteVolume: %v", err)
		}
		t.Logf("DeleteVolume (retrying): %v", err)
		select {
		case <-dctx.Done():
		case <-time.After(3 * time.Second):
		}
	}
	deleted = true
	if ents, _ := os.ReadDir(filepath.Join(state, "node", "nbd")); len(ents) != 0 {
		t.Errorf("nbd state left: %v", ents)
	}
	if ents, _ := os.ReadDir(filepath.Join(state, "node", "volumes")); len(ents) != 0 {
		t.Errorf("volume records left: %v", ents)
	}
	plugin.Process.Signal(syscall.SIGTERM)
	if err := waitCmd(t, ctx, plugin); err != nil {
		t.Errorf("plugin exit after SIGTERM: %v", err)
	}
}
