package guest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// encVol is a CSI volume of the encryption test and where it is staged.
type encVol struct {
	vol             *csi.Volume
	staging, target string
	stage           *csi.NodeStageVolumeRequest
	deleted         bool
}

// TestCSIEncrypted is the CSI lifecycle of an encrypted volume through
// "csi-gorbd all" (a process): a StorageClass with encrypted: "true" and
// ceph-csi's metadata KMS (a passphrase per volume, sealed in the image
// metadata with the node-stage secret's encryptionPassphrase).
// CreateVolume formats the LUKS2 header; NodeStageVolume unlocks it in
// the plugin and the kernel gets a plaintext device of the capacity with
// 4096-byte logical blocks; a write loop survives kill -9 of the plugin
// (the restart reopens the device with the key sealed in its state, no
// secrets); the image holds no plaintext; a snapshot's restore and a
// clone are staged and read the data with passphrases of their own; an
// online expansion grows the plaintext and the filesystem; a missing
// encryptionPassphrase fails NodeStageVolume with InvalidArgument and a
// wrong one with PermissionDenied, both naming the node-stage secret; the
// state directory holds no key or passphrase; everything is deleted.
func TestCSIEncrypted(t *testing.T) {
	c := needHostCeph(t)
	ctx := testCtx(t, 15*time.Minute)
	clearDmesg(t)
	s := newCSISetup(t, ctx, c)
	const passphrase = "vm-encryption-passphrase-1"
	s.Secrets["encryptionPassphrase"] = passphrase
	kmsConfig := filepath.Join(s.Dir, "kms.json")
	writeFile0600(t, kmsConfig, `{"vm-meta": {"encryptionKMSType": "metadata"}}`)
	state, sock := filepath.Join(s.Dir, "state"), filepath.Join(s.Dir, "csi.sock")
	args := []string{"all", "--endpoint", "unix://" + sock, "--nodeid", "vm-node", "--clusters", s.Clusters,
		"--state-dir", state, "--instance-id", s.Instance, "-v", "2",
		"--kms-config", kmsConfig, "--volume-key-dir", "/run/csi-gorbd-keys", "--encryption-kdf", cheapKDF}
	plugin := startPlugin(t, ctx, sock, args...)
	conn := csiConn(t, sock)
	cc, nc := csi.NewControllerClient(conn), csi.NewNodeClient(conn)
	vc := &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "ext4"}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
	params := s.volumeParams()
	params["imageFeatures"] = "layering,exclusive-lock,object-map,fast-diff"
	params["encrypted"] = "true"
	params["encryptionKMSID"] = "vm-meta"
	var vols []*encVol
	create := func(name string, size int64, src *csi.VolumeContentSource) *encVol {
		t.Helper()
		start := time.Now()
		r, err := cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: name, CapacityRange: &csi.CapacityRange{RequiredBytes: size},
			VolumeCapabilities: []*csi.VolumeCapability{vc}, Parameters: params, Secrets: s.Secrets, VolumeContentSource: src})
		if err != nil {
			t.Fatalf("CreateVolume %s: %v", name, err)
		}
		v := &encVol{vol: r.GetVolume(), staging: filepath.Join(s.Dir, name, "staging"), target: filepath.Join(s.Dir, name, "pod", "data")}
		os.MkdirAll(v.staging, 0o750)
		v.stage = &csi.NodeStageVolumeRequest{VolumeId: v.vol.GetVolumeId(), StagingTargetPath: v.staging, VolumeCapability: vc,
			Secrets: s.Secrets, VolumeContext: v.vol.GetVolumeContext()}
		vols = append(vols, v)
		t.Logf("CreateVolume %s (%d bytes) in %v", name, v.vol.GetCapacityBytes(), time.Since(start).Round(time.Millisecond))
		return v
	}
	defer func() {
		for _, v := range vols {
			if !v.deleted {
				cc.DeleteVolume(context.WithoutCancel(ctx), &csi.DeleteVolumeRequest{VolumeId: v.vol.GetVolumeId(), Secrets: s.Secrets})
			}
		}
	}()
	stage := func(v *encVol) string {
		t.Helper()
		start := time.Now()
		if _, err := nc.NodeStageVolume(ctx, v.stage); err != nil {
			t.Fatalf("NodeStageVolume %s: %v", v.vol.GetVolumeId(), err)
		}
		dev, _ := mountSource(t, v.staging)
		if !strings.HasPrefix(dev, "/dev/nbd") {
			t.Fatalf("staging path mounted from %q", dev)
		}
		if got := blockdev(t, "--getss", dev); got != 4096 {
			t.Errorf("%s: %d-byte logical blocks, want the LUKS sector (4096)", dev, got)
		}
		if got := blockdev(t, "--getsize64", dev); got != v.vol.GetCapacityBytes() {
			t.Errorf("%s: %d bytes, want the capacity %d", dev, got, v.vol.GetCapacityBytes())
		}
		t.Logf("NodeStageVolume %s on %s in %v", v.vol.GetVolumeContext()["imageName"], dev, time.Since(start).Round(time.Millisecond))
		return dev
	}
	unstage := func(v *encVol) {
		t.Helper()
		if _, err := nc.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: v.vol.GetVolumeId(), StagingTargetPath: v.staging}); err != nil {
			t.Fatalf("NodeUnstageVolume: %v", err)
		}
	}

	v := create("pvc-enc-"+s.Instance, 64<<20, nil)
	dev := stage(v)
	publish := &csi.NodePublishVolumeRequest{VolumeId: v.vol.GetVolumeId(), StagingTargetPath: v.staging, TargetPath: v.target,
		VolumeCapability: vc, VolumeContext: v.vol.GetVolumeContext()}
	if _, err := nc.NodePublishVolume(ctx, publish); err != nil {
		t.Fatalf("NodePublishVolume: %v", err)
	}
	pre := randomFile(t, "/tmp/enc-pre", 2<<20)
	sh(t, "dd if=/tmp/enc-pre of="+v.target+"/pre bs=1M conv=fsync 2>/dev/null")
	marker := bytes.Repeat([]byte("GORBD-PLAINTEXT-MARKER!!"), 1<<16/24)
	if err := os.WriteFile(v.target+"/marker", bytes.Repeat(marker, 16), 0o600); err != nil {
		t.Fatal(err)
	}
	sh(t, "sync")
	checkStateClean(t, state, passphrase)

	const files = 12
	loop := startWriteLoop(t, ctx, v.target, files)
	plugin.Process.Signal(syscall.SIGKILL)
	plugin.Wait()
	killed := time.Now()
	t.Logf("plugin killed with -9 after %d files", lines("/tmp/sums"))
	plugin = startPlugin(t, ctx, sock, args...)
	t.Logf("plugin restarted and serving %v after the kill", time.Since(killed).Round(time.Millisecond))
	if err := waitCmd(t, ctx, loop); err != nil {
		t.Fatalf("write loop failed across the restart: %v\n%s", err, dmesgTail(30))
	}
	if _, opts := mountSource(t, v.target); !strings.HasPrefix(opts, "rw") {
		t.Errorf("published path mounted %q after the restart, want rw", opts)
	}
	sh(t, "sync")
	checkCiphertext(t, ctx, s, v.vol, marker[:64])

	sn, err := cc.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap-enc-" + s.Instance, SourceVolumeId: v.vol.GetVolumeId(),
		Secrets: s.Secrets, Parameters: map[string]string{"snapshotNamePrefix": s.Prefix + "snap-"}})
	if err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	if sn.GetSnapshot().GetSizeBytes() != 64<<20 {
		t.Errorf("snapshot size %d, want the plaintext 64 MiB", sn.GetSnapshot().GetSizeBytes())
	}
	sh(t, "echo after-snapshot > "+v.target+"/post && sync")

	// Online expansion of the published volume.
	before := statfsBytes(t, v.target)
	if _, err := cc.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: v.vol.GetVolumeId(),
		CapacityRange: &csi.CapacityRange{RequiredBytes: 128 << 20}, Secrets: s.Secrets, VolumeCapability: vc}); err != nil {
		t.Fatalf("ControllerExpandVolume: %v", err)
	}
	ex, err := nc.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: v.vol.GetVolumeId(), VolumePath: v.target,
		StagingTargetPath: v.staging, CapacityRange: &csi.CapacityRange{RequiredBytes: 128 << 20}, VolumeCapability: vc})
	if err != nil {
		t.Fatalf("NodeExpandVolume: %v", err)
	}
	if after := statfsBytes(t, v.target); ex.GetCapacityBytes() != 128<<20 || blockdev(t, "--getsize64", dev) != 128<<20 || after < before+48<<20 {
		t.Errorf("expand: capacity %d, device %d, filesystem %d -> %d bytes", ex.GetCapacityBytes(), blockdev(t, "--getsize64", dev), before, after)
	}
	v.vol.CapacityBytes = 128 << 20 // a later stage shows the expanded plaintext

	// A restore and a clone, staged beside the source.
	snapSrc := &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{
		SnapshotId: sn.GetSnapshot().GetSnapshotId()}}}
	restore := create("pvc-enc-restore-"+s.Instance, sn.GetSnapshot().GetSizeBytes(), snapSrc)
	clone := create("pvc-enc-clone-"+s.Instance, 160<<20, &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
		Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: v.vol.GetVolumeId()}}})
	// Wrong and missing keys name the secret to fix and leave nothing.
	for _, k := range []struct {
		pass string
		code codes.Code
		says string
	}{{"", codes.InvalidArgument, "has no encryptionPassphrase"}, {"not-the-passphrase", codes.PermissionDenied, "does not open"}} {
		bad := &csi.NodeStageVolumeRequest{VolumeId: restore.vol.GetVolumeId(), StagingTargetPath: restore.staging, VolumeCapability: vc,
			VolumeContext: restore.vol.GetVolumeContext(),
			Secrets:       map[string]string{"userID": s.Secrets["userID"], "userKey": s.Secrets["userKey"]}}
		if k.pass != "" {
			bad.Secrets["encryptionPassphrase"] = k.pass
		}
		_, err := nc.NodeStageVolume(ctx, bad)
		if status.Code(err) != k.code || !strings.Contains(fmtErr(err), "node-stage secret") || !strings.Contains(fmtErr(err), k.says) ||
			strings.Contains(fmtErr(err), passphrase) {
			t.Errorf("stage with encryptionPassphrase %q: %v, want %v naming the node-stage secret", k.pass, err, k.code)
		}
		if m, _ := mountSource(t, restore.staging); m != "" {
			t.Errorf("refused stage left a mount: %s", m)
		}
	}
	for _, w := range []struct {
		v    *encVol
		post bool
	}{{restore, false}, {clone, true}} {
		stage(w.v)
		if got := fileSum(t, w.v.staging+"/pre"); got != pre {
			t.Errorf("%s: pre file differs", w.v.vol.GetVolumeId())
		}
		if _, err := os.Stat(w.v.staging + "/post"); (err == nil) != w.post {
			t.Errorf("%s: post-snapshot file present %v, want %v", w.v.vol.GetVolumeId(), err == nil, w.post)
		}
		unstage(w.v)
	}

	if _, err := nc.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: v.vol.GetVolumeId(), TargetPath: v.target}); err != nil {
		t.Fatalf("NodeUnpublishVolume: %v", err)
	}
	sh(t, "umount "+v.staging)
	if out, err := shOK("fsck.ext4 -fn " + dev); err != nil {
		t.Errorf("fsck after the restart: %v\n%s", err, out)
	}
	unstage(v)
	// A fresh stage reads every file of the loop back from RADOS.
	dropCaches(t)
	stage(v)
	sums, _ := os.ReadFile("/tmp/sums")
	verified := 0
	for _, l := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		sum, name, _ := strings.Cut(l, " ")
		if got := fileSum(t, v.staging+"/"+name); got != sum {
			t.Errorf("%s: sha256 %s, want %s", name, got, sum)
		}
		verified++
	}
	if verified != files {
		t.Errorf("verified %d files, want %d", verified, files)
	}
	unstage(v)
	if bad := kernelErrors(t); len(bad) > 0 {
		t.Errorf("kernel reported errors:\n%s", strings.Join(bad, "\n"))
	}

	for _, d := range []*encVol{restore, clone} {
		deleteRetry(t, ctx, cc, d.vol.GetVolumeId(), s.Secrets)
		d.deleted = true
	}
	if _, err := cc.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: sn.GetSnapshot().GetSnapshotId(), Secrets: s.Secrets}); err != nil {
		t.Fatalf("DeleteSnapshot: %v", err)
	}
	deleteRetry(t, ctx, cc, v.vol.GetVolumeId(), s.Secrets)
	v.deleted = true
	plugin.Process.Signal(syscall.SIGTERM)
	if err := waitCmd(t, ctx, plugin); err != nil {
		t.Errorf("plugin exit after SIGTERM: %v", err)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// deleteRetry deletes a volume, retrying while the killed plugin's header
// watch lingers (FailedPrecondition "has 1 watchers"), as the provisioner
// would.
func deleteRetry(t *testing.T, ctx context.Context, cc csi.ControllerClient, id string, secrets map[string]string) {
	t.Helper()
	dctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		_, err := cc.DeleteVolume(dctx, &csi.DeleteVolumeRequest{VolumeId: id, Secrets: secrets})
		if err == nil {
			return
		}
		if status.Code(err) != codes.FailedPrecondition || dctx.Err() != nil {
			t.Fatalf("DeleteVolume %s: %v", id, err)
		}
		select {
		case <-dctx.Done():
		case <-time.After(3 * time.Second):
		}
	}
}

// checkStateClean: the node's state directory holds the volume key only
// sealed, never the passphrase.
func checkStateClean(t *testing.T, state, passphrase string) {
	t.Helper()
	recs, _ := filepath.Glob(filepath.Join(state, "node", "volumes", "*.json"))
	if len(recs) == 0 {
		t.Fatal("no volume record")
	}
	for _, r := range recs {
		b, _ := os.ReadFile(r)
		if bytes.Contains(b, []byte(passphrase)) || !bytes.Contains(b, []byte(`"sealedKey"`)) {
			t.Errorf("record %s: holds the passphrase, or no sealed key:\n%s", r, b)
		}
	}
	if out, err := shOK("grep -rl " + passphrase + " " + state); err == nil {
		t.Errorf("the passphrase is in the state directory: %s", out)
	}
}

// checkCiphertext reads the whole image (another client, from RADOS) and
// fails if a plaintext marker the filesystem holds is in it.
func checkCiphertext(t *testing.T, ctx context.Context, s *csiSetup, v *csi.Volume, marker []byte) {
	t.Helper()
	img, err := rbd.Open(ctx, s.IO, v.GetVolumeContext()["imageName"], &rbd.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close(ctx)
	buf := make([]byte, 4<<20)
	for off := uint64(0); off < img.Size(); off += uint64(len(buf)) {
		n := min(uint64(len(buf)), img.Size()-off)
		if _, err := img.ReadAt(ctx, buf[:n], off); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(buf[:n], marker) {
			t.Fatalf("the image holds plaintext at %d", off)
		}
	}
	t.Logf("image %s (%d bytes): no plaintext", v.GetVolumeContext()["imageName"], img.Size())
}
