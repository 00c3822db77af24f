package controllerserver

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// The encoder of the journal this driver wrote before it adopted
// ceph-csi's (kept here, in the test, to make what earlier versions left
// in users' pools): JSON values under csi.volume.<name> / csi.snap.<name>
// and reverse keys csi.image.<image> / csi.snapid.<image>@<snap>.

func (j legacyJournal) put(ctx context.Context, kv map[string]any) error {
	m := make(map[string][]byte, len(kv))
	for k, v := range kv {
		if s, ok := v.(string); ok {
			m[k] = []byte(s)
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		m[k] = b
	}
	return j.io.SetOmap(ctx, j.oid, m)
}

// legacyVolume makes a volume as the previous CreateVolume did: the
// journal record, the reverse key and a layering image, and returns its
// legacy id.
func (f *fixture) legacyVolume(name string, size uint64) csiceph.VolumeID {
	f.t.Helper()
	image := newName(f.prefix + "v-")
	j := legacyJournal{io: f.io, oid: VolumeJournalObject(f.instance)}
	if err := j.put(f.ctx, map[string]any{volKeyPrefix + name: volumeRecord{Image: image, Size: size}, imageKeyPrefix + image: name}); err != nil {
		f.t.Fatal(err)
	}
	if _, err := rbd.Create(f.ctx, f.io, image, size, &rbd.CreateOptions{Features: rbd.FeatureLayering}); err != nil {
		f.t.Fatal(err)
	}
	return csiceph.VolumeID{ClusterID: f.cluster, PoolID: f.io.PoolID(), Image: image}
}

// legacySnapshotOf takes a snapshot as the previous CreateSnapshot did.
func (f *fixture) legacySnapshotOf(name string, src csiceph.VolumeID) csiceph.SnapshotID {
	f.t.Helper()
	img, err := rbd.Open(f.ctx, f.io, src.Image, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	defer img.Close(f.ctx)
	rec := snapRecord{Source: src.String(), Snap: newName(f.prefix + "s-"), Size: img.Size(), Created: time.Now().UnixNano()}
	j := legacyJournal{io: f.io, oid: SnapshotJournalObject(f.instance)}
	if err := j.put(f.ctx, map[string]any{snapKeyPrefix + name: rec, snapIDKey(src.Image, rec.Snap): name}); err != nil {
		f.t.Fatal(err)
	}
	if _, err := img.CreateSnapshot(f.ctx, rec.Snap); err != nil {
		f.t.Fatal(err)
	}
	return csiceph.SnapshotID{VolumeID: src, Snap: rec.Snap}
}

// TestLegacyVolumesKeepWorking: volumes and snapshots an earlier version
// made (its ids "v1."/"s1." and its JSON journal) are served after the
// upgrade: a repeated CreateVolume finds them, expand, snapshot, restore
// (from its snapshots and new ones), clone and list work, and deleting
// everything leaves the pool clean. What is made now is in ceph-csi's
// format, beside them in the same journal objects.
func TestLegacyVolumesKeepWorking(t *testing.T) {
	f := newFixture(t, Options{})
	old := f.legacyVolume("pvc-old", 8<<20)
	oldSnap := f.legacySnapshotOf("snapshot-old", old)
	data := []byte("written before the upgrade")
	img, err := rbd.Open(f.ctx, f.io, old.Image, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := img.WriteAt(f.ctx, data, 0); err != nil {
		t.Fatal(err)
	}
	_ = img.Close(f.ctx)

	// The external-provisioner retrying the old volume's CreateVolume
	// gets the old id back.
	again := f.createVolume("pvc-old", 8<<20, nil)
	if again.GetVolumeId() != old.String() {
		t.Errorf("repeated CreateVolume of a legacy volume: %s, want %s", again.GetVolumeId(), old)
	}
	if _, err := f.s.ControllerExpandVolume(f.ctx, &csi.ControllerExpandVolumeRequest{VolumeId: old.String(), Secrets: f.secrets,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 16 << 20}}); err != nil {
		t.Fatalf("expand a legacy volume: %v", err)
	}
	// The legacy snapshot (its data is the blank image) and a new one.
	fromOld := f.createVolume("pvc-from-old-snap", 8<<20, snapshotSource(oldSnap.String()))
	if got := f.readVolume(fromOld, len(data)); !bytes.Equal(got, make([]byte, len(data))) {
		t.Errorf("restore of the legacy snapshot reads %q", got)
	}
	sn := f.createSnapshot("snapshot-new", old.String())
	if strings.HasPrefix(sn.GetSnapshotId(), "s1.") {
		t.Errorf("a new snapshot got a legacy id %s", sn.GetSnapshotId())
	}
	if sn.GetSourceVolumeId() != old.String() {
		t.Errorf("source %s, want %s", sn.GetSourceVolumeId(), old)
	}
	fromNew := f.createVolume("pvc-from-new-snap", 16<<20, snapshotSource(sn.GetSnapshotId()))
	if got := f.readVolume(fromNew, len(data)); !bytes.Equal(got, data) {
		t.Errorf("restore of a new snapshot of a legacy volume reads %q", got)
	}
	clone := f.createVolume("pvc-clone-old", 16<<20, volumeSource(old.String()))
	if got := f.readVolume(clone, len(data)); !bytes.Equal(got, data) {
		t.Errorf("clone of a legacy volume reads %q", got)
	}
	ls, err := f.s.ListSnapshots(f.ctx, &csi.ListSnapshotsRequest{SourceVolumeId: old.String(), Secrets: f.secrets})
	if err != nil || len(ls.GetEntries()) != 2 {
		t.Errorf("ListSnapshots of the legacy volume: %v %v", ls, err)
	}
	ls, err = f.s.ListSnapshots(f.ctx, &csi.ListSnapshotsRequest{SnapshotId: oldSnap.String(), Secrets: f.secrets})
	if err != nil || len(ls.GetEntries()) != 1 || ls.GetEntries()[0].GetSnapshot().GetSourceVolumeId() != old.String() {
		t.Errorf("ListSnapshots of the legacy snapshot: %v %v", ls, err)
	}
	// Delete the source first: snapshots and clones keep working.
	f.deleteVolume(old.String())
	f.deleteSnapshot(oldSnap.String())
	f.deleteSnapshot(sn.GetSnapshotId())
	for _, v := range []*csi.Volume{fromOld, fromNew, clone} {
		f.deleteVolume(v.GetVolumeId())
	}
	f.requireClean()
}
