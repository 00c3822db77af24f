package nodeserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/nbd"
	"github.com/csi-gorbd/csi-gorbd/nbd/qos"
	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// fakeMetrics counts opens and releases per volume.
type fakeMetrics struct {
	mu    sync.Mutex
	opens map[string]int
	pv    map[string]string
}

type nopObserver struct{}

func (nopObserver) Begin(nbd.Op)                                                {}
func (nopObserver) End(nbd.Op, uint32, time.Duration, time.Duration, nbd.Errno) {}

func (f *fakeMetrics) Volume(id, pv string) (nbd.Observer, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opens[id]++
	f.pv[id] = pv
	return nopObserver{}, func() { f.mu.Lock(); f.opens[id]--; f.mu.Unlock() }
}

// TestVolumeQoSAndMetrics: an opened volume carries the QoS limits of its
// image's metadata into every export the kernel path makes for it, follows
// a change made by another client through the header watch, reports each
// change, and gets an observer labelled with the PV name from its record,
// released when the volume closes.
func TestVolumeQoSAndMetrics(t *testing.T) {
	c := cephtest.Need(t, "pacific")
	mon, key, pool := c.Get("CEPH_MON_V2"), c.Get("CEPH_ADMIN_KEY"), c.Get("CEPH_POOL")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := rados.Connect(ctx, rados.Config{Monitors: []string{mon}, User: "admin", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	io, err := admin.OpenIOContext(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	image := "nstest-qos-" + hex.EncodeToString(rb[:])
	if _, err := rbd.Create(ctx, io, image, 4<<20, &rbd.CreateOptions{Features: rbd.FeaturesDefault}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rbd.Remove(context.Background(), io, image) })
	other, err := rbd.Open(ctx, io, image, &rbd.OpenOptions{NoWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	if err := other.SetMetadata(ctx, rbd.ConfigPrefix+rbd.QoSWriteIOPSLimit, []byte("300")); err != nil {
		t.Fatal(err)
	}

	metrics := &fakeMetrics{opens: map[string]int{}, pv: map[string]string{}}
	var (
		mu      sync.Mutex
		reports []qos.Limits
	)
	opts := Options{NodeID: "n1", StateDir: t.TempDir(), VolumeMetrics: metrics,
		Clusters: map[string]csiceph.ClusterInfo{"c": {ClusterID: "c", Monitors: []string{mon}}},
		OnQoS: func(id string, l qos.Limits, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("QoS report for %s: %v", id, err)
			}
			reports = append(reports, l)
		}}
	s, err := New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	vid := csiceph.VolumeID{ClusterID: "c", PoolID: io.PoolID(), Image: image}.String()
	if err := s.vols.save(&volumeRecord{Version: volumeRecordVersion, VolumeID: vid, ClusterID: "c", PoolID: io.PoolID(),
		Image: image, UserID: "admin", UserKey: key, StagingPath: "/staging", PVName: "pvc-1234"}); err != nil {
		t.Fatal(err)
	}
	b, err := s.openVolume(ctx, vid, false)
	if err != nil {
		t.Fatal(err)
	}
	v := b.(*rbdVolume)
	var e nbd.Export
	v.ConfigureExport(&e)
	if e.Limiter == nil || e.Observer == nil || e.Limiter.Limits().WriteIOPS.Rate != 300 {
		t.Fatalf("export after open: limiter %v observer %v", e.Limiter, e.Observer)
	}
	if metrics.opens[vid] != 1 || metrics.pv[vid] != "pvc-1234" {
		t.Errorf("metrics: %v %v", metrics.opens, metrics.pv)
	}

	// Another client changes the image's QoS: the limiter follows.
	if err := other.SetMetadata(ctx, rbd.ConfigPrefix+rbd.QoSBPSLimit, []byte("64M")); err != nil {
		t.Fatal(err)
	}
	if err := other.RemoveMetadata(ctx, rbd.ConfigPrefix+rbd.QoSWriteIOPSLimit); err != nil {
		t.Fatal(err)
	}
	for e.Limiter.Limits() != (qos.Limits{BPS: qos.Limit{Rate: 64 << 20, BurstSeconds: 1}, ReadIOPS: qos.Limit{BurstSeconds: 1},
		WriteIOPS: qos.Limit{BurstSeconds: 1}, IOPS: qos.Limit{BurstSeconds: 1}, ReadBPS: qos.Limit{BurstSeconds: 1},
		WriteBPS: qos.Limit{BurstSeconds: 1}, TickMin: 50 * time.Millisecond}) {
		select {
		case <-ctx.Done():
			t.Fatalf("limits after the change: %v", e.Limiter.Limits())
		case <-time.After(20 * time.Millisecond):
		}
	}
	mu.Lock()
	n := len(reports)
	mu.Unlock()
	if n < 2 {
		t.Errorf("%d QoS reports, want the first and the change", n)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if metrics.opens[vid] != 0 {
		t.Errorf("metrics not released at close: %v", metrics.opens)
	}
}
