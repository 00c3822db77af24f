package guest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/controllerserver"
	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// takeoverBound is how long the next node's NodeStageVolume may take once
// the CO withdrew the volume from a frozen or killed holder (the whole
// stage: connect, blocklist, break the lock, fsck, mount). The fence is
// proven by B staging at all (without it B is refused at once, as the
// first phase shows) and by A's entry in the blocklist; the bound only
// catches a stage that hangs. Measured under TCG: 15-17 s on a quiet
// host, 33-40 s with three VMs sharing two cores.
const takeoverBound = 90 * time.Second

// fenceNode is one node plugin process ("csi-gorbd node") with its own
// node id, state directory and socket.
type fenceNode struct {
	id, state, sock, staging string
	args                     []string
	cmd                      *exec.Cmd
	nc                       csi.NodeClient
}

func startFenceNode(t *testing.T, ctx context.Context, s *csiSetup, id string) *fenceNode {
	t.Helper()
	n := &fenceNode{id: id, state: filepath.Join(s.Dir, id), sock: filepath.Join(s.Dir, id+".sock"),
		staging: filepath.Join(s.Dir, id+"-staging")}
	n.args = []string{"node", "--endpoint", "unix://" + n.sock, "--nodeid", id, "--clusters", s.Clusters,
		"--state-dir", n.state, "-v", "2"}
	n.start(t, ctx)
	return n
}

func (n *fenceNode) start(t *testing.T, ctx context.Context) {
	t.Helper()
	n.cmd = startPlugin(t, ctx, n.sock, n.args...)
	n.nc = csi.NewNodeClient(csiConn(t, n.sock))
}

// fenceVolume is the volume both nodes want, and the in-process
// controller that publishes it.
type fenceVolume struct {
	s     *csiSetup
	cs    *controllerserver.Server
	id    string
	image string
	vc    *csi.VolumeCapability
	ctx   map[string]string
}

func (v *fenceVolume) stage(ctx context.Context, n *fenceNode) error {
	_, err := n.nc.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: v.id, StagingTargetPath: n.staging,
		VolumeCapability: v.vc, Secrets: v.s.Secrets, VolumeContext: v.ctx})
	return err
}

func (v *fenceVolume) unstage(t *testing.T, ctx context.Context, n *fenceNode) {
	t.Helper()
	if _, err := n.nc.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: v.id, StagingTargetPath: n.staging}); err != nil {
		t.Fatalf("%s: NodeUnstageVolume: %v", n.id, err)
	}
}

func (v *fenceVolume) publish(t *testing.T, ctx context.Context, node string) {
	t.Helper()
	if _, err := v.cs.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: v.id, NodeId: node,
		VolumeCapability: v.vc, Secrets: v.s.Secrets}); err != nil {
		t.Fatalf("ControllerPublishVolume to %s: %v", node, err)
	}
}

func (v *fenceVolume) unpublish(t *testing.T, ctx context.Context, node string) {
	t.Helper()
	if _, err := v.cs.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: v.id, NodeId: node,
		Secrets: v.s.Secrets}); err != nil {
		t.Fatalf("ControllerUnpublishVolume from %s: %v", node, err)
	}
}

// holder returns the client (global id) and the address nonce with
// which node holds the image: its stage record and its header watch.
func (v *fenceVolume) holder(t *testing.T, ctx context.Context, node string) (int64, uint32) {
	t.Helper()
	img, err := rbd.Open(ctx, v.s.IO, v.image, &rbd.OpenOptions{ReadOnly: true, NoWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close(ctx)
	u, err := csiceph.ReadUsers(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := img.Watchers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range u.Stages {
		if st.Node != node {
			continue
		}
		for _, w := range ws {
			if w.Entity.Num == st.Client {
				return st.Client, w.Addr.Nonce
			}
		}
	}
	t.Fatalf("no stage record with a watch for %s: stages %+v, watchers %+v", node, u.Stages, ws)
	return 0, 0
}

// blocklisted reports whether an address with nonce is in `ceph osd
// blocklist ls`.
func (v *fenceVolume) blocklisted(t *testing.T, ctx context.Context, nonce uint32) bool {
	t.Helper()
	out, st, err := v.s.IO.Conn().MonCommand(ctx, `{"prefix":"osd blocklist ls","format":"json"}`, nil)
	if err != nil {
		t.Fatalf("osd blocklist ls: %v %s", err, st)
	}
	var list []struct {
		Addr string `json:"addr"`
	}
	if err := json.NewDecoder(bytes.NewReader(out)).Decode(&list); err != nil {
		t.Fatalf("osd blocklist ls: %v: %s", err, out)
	}
	for _, b := range list {
		if strings.HasSuffix(b.Addr, fmt.Sprintf("/%d", nonce)) {
			return true
		}
	}
	return false
}

// imageSum is the sha256 of the whole image, read by the test's own
// client.
func (v *fenceVolume) imageSum(t *testing.T, ctx context.Context) string {
	t.Helper()
	img, err := rbd.Open(ctx, v.s.IO, v.image, &rbd.OpenOptions{ReadOnly: true, NoWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close(ctx)
	h := sha256.New()
	buf := make([]byte, 4<<20)
	for off := uint64(0); off < img.Size(); off += uint64(len(buf)) {
		if _, err := img.ReadAt(ctx, buf, off); err != nil {
			t.Fatal(err)
		}
		h.Write(buf)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// verifyTakeover checks, on node b which staged the volume, every file of
// the sums file (fsync'ed before the holder stopped), then unmounts the
// filesystem and runs fsck on b's device, and unstages.
func (v *fenceVolume) verifyTakeover(t *testing.T, ctx context.Context, b *fenceNode, sums string) int {
	t.Helper()
	dev, _ := mountSource(t, b.staging)
	data, _ := os.ReadFile(sums)
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		sum, name, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		if got := fileSum(t, b.staging+"/"+name); got != sum {
			t.Errorf("%s on %s: sha256 %s, want %s (fsync'ed before the holder stopped)", name, b.id, got, sum)
		}
		n++
	}
	sh(t, "umount "+b.staging)
	if out, err := shOK("fsck.ext4 -fn " + dev); err != nil {
		t.Errorf("fsck on %s after the takeover: %v\n%s", b.id, err, out)
	}
	v.unstage(t, ctx, b)
	return n
}

// TestCSIFence: one writer per volume across two node plugins (separate
// processes, node ids and state directories) on one image of the host's
// Pacific, with and without the exclusive-lock feature (the lock, or the
// header-watcher check):
//
//  1. B's NodeStageVolume fails with FailedPrecondition naming A's client
//     and node while A has the volume staged writable; after A unstages
//     (and the controller moves the volume), B stages it.
//  2. A partitioned: A's plugin frozen (SIGSTOP) under a write loop of
//     fsync'ed files, the volume withdrawn from A and published to B. B
//     stages within takeoverBound, A's client is in `ceph osd blocklist
//     ls`, B's filesystem holds every file A fsync'ed and fsck is clean.
//     After SIGCONT A's writes fail (I/O errors on A's device) and the
//     image does not change.
//  3. A killed with -9 instead: the same takeover.
func TestCSIFence(t *testing.T) {
	c := needHostCeph(t)
	for _, tc := range []struct{ name, features string }{
		{"exclusive-lock", "layering,exclusive-lock,object-map,fast-diff"},
		{"no-exclusive-lock", "layering"},
	} {
		t.Run(tc.name, func(t *testing.T) { testCSIFence(t, c, tc.features) })
	}
}

func testCSIFence(t *testing.T, c *hostCeph, features string) {
	ctx := testCtx(t, 8*time.Minute)
	clearDmesg(t)
	s := newCSISetup(t, ctx, c)
	a, b := startFenceNode(t, ctx, s, "vm-node-a"), startFenceNode(t, ctx, s, "vm-node-b")
	cs := controllerserver.New(controllerserver.Options{Clusters: mustClusters(t, s), Instance: s.Instance,
		Nodes: controllerserver.NodeSet{a.id: true, b.id: true}})
	t.Cleanup(cs.Close)
	vc := &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "ext4"}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
	params := s.volumeParams()
	params["imageFeatures"] = features
	cv, err := cs.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-" + s.Instance,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 64 << 20}, VolumeCapabilities: []*csi.VolumeCapability{vc},
		Parameters: params, Secrets: s.Secrets})
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	v := &fenceVolume{s: s, cs: cs, id: cv.GetVolume().GetVolumeId(), image: cv.GetVolume().GetVolumeContext()[csiceph.ContextImageName],
		vc: vc, ctx: cv.GetVolume().GetVolumeContext()}
	t.Cleanup(func() {
		// A killed plugin's header watch can outlive it on the OSD for
		// osd_client_watch_timeout (30 s): DeleteVolume answers
		// FailedPrecondition until then, and is retried as the
		// external-provisioner does.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 90*time.Second)
		defer cancel()
		for {
			_, err := cs.DeleteVolume(dctx, &csi.DeleteVolumeRequest{VolumeId: v.id, Secrets: s.Secrets})
			if err == nil || status.Code(err) != codes.FailedPrecondition || dctx.Err() != nil {
				if err != nil {
					t.Errorf("DeleteVolume: %v", err)
				}
				return
			}
			time.Sleep(3 * time.Second)
		}
	})

	// 1. One writer; a clean hand-over.
	v.publish(t, ctx, a.id)
	if err := v.stage(ctx, a); err != nil {
		t.Fatalf("A's NodeStageVolume: %v", err)
	}
	pre := randomFile(t, "/tmp/fence-pre", 1<<20)
	sh(t, "dd if=/tmp/fence-pre of="+a.staging+"/pre bs=1M conv=fsync 2>/dev/null")
	aClient, _ := v.holder(t, ctx, a.id)
	err = v.stage(ctx, b)
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("B's NodeStageVolume while A holds the volume: %v, want FailedPrecondition", err)
	}
	if msg := status.Convert(err).Message(); !strings.Contains(msg, fmt.Sprintf("client.%d", aClient)) || !strings.Contains(msg, `"vm-node-a"`) {
		t.Errorf("refusal does not name A's client.%d and node: %s", aClient, msg)
	}
	t.Logf("B refused while A holds the volume: %s", status.Convert(err).Message())
	v.unstage(t, ctx, a)
	v.unpublish(t, ctx, a.id)
	v.publish(t, ctx, b.id)
	if err := v.stage(ctx, b); err != nil {
		t.Fatalf("B's NodeStageVolume after A unstaged: %v", err)
	}
	if got := fileSum(t, b.staging+"/pre"); got != pre {
		t.Errorf("B reads A's file with sha256 %s, want %s", got, pre)
	}
	v.unstage(t, ctx, b)
	v.unpublish(t, ctx, b.id)

	// 2. A partitioned (frozen) under a write loop; the CO moves the
	// volume to B.
	const files = 40 // 1 MiB each, on a 64 MiB volume: the loop never ends by itself before the freeze
	v.publish(t, ctx, a.id)
	if err := v.stage(ctx, a); err != nil {
		t.Fatalf("A's NodeStageVolume: %v", err)
	}
	aDev, _ := mountSource(t, a.staging)
	aClient, aNonce := v.holder(t, ctx, a.id)
	loop := startWriteLoop(t, ctx, a.staging, files)
	a.cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(2 * time.Second) // a file fsync'ed just before the freeze gets its sum line
	sums := snapshotFile(t, "/tmp/sums", "/tmp/fence-sums-stop")
	t.Logf("A (client.%d) frozen after %d fsync'ed files", aClient, lines(sums))
	took := v.withdrawAndTakeOver(t, ctx, a, b)
	if !v.blocklisted(t, ctx, aNonce) {
		t.Errorf("A's client.%d (nonce %d) is not in osd blocklist ls after B's takeover", aClient, aNonce)
	}
	n := v.verifyTakeover(t, ctx, b, sums)
	t.Logf("B staged %v after the withdrawal (bound %v), A blocklisted, %d fsync'ed files verified, fsck clean", took.Round(time.Millisecond), takeoverBound, n)
	before := v.imageSum(t, ctx)
	a.cmd.Process.Signal(syscall.SIGCONT)
	if err := waitCmd(t, ctx, loop); err == nil {
		t.Errorf("A's write loop finished without an error after the takeover")
	}
	errs := strings.Join(kernelErrors(t), "\n")
	if !strings.Contains(errs, strings.TrimPrefix(aDev, "/dev/")) {
		t.Errorf("no I/O errors on A's device %s after SIGCONT:\n%s", aDev, errs)
	}
	if after := v.imageSum(t, ctx); after != before {
		t.Errorf("the image changed after A woke up: A's writes reached it")
	}
	t.Logf("A woke up: its writes failed (%d kernel error lines), the image is unchanged", strings.Count(errs, "\n")+1)
	v.unstage(t, ctx, a) // unmounts a filesystem whose device fails; detaches
	v.unpublish(t, ctx, b.id)

	// 3. A killed with -9 under the write loop; A's plugin restarted
	// first (a fresh Ceph client: the old one stays blocklisted).
	a.cmd.Process.Signal(syscall.SIGTERM)
	if err := waitCmd(t, ctx, a.cmd); err != nil {
		t.Errorf("A's plugin exit after SIGTERM: %v", err)
	}
	a.start(t, ctx)
	v.publish(t, ctx, a.id)
	if err := v.stage(ctx, a); err != nil {
		t.Fatalf("A's NodeStageVolume (restarted plugin): %v", err)
	}
	aDev, _ = mountSource(t, a.staging)
	aClient, aNonce = v.holder(t, ctx, a.id)
	loop = startWriteLoop(t, ctx, a.staging, files)
	a.cmd.Process.Signal(syscall.SIGKILL)
	a.cmd.Wait()
	time.Sleep(2 * time.Second)
	sums = snapshotFile(t, "/tmp/sums", "/tmp/fence-sums-kill")
	t.Logf("A (client.%d) killed after %d fsync'ed files", aClient, lines(sums))
	took = v.withdrawAndTakeOver(t, ctx, a, b)
	if !v.blocklisted(t, ctx, aNonce) {
		t.Errorf("killed A's client.%d (nonce %d) is not in osd blocklist ls after B's takeover", aClient, aNonce)
	}
	n = v.verifyTakeover(t, ctx, b, sums)
	t.Logf("B staged %v after the withdrawal of the killed A, %d fsync'ed files verified, fsck clean", took.Round(time.Millisecond), n)
	// A's device stays connected with nobody serving it: let it go.
	loop.Process.Kill()
	loop.Wait()
	sh(t, "umount -l "+a.staging)
	sh(t, fmt.Sprintf("%s nbd unmap %s --state-dir %s", os.Getenv("GORBD_BIN"), aDev, t.TempDir()))
	v.unpublish(t, ctx, b.id)
}

// withdrawAndTakeOver does what the CO does when a node is lost:
// ControllerUnpublish from a, ControllerPublish to b; then b stages,
// within takeoverBound.
func (v *fenceVolume) withdrawAndTakeOver(t *testing.T, ctx context.Context, a, b *fenceNode) time.Duration {
	t.Helper()
	start := time.Now()
	v.unpublish(t, ctx, a.id)
	v.publish(t, ctx, b.id)
	sctx, cancel := context.WithTimeout(ctx, takeoverBound)
	defer cancel()
	if err := v.stage(sctx, b); err != nil {
		t.Fatalf("B's NodeStageVolume after the volume was withdrawn from A (%v): %v", time.Since(start).Round(time.Millisecond), err)
	}
	return time.Since(start)
}

// snapshotFile copies src to dst and returns dst.
func snapshotFile(t *testing.T, src, dst string) string {
	t.Helper()
	b, _ := os.ReadFile(src)
	writeFile0600(t, dst, string(b))
	return dst
}

func mustClusters(t *testing.T, s *csiSetup) csiceph.Clusters {
	t.Helper()
	cm, err := csiceph.LoadClusters(s.Clusters)
	if err != nil {
		t.Fatal(err)
	}
	return cm
}
