package nodeserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/internal/incarnation"
	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// TestRestartTakesOverLocks: a node plugin that dies (its images never
// closed, its Ceph connections dropped: kill -9) leaves its exclusive
// locks and header watches behind; the watches live on in the OSD for
// osd_client_watch_timeout (30 s). The next process on the same state
// directory recognises its predecessor's clients in the owner file and
// takes the locks over at once, so the volumes' I/O does not stall for
// those 30 s. The kernel side of the restart runs in the VM suite
// (TestCSIPodRestart); this is the Ceph side, on the host.
//
// A single-writer stage (exclusive lock kept; without the exclusive-lock
// feature, no other watcher allowed) takes its predecessor's image over
// the same way: the predecessor's watch is blocklisted, not waited for.
func TestRestartTakesOverLocks(t *testing.T) {
	for _, tc := range []struct {
		name     string
		features uint64
		mode     csi.VolumeCapability_AccessMode_Mode
	}{
		{"cooperative", rbd.FeaturesDefault, csi.VolumeCapability_AccessMode_UNKNOWN},
		{"single-writer", rbd.FeaturesDefault, csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		{"single-writer-no-lock", rbd.FeatureLayering, csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	} {
		t.Run(tc.name, func(t *testing.T) { testRestartTakesOver(t, tc.features, tc.mode) })
	}
}

func testRestartTakesOver(t *testing.T, features uint64, mode csi.VolumeCapability_AccessMode_Mode) {
	c := cephtest.Need(t, "pacific")
	mon, key, pool := c.Get("CEPH_MON_V2"), c.Get("CEPH_ADMIN_KEY"), c.Get("CEPH_POOL")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := rados.Connect(ctx, rados.Config{Monitors: []string{mon}, User: "admin", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	io, err := admin.OpenIOContext(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	image := "nstest-restart-" + hex.EncodeToString(rb[:])
	id, err := rbd.Create(ctx, io, image, 4<<20, &rbd.CreateOptions{Features: features})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeImage(t, io, image) })

	dir := t.TempDir()
	opts := Options{NodeID: "n1", StateDir: dir,
		Clusters: map[string]csiceph.ClusterInfo{"c": {ClusterID: "c", Monitors: []string{mon}}}}
	vid := csiceph.VolumeID{ClusterID: "c", PoolID: io.PoolID(), Image: image}.String()
	rec := &volumeRecord{Version: volumeRecordVersion, VolumeID: vid, ClusterID: "c", PoolID: io.PoolID(),
		Image: image, UserID: "admin", UserKey: key, StagingPath: "/staging", AccessMode: int32(mode)}

	s1, err := New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.vols.save(rec); err != nil {
		t.Fatal(err)
	}
	b1, err := s1.openVolume(ctx, vid, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := b1.WriteAt(ctx, []byte("first incarnation"), 0, true); err != nil {
		t.Fatal(err)
	}
	// A second process cannot serve the same state directory meanwhile.
	short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = New(short, opts)
	cancelShort()
	if !errors.Is(err, incarnation.ErrBusy) {
		t.Fatalf("second server on a held state directory: %v, want ErrBusy", err)
	}

	// Die without letting go: drop the connections, keep the image open.
	var dead []uint64
	c1, err := s1.conns.Get(ctx, "c", rec.credentials()) // the pooled connection the image uses
	if err != nil {
		t.Fatal(err)
	}
	dead = append(dead, c1.GlobalID())
	c1.Close()
	s1.owner.Close()
	ws, err := io.ListWatchers(ctx, rbd.HeaderObjectName(id))
	if err != nil {
		t.Fatal(err)
	}
	alive := false
	for _, w := range ws {
		for _, g := range dead {
			alive = alive || uint64(w.Name.Num) == g
		}
	}
	if !alive {
		t.Fatalf("the dead server's header watch is already gone (%+v): nothing to take over", ws)
	}

	s2, err := New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	b2, err := s2.openVolume(ctx, vid, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.(*rbdVolume).Close()
	// Well inside the 30 s the old watch lives: without the owner file
	// this write would wait for it and fail with ErrBusy.
	quick, cancelQuick := context.WithTimeout(ctx, 15*time.Second)
	defer cancelQuick()
	start := time.Now()
	if err := b2.WriteAt(quick, []byte("second incarnation"), 0, true); err != nil {
		t.Fatalf("write after the restart: %v", err)
	}
	t.Logf("lock taken over %v after the restart", time.Since(start).Round(time.Millisecond))
}
