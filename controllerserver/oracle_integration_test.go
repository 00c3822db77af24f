package controllerserver

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/rbd"
	"github.com/csi-gorbd/csi-gorbd/test/cephcsi"
)

// TestOracleBothWays drives a real ceph-csi RBD controller (CEPHCSI=path
// of a cephcsi binary built by test/cephcsi/build.sh; not in CI, which
// cannot build it) and csi-gorbd's against one pool, both ways: ceph-csi's
// volumes and snapshots served by csi-gorbd, and csi-gorbd's volumes and
// snapshots handled by ceph-csi. Every outcome is logged (the report of
// what works in each direction) and checked against
// docs/ceph-csi-compat.md section 7.
func TestOracleBothWays(t *testing.T) {
	bin := os.Getenv("CEPHCSI")
	if bin == "" {
		t.Skip("CEPHCSI (a cephcsi binary, test/cephcsi/build.sh) is not set: the oracle runs by hand")
	}
	c := cephtest.Need(t, "pacific")
	if err := cephcsi.HaveCLI(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cli := &cephcsi.CLI{Conf: c.Conf(), Keyring: c.Keyring()}
	pool := fmt.Sprintf("drop-oracle-%x", rand.Uint32())
	if _, err := cli.Ceph(ctx, "osd", "pool", "create", pool, "8"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = cli.Ceph(context.Background(), "osd", "pool", "rm", pool, pool, "--yes-i-really-really-mean-it")
	})
	if _, err := cli.RBD(ctx, "pool", "init", pool); err != nil {
		t.Fatal(err)
	}
	fsid := c.Get("CEPH_FSID")
	// Not under /tmp: controller.sh bind-mounts WORK/tmp over /tmp.
	work := filepath.Join("/var/tmp/gorbd/cephcsi", pool)
	if err := os.MkdirAll(work, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(work) })
	cfg, _ := json.Marshal([]map[string]any{{"clusterID": fsid, "monitors": []string{c.Get("CEPH_MON_V1")}}})
	if err := os.WriteFile(filepath.Join(work, "config.json"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	script, _ := filepath.Abs("../test/cephcsi/controller.sh")
	run := func(op string) {
		cmd := exec.Command("bash", script, op, work)
		cmd.Env = append(os.Environ(), "CEPHCSI="+bin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("controller.sh %s: %v\n%s", op, err, out)
		}
	}
	run("start")
	t.Cleanup(func() { run("stop") })
	conn, err := grpc.NewClient("unix://"+filepath.Join(work, "csi.sock"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	theirs := csi.NewControllerClient(conn)
	clusters, err := csiceph.ParseClusters(cfg)
	if err != nil {
		t.Fatal(err)
	}
	clusters[fsid] = csiceph.ClusterInfo{ClusterID: fsid, Monitors: []string{c.Get("CEPH_MON_V2")}}
	ours := New(Options{Clusters: clusters, Instance: "default", DriverName: "rbd.csi.ceph.com"})
	defer ours.Close()
	secrets := map[string]string{"userID": "admin", "userKey": c.Get("CEPH_ADMIN_KEY")}
	params := map[string]string{"clusterID": fsid, "pool": pool, "imageFeatures": "layering"}
	io, err := ours.conns.Get(ctx, fsid, csiceph.Credentials{User: "admin", Key: secrets["userKey"]})
	if err != nil {
		t.Fatal(err)
	}
	pio, err := io.OpenIOContext(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	report := func(dir, what string, err error, want bool) {
		t.Helper()
		res := "ok"
		if err != nil {
			res = "error: " + err.Error()
		}
		t.Logf("[%s] %s: %s", dir, what, res)
		if (err == nil) != want {
			t.Errorf("[%s] %s: %v, want success %v", dir, what, err, want)
		}
	}
	createWith := func(cl creator, name string, size int64, src *csi.VolumeContentSource) (*csi.Volume, error) {
		r, err := cl.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: mountCaps, Parameters: params,
			CapacityRange: &csi.CapacityRange{RequiredBytes: size}, Secrets: secrets, VolumeContentSource: src})
		return r.GetVolume(), err
	}
	local := localClient{ours}
	size := func(image string) uint64 {
		img, err := rbd.Open(ctx, pio, image, &rbd.OpenOptions{ReadOnly: true})
		if err != nil {
			return 0
		}
		defer img.Close(ctx)
		return img.Size()
	}

	// ceph-csi's volumes and snapshots, served by csi-gorbd.
	a, err := createWith(theirs, "pvc-oracle-a", 1<<30, nil)
	report("ceph-csi → csi-gorbd", "ceph-csi CreateVolume", err, true)
	sa, err := theirs.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snapshot-oracle-a", SourceVolumeId: a.GetVolumeId(),
		Secrets: secrets, Parameters: map[string]string{"clusterID": fsid, "pool": pool}})
	report("ceph-csi → csi-gorbd", "ceph-csi CreateSnapshot", err, true)
	_, err = local.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: a.GetVolumeId(), Secrets: secrets,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 2 << 30}})
	report("ceph-csi → csi-gorbd", "expand", err, true)
	if got := size(a.GetVolumeContext()["imageName"]); got != 2<<30 {
		t.Errorf("expanded ceph-csi volume: %d bytes", got)
	}
	na, err := local.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snapshot-oracle-native-a", SourceVolumeId: a.GetVolumeId(), Secrets: secrets})
	report("ceph-csi → csi-gorbd", "native snapshot", err, true)
	ra, err := createWith(local, "pvc-oracle-restore-a", 1<<30, snapshotSource(sa.GetSnapshot().GetSnapshotId()))
	report("ceph-csi → csi-gorbd", "restore from ceph-csi's snapshot", err, true)
	ca, err := createWith(local, "pvc-oracle-clone-a", 2<<30, volumeSource(a.GetVolumeId()))
	report("ceph-csi → csi-gorbd", "clone", err, true)
	for _, v := range []*csi.Volume{ra, ca} {
		_, err = local.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: v.GetVolumeId(), Secrets: secrets})
		report("ceph-csi → csi-gorbd", "delete own volume", err, true)
	}
	_, err = local.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: sa.GetSnapshot().GetSnapshotId(), Secrets: secrets})
	report("ceph-csi → csi-gorbd", "delete ceph-csi's snapshot", err, true)
	_, err = local.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: na.GetSnapshot().GetSnapshotId(), Secrets: secrets})
	report("ceph-csi → csi-gorbd", "delete native snapshot", err, true)
	_, err = local.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: a.GetVolumeId(), Secrets: secrets})
	report("ceph-csi → csi-gorbd", "delete ceph-csi's volume", err, true)

	// csi-gorbd's volumes and snapshots, handled by ceph-csi.
	b, err := createWith(local, "pvc-oracle-b", 1<<30, nil)
	report("csi-gorbd → ceph-csi", "csi-gorbd CreateVolume", err, true)
	_, err = theirs.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: b.GetVolumeId(), Secrets: secrets,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 3 << 30}})
	report("csi-gorbd → ceph-csi", "ceph-csi expands it", err, true)
	if got := size(b.GetVolumeContext()["imageName"]); got != 3<<30 {
		t.Errorf("csi-gorbd's volume expanded by ceph-csi: %d bytes", got)
	}
	sb, err := theirs.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snapshot-oracle-b", SourceVolumeId: b.GetVolumeId(),
		Secrets: secrets, Parameters: map[string]string{"clusterID": fsid, "pool": pool}})
	report("csi-gorbd → ceph-csi", "ceph-csi snapshots it", err, true)
	cb, err := createWith(theirs, "pvc-oracle-clone-b", 3<<30, volumeSource(b.GetVolumeId()))
	report("csi-gorbd → ceph-csi", "ceph-csi clones it", err, true)
	nb, err := local.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snapshot-oracle-native-b", SourceVolumeId: b.GetVolumeId(), Secrets: secrets})
	report("csi-gorbd → ceph-csi", "native snapshot by csi-gorbd", err, true)
	_, err = createWith(theirs, "pvc-oracle-from-native", 3<<30, snapshotSource(nb.GetSnapshot().GetSnapshotId()))
	report("csi-gorbd → ceph-csi", "ceph-csi restores a native snapshot (documented: refused)", err, false)
	for _, id := range []string{sb.GetSnapshot().GetSnapshotId()} {
		_, err = theirs.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: id, Secrets: secrets})
		report("csi-gorbd → ceph-csi", "ceph-csi deletes its snapshot", err, true)
	}
	_, err = theirs.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: nb.GetSnapshot().GetSnapshotId(), Secrets: secrets})
	report("csi-gorbd → ceph-csi", "ceph-csi deletes a native snapshot (documented: success, RBD snapshot left)", err, true)
	img, err := rbd.Open(ctx, pio, b.GetVolumeContext()["imageName"], &rbd.OpenOptions{ReadOnly: true})
	if err == nil {
		var names []string
		for _, si := range img.Stat().Snapshots {
			names = append(names, si.Name+"/"+fmt.Sprint(si.Namespace.Type))
		}
		_ = img.Close(ctx)
		t.Logf("[csi-gorbd → ceph-csi] snapshots left on %s: %s", b.GetVolumeContext()["imageName"], strings.Join(names, ", "))
	}
	for _, v := range []*csi.Volume{cb, b} {
		_, err = theirs.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: v.GetVolumeId(), Secrets: secrets})
		report("csi-gorbd → ceph-csi", "ceph-csi deletes", err, true)
	}
	out, _ := cli.RBD(ctx, "ls", "-l", "--pool", pool)
	tr, _ := cli.RBD(ctx, "trash", "ls", "--all", "--long", "--pool", pool)
	t.Logf("left in %s: images:\n%s\ntrash:\n%s", pool, out, tr)
}

// creator is what CreateVolume both controllers answer.
type creator interface {
	CreateVolume(context.Context, *csi.CreateVolumeRequest, ...grpc.CallOption) (*csi.CreateVolumeResponse, error)
}

// localClient calls a Server in-process with the ControllerClient
// signatures.
type localClient struct{ s *Server }

func (l localClient) CreateVolume(ctx context.Context, r *csi.CreateVolumeRequest, _ ...grpc.CallOption) (*csi.CreateVolumeResponse, error) {
	return l.s.CreateVolume(ctx, r)
}
func (l localClient) DeleteVolume(ctx context.Context, r *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	return l.s.DeleteVolume(ctx, r)
}
func (l localClient) ControllerExpandVolume(ctx context.Context, r *csi.ControllerExpandVolumeRequest) (*csi.ControllerExpandVolumeResponse, error) {
	return l.s.ControllerExpandVolume(ctx, r)
}
func (l localClient) CreateSnapshot(ctx context.Context, r *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	return l.s.CreateSnapshot(ctx, r)
}
func (l localClient) DeleteSnapshot(ctx context.Context, r *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	return l.s.DeleteSnapshot(ctx, r)
}
