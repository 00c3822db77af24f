package nodeserver

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/nbd/attach"
	"github.com/csi-gorbd/csi-gorbd/rbd"
	"github.com/csi-gorbd/csi-gorbd/test/cephcsi"
)

// fakeKernel takes the sockets a Connect hands it and says it owns every
// device it connected (the kernel side runs in the VM suite).
type fakeKernel struct {
	mu    sync.Mutex
	socks map[int][]*os.File
	next  int
}

func (k *fakeKernel) Connect(_ context.Context, socks []*os.File, p attach.ConnectParams) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	i := k.next
	k.next++
	// The caller closes its files after Connect, as the kernel keeps its
	// own references: keep duplicates.
	for _, f := range socks {
		fd, err := syscall.Dup(int(f.Fd()))
		if err != nil {
			return 0, err
		}
		k.socks[i] = append(k.socks[i], os.NewFile(uintptr(fd), f.Name()))
	}
	return i, nil
}

func (k *fakeKernel) Reconfigure(context.Context, int, []*os.File, attach.ReconfigureParams) error {
	return nil
}

func (k *fakeKernel) Disconnect(_ context.Context, index int) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, f := range k.socks[index] {
		_ = f.Close()
	}
	delete(k.socks, index)
	return nil
}

func (k *fakeKernel) Owns(_ context.Context, index int, _ string) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.socks[index]
	return ok, nil
}

// TestTakeoverStage: the node plugin stages volumes a real ceph-csi made
// (its capture, replayed): the handle leads through the journal to the
// image, in the clusterID's RADOS namespace, and the device serves the
// image's data; unstage lets it go.
func TestTakeoverStage(t *testing.T) {
	e := cephcsi.NewReplayEnv(t, "pacific", "../test/cephcsi/testdata", "v3.12.2")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var entries []map[string]any
	if err := json.Unmarshal(e.State.ConfigJSON, &entries); err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		en["monitors"] = []string{e.Cluster.Get("CEPH_MON_V2")}
	}
	b, _ := json.Marshal(entries)
	clusters, err := csiceph.ParseClusters(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(ctx, Options{NodeID: "n1", Clusters: clusters, StateDir: t.TempDir(), Kernel: &fakeKernel{socks: map[int][]*os.File{}},
		KeyDir: t.TempDir(), KeyDirAnyFS: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	secrets := map[string]string{"userID": "admin", "userKey": e.Cluster.Get("CEPH_ADMIN_KEY")}
	for _, tc := range []struct{ step, ns string }{{"vol-plain", ""}, {"ns-vol", "csi-ns"}, {"vol-prefix", ""}, {"vol-topology", ""}} {
		captured, err := e.State.VolumeID(tc.step)
		if err != nil {
			t.Fatal(err)
		}
		vid, _ := e.Replayed.Handle(captured)
		h, _ := cephcsi.ParseHandle(vid)
		// What ceph-csi's volume context holds, mapping options included.
		var resp struct {
			Volume struct {
				VolumeContext map[string]string `json:"volumeContext"`
			} `json:"volume"`
		}
		c, _ := e.State.Step(tc.step, "CreateVolume")
		_ = json.Unmarshal(c.Response, &resp)
		image := resp.Volume.VolumeContext["imageName"]
		io, err := e.Conn.OpenIOContextByID(ctx, h.PoolID)
		if err != nil {
			t.Fatal(err)
		}
		io.SetNamespace(tc.ns)
		data := []byte("ceph-csi's volume " + tc.step)
		img, err := rbd.Open(ctx, io, image, nil)
		if err != nil {
			t.Fatalf("%s: open %s: %v", tc.step, image, err)
		}
		if _, err := img.WriteAt(ctx, data, 0); err != nil {
			t.Fatal(err)
		}
		_ = img.Close(ctx)
		staging := t.TempDir()
		if _, err := s.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: vid, StagingTargetPath: staging,
			VolumeCapability: blockCap(snw), Secrets: secrets, VolumeContext: resp.Volume.VolumeContext}); err != nil {
			t.Fatalf("%s: NodeStageVolume: %v", tc.step, err)
		}
		rec, err := s.vols.load(vid)
		if err != nil || rec.Image != image || rec.Namespace != tc.ns || rec.PoolID != h.PoolID {
			t.Errorf("%s: record %+v %v; want image %s in namespace %q", tc.step, rec, err, image, tc.ns)
		}
		be := s.backend(vid)
		if be == nil {
			t.Fatalf("%s: not served", tc.step)
		}
		got := make([]byte, len(data))
		if _, err := be.Image().ReadAt(ctx, got, 0); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: the device's image reads %q %v", tc.step, got, err)
		}
		if _, err := s.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: vid, StagingTargetPath: staging}); err != nil {
			t.Errorf("%s: NodeUnstageVolume: %v", tc.step, err)
		}
	}
	// A ceph-csi volume that is not there: NotFound.
	gone, _ := e.State.VolumeID("vol-deleted")
	vid, _ := e.Replayed.Handle(gone)
	_, err = s.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: vid, StagingTargetPath: t.TempDir(),
		VolumeCapability: blockCap(snw), Secrets: secrets})
	wantCode(t, "stage a deleted volume", err, 5) // NotFound
	// ceph-csi's encrypted volume without its passphrase is refused, not
	// served as ciphertext (encryption_integration_test.go stages them).
	enc, _ := e.State.VolumeID("vol-encrypted")
	vid, _ = e.Replayed.Handle(enc)
	_, err = s.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: vid, StagingTargetPath: t.TempDir(),
		VolumeCapability: blockCap(snw), Secrets: secrets, VolumeContext: map[string]string{"encrypted": "true"}})
	wantCode(t, "stage an encrypted volume without its passphrase", err, 3) // InvalidArgument
}
