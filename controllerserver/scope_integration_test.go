package controllerserver

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/go-logr/logr/funcr"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/internal/journal"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// TestDeleteVolumeLeavesForeignImages: DeleteVolume deletes only images
// this driver's journal knows. A legacy id naming any image (a static
// PV's hand-written handle with reclaimPolicy Delete), and a ceph-csi
// handle whose entry object names an image but which the instance's
// directory does not list (another instance's volume, a hand-made
// entry), succeed without deleting anything, with a log line saying why.
func TestDeleteVolumeLeavesForeignImages(t *testing.T) {
	var mu sync.Mutex
	var logged []string
	f := newFixture(t, Options{Logger: funcr.New(func(_, args string) {
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, args)
	}, funcr.Options{})})
	foreign := f.prefix + "foreign"
	if _, err := rbd.Create(f.ctx, f.io, foreign, 4<<20, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rbd.Remove(context.Background(), f.io, foreign) })
	uuid := journal.NewUUID()
	j := journal.Journal{IO: f.io, Instance: f.instance, Kind: journal.Volumes}
	if err := f.io.SetOmap(f.ctx, j.EntryObject(uuid), map[string][]byte{
		journal.KeyVolName: []byte("pvc-someone-elses"), journal.KeyImageName: []byte(foreign)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.io.Remove(context.Background(), j.EntryObject(uuid)) })
	handle, err := csiceph.NewHandle(f.cluster, f.io.PoolID(), uuid)
	if err != nil {
		t.Fatal(err)
	}

	for _, id := range []string{
		csiceph.VolumeID{ClusterID: f.cluster, PoolID: f.io.PoolID(), Image: foreign}.String(),
		handle.String(),
	} {
		for range 2 {
			if _, err := f.s.DeleteVolume(f.ctx, &csi.DeleteVolumeRequest{VolumeId: id, Secrets: f.secrets}); err != nil {
				t.Fatalf("DeleteVolume %s: %v", id, err)
			}
		}
		img, err := rbd.Open(f.ctx, f.io, foreign, &rbd.OpenOptions{ReadOnly: true})
		if err != nil {
			t.Fatalf("DeleteVolume %s removed the image it did not create: %v", id, err)
		}
		img.Close(f.ctx)
	}
	if _, err := j.Entry(f.ctx, uuid); err != nil {
		t.Errorf("the foreign journal entry was released: %v", err)
	}
	mu.Lock()
	all := strings.Join(logged, "\n")
	mu.Unlock()
	if n := strings.Count(all, "not created by this driver"); n < 4 || !strings.Contains(all, foreign) {
		t.Errorf("log lines (%d about foreign images):\n%s", n, all)
	}

	if err := rbd.Remove(f.ctx, f.io, foreign); err != nil {
		t.Fatal(err)
	}
	if err := f.io.Remove(f.ctx, j.EntryObject(uuid)); err != nil {
		t.Fatal(err)
	}
	// The driver's own volumes still go.
	v := f.createVolume("scope-own", 4<<20, nil)
	f.deleteVolume(v.GetVolumeId())
	f.requireClean()
}
