package controllerserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
	"github.com/csi-gorbd/csi-gorbd/rbd/encryption"
)

// fixture is a controller on the real pacific cluster, with names of its
// own: a cluster id, a journal instance and image name prefixes, so tests
// sharing the pool never see each other's objects.
type fixture struct {
	t        *testing.T
	ctx      context.Context
	s        *Server
	io       *rados.IOContext
	pool     string
	cluster  string
	instance string
	prefix   string
	secrets  map[string]string
	mon      string
	opened   []*encryption.Image // plaintext views a test closes before deleting
}

func newFixture(t *testing.T, o Options) *fixture {
	t.Helper()
	c := cephtest.Need(t, "pacific")
	mon, key, pool := c.Get("CEPH_MON_V2"), c.Get("CEPH_ADMIN_KEY"), c.Get("CEPH_POOL")
	if pool == "" {
		pool = "rbd"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	conn, err := rados.Connect(ctx, rados.Config{Monitors: []string{mon}, User: "admin", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	io, err := conn.OpenIOContext(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	var b [5]byte
	_, _ = rand.Read(b[:])
	run := hex.EncodeToString(b[:])
	f := &fixture{t: t, ctx: ctx, io: io, pool: pool, mon: mon,
		cluster: "pacific-" + run, instance: "cstest-" + run, prefix: "cstest-" + run + "-",
		secrets: map[string]string{"userID": "admin", "userKey": key}}
	o.Clusters = map[string]csiceph.ClusterInfo{f.cluster: {ClusterID: f.cluster, Monitors: []string{mon}}}
	o.Instance = f.instance
	f.s = New(o)
	t.Cleanup(func() {
		f.s.Close()
		f.purge()
	})
	return f
}

func (f *fixture) params(extra ...string) map[string]string {
	p := map[string]string{"clusterID": f.cluster, "pool": f.pool, "volumeNamePrefix": f.prefix + "v-"}
	for i := 0; i+1 < len(extra); i += 2 {
		p[extra[i]] = extra[i+1]
	}
	return p
}

var mountCaps = []*csi.VolumeCapability{capOf(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, false)}

// retry repeats op while it returns Aborted, as the CSI sidecars do.
func retry[T any](ctx context.Context, op func() (T, error)) (T, error) {
	for {
		v, err := op()
		if status.Code(err) != codes.Aborted || ctx.Err() != nil {
			return v, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *fixture) createVolume(name string, size int64, src *csi.VolumeContentSource, extra ...string) *csi.Volume {
	f.t.Helper()
	r, err := f.s.CreateVolume(f.ctx, &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: mountCaps,
		CapacityRange: &csi.CapacityRange{RequiredBytes: size}, Parameters: f.params(extra...), Secrets: f.secrets,
		VolumeContentSource: src})
	if err != nil {
		f.t.Fatalf("CreateVolume %s: %v", name, err)
	}
	return r.GetVolume()
}

func (f *fixture) deleteVolume(id string) {
	f.t.Helper()
	if _, err := f.s.DeleteVolume(f.ctx, &csi.DeleteVolumeRequest{VolumeId: id, Secrets: f.secrets}); err != nil {
		f.t.Fatalf("DeleteVolume %s: %v", id, err)
	}
}

func (f *fixture) createSnapshot(name, src string) *csi.Snapshot {
	f.t.Helper()
	r, err := f.s.CreateSnapshot(f.ctx, &csi.CreateSnapshotRequest{Name: name, SourceVolumeId: src, Secrets: f.secrets,
		Parameters: map[string]string{"snapshotNamePrefix": f.prefix + "s-"}})
	if err != nil {
		f.t.Fatalf("CreateSnapshot %s: %v", name, err)
	}
	return r.GetSnapshot()
}

func (f *fixture) deleteSnapshot(id string) {
	f.t.Helper()
	if _, err := f.s.DeleteSnapshot(f.ctx, &csi.DeleteSnapshotRequest{SnapshotId: id, Secrets: f.secrets}); err != nil {
		f.t.Fatalf("DeleteSnapshot %s: %v", id, err)
	}
}

// images lists our images in the pool directory.
func (f *fixture) images() []string {
	f.t.Helper()
	m, err := f.io.GetAllOmapValues(f.ctx, rbd.DirectoryObject, "name_"+f.prefix)
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		f.t.Fatalf("listing %s: %v", rbd.DirectoryObject, err)
	}
	var out []string
	for k := range m {
		out = append(out, strings.TrimPrefix(k, "name_"))
	}
	return out
}

// trash lists our trash entries (id → name).
func (f *fixture) trash() map[string]string {
	f.t.Helper()
	m, err := rbd.TrashList(f.ctx, f.io)
	if err != nil {
		f.t.Fatalf("trash list: %v", err)
	}
	out := map[string]string{}
	for id, e := range m {
		if strings.HasPrefix(e.Name, f.prefix) {
			out[id] = e.Name
		}
	}
	return out
}

// journalKeys lists the keys of both journal directories and the
// per-volume and per-snapshot journal objects of this fixture (their
// csi.imagename has its prefix): a volume or snapshot counts twice.
func (f *fixture) journalKeys() []string {
	f.t.Helper()
	var out []string
	for _, oid := range []string{VolumeJournalObject(f.instance), SnapshotJournalObject(f.instance)} {
		m, err := f.io.GetAllOmapValues(f.ctx, oid, "")
		if err != nil && !errors.Is(err, syscall.ENOENT) {
			f.t.Fatalf("reading %s: %v", oid, err)
		}
		for k := range m {
			out = append(out, oid+": "+k)
		}
	}
	for _, oid := range f.entryObjects() {
		out = append(out, "object "+oid)
	}
	return out
}

// entryObjects lists this fixture's csi.volume.<uuid> and csi.snap.<uuid>
// objects.
func (f *fixture) entryObjects() []string {
	f.t.Helper()
	var names []string
	err := f.io.ListObjects(f.ctx, func(e rados.ListEntry) error {
		if strings.HasPrefix(e.Oid, "csi.volume.") || strings.HasPrefix(e.Oid, "csi.snap.") {
			names = append(names, e.Oid)
		}
		return nil
	})
	if err != nil {
		f.t.Fatalf("listing objects: %v", err)
	}
	var out []string
	for _, oid := range names {
		m, err := f.io.GetOmapValuesByKeys(f.ctx, oid, "csi.imagename")
		if err == nil && strings.HasPrefix(string(m["csi.imagename"]), f.prefix) {
			out = append(out, oid)
		}
	}
	return out
}

// requireClean fails unless the pool holds none of our images, trash
// entries or journal keys.
func (f *fixture) requireClean() {
	f.t.Helper()
	if l := f.images(); len(l) > 0 {
		f.t.Errorf("images left: %v", l)
	}
	if l := f.trash(); len(l) > 0 {
		f.t.Errorf("trash entries left: %v", l)
	}
	if l := f.journalKeys(); len(l) > 0 {
		f.t.Errorf("journal keys left: %v", l)
	}
}

// purge removes whatever a failed test left: our images, trash entries
// and journal objects. Clones go before their parents by retrying.
func (f *fixture) purge() {
	ctx := context.Background()
	for round := 0; round < 5; round++ {
		left := 0
		for _, name := range f.images() {
			left++
			if img, err := rbd.Open(ctx, f.io, name, nil); err == nil {
				for _, si := range img.Stat().Snapshots {
					_ = img.RemoveSnapshot(ctx, si.Name)
				}
				_ = img.Close(ctx)
			}
			_ = rbd.Remove(ctx, f.io, name)
		}
		for id := range f.trash() {
			left++
			if img, err := rbd.OpenByID(ctx, f.io, id, nil); err == nil {
				for _, si := range img.Stat().Snapshots {
					_ = img.RemoveSnapshot(ctx, si.Name)
				}
				_ = img.Close(ctx)
			}
			_ = rbd.TrashRemove(ctx, f.io, id)
		}
		if left == 0 {
			break
		}
	}
	for _, oid := range append(f.entryObjects(), VolumeJournalObject(f.instance), SnapshotJournalObject(f.instance)) {
		_ = f.io.Remove(ctx, oid)
	}
}

func (f *fixture) openVolume(v *csi.Volume) *rbd.Image {
	f.t.Helper()
	name := v.GetVolumeContext()["imageName"]
	img, err := rbd.Open(f.ctx, f.io, name, nil)
	if err != nil {
		f.t.Fatalf("open %s: %v", name, err)
	}
	return img
}

func (f *fixture) readVolume(v *csi.Volume, n int) []byte {
	f.t.Helper()
	img := f.openVolume(v)
	defer img.Close(f.ctx)
	buf := make([]byte, n)
	if _, err := img.ReadAt(f.ctx, buf, 0); err != nil {
		f.t.Fatalf("read: %v", err)
	}
	return buf
}

// TestConcurrentCreateVolume: 100 concurrent CreateVolume calls over 20
// names make exactly 20 images, and every call for a name gets the same
// volume.
func TestConcurrentCreateVolume(t *testing.T) {
	f := newFixture(t, Options{})
	const names, calls = 20, 100
	ids := make([]string, calls)
	errs := make([]error, calls)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < calls; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := retry(f.ctx, func() (*csi.CreateVolumeResponse, error) {
				return f.s.CreateVolume(f.ctx, &csi.CreateVolumeRequest{Name: fmt.Sprintf("pvc-%d", i%names),
					VolumeCapabilities: mountCaps, CapacityRange: &csi.CapacityRange{RequiredBytes: 8 << 20},
					Parameters: f.params(), Secrets: f.secrets})
			})
			ids[i], errs[i] = r.GetVolume().GetVolumeId(), err
		}()
	}
	close(start)
	wg.Wait()
	byName := map[int]string{}
	for i := 0; i < calls; i++ {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if prev, ok := byName[i%names]; ok && prev != ids[i] {
			t.Errorf("name pvc-%d got two volumes: %s and %s", i%names, prev, ids[i])
		}
		byName[i%names] = ids[i]
	}
	if got := len(f.images()); got != names {
		t.Errorf("%d images in the pool, want %d: %v", got, names, f.images())
	}
	for _, id := range byName {
		f.deleteVolume(id)
	}
	f.requireClean()
}

// TestDeleteVolumeRacesCreateSnapshot: whichever wins, nothing is orphaned
// and no snapshot reported as made is lost.
func TestDeleteVolumeRacesCreateSnapshot(t *testing.T) {
	f := newFixture(t, Options{})
	snapWon, deleteWon := 0, 0
	for round := 0; round < 12; round++ {
		v := f.createVolume(fmt.Sprintf("race-%d", round), 4<<20, nil)
		var wg sync.WaitGroup
		var snapResp *csi.CreateSnapshotResponse
		var snapErr, delErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			snapResp, snapErr = retry(f.ctx, func() (*csi.CreateSnapshotResponse, error) {
				return f.s.CreateSnapshot(f.ctx, &csi.CreateSnapshotRequest{Name: fmt.Sprintf("race-snap-%d", round),
					SourceVolumeId: v.GetVolumeId(), Secrets: f.secrets})
			})
		}()
		go func() {
			defer wg.Done()
			_, delErr = retry(f.ctx, func() (*csi.DeleteVolumeResponse, error) {
				return f.s.DeleteVolume(f.ctx, &csi.DeleteVolumeRequest{VolumeId: v.GetVolumeId(), Secrets: f.secrets})
			})
		}()
		wg.Wait()
		if delErr != nil {
			t.Fatalf("round %d: DeleteVolume: %v", round, delErr)
		}
		switch {
		case snapErr == nil:
			snapWon++
			// The snapshot must be usable: restore it, then clean up.
			sid := snapResp.GetSnapshot().GetSnapshotId()
			ls, err := f.s.ListSnapshots(f.ctx, &csi.ListSnapshotsRequest{SnapshotId: sid, Secrets: f.secrets})
			if err != nil || len(ls.GetEntries()) != 1 {
				t.Fatalf("round %d: snapshot %s lost: %v %v", round, sid, ls, err)
			}
			r := f.createVolume(fmt.Sprintf("race-restore-%d", round), 4<<20,
				&csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: sid}}})
			f.deleteSnapshot(sid)
			f.deleteVolume(r.GetVolumeId())
		case status.Code(snapErr) == codes.NotFound:
			deleteWon++
		default:
			t.Fatalf("round %d: CreateSnapshot: %v", round, snapErr)
		}
		f.requireClean()
		if t.Failed() {
			t.Fatalf("round %d left objects behind", round)
		}
	}
	t.Logf("snapshot first %d times, delete first %d times", snapWon, deleteWon)
}

// TestLifecycle is the check from the issue: create, write data, snapshot,
// delete the source, restore from the snapshot, verify the data, delete
// the snapshot, verify again, delete everything — and the pool ends with
// no images, trash entries or journal keys.
func TestLifecycle(t *testing.T) {
	f := newFixture(t, Options{})
	src := f.createVolume("life-src", 16<<20, nil)
	data := make([]byte, 3<<20)
	_, _ = rand.Read(data)
	img := f.openVolume(src)
	if _, err := img.WriteAt(f.ctx, data, 0); err != nil {
		t.Fatal(err)
	}
	_ = img.Close(f.ctx)

	snap := f.createSnapshot("life-snap", src.GetVolumeId())
	if snap.GetSizeBytes() != 16<<20 || !snap.GetReadyToUse() {
		t.Errorf("snapshot %+v", snap)
	}
	f.deleteVolume(src.GetVolumeId())
	if n := len(f.trash()); n != 1 {
		t.Errorf("source with a snapshot: %d trash entries, want 1", n)
	}
	if l := f.images(); len(l) != 0 {
		t.Errorf("deleted source still listed: %v", l)
	}

	restored := f.createVolume("life-restored", 32<<20, &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
		Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snap.GetSnapshotId()}}})
	if restored.GetCapacityBytes() != 32<<20 {
		t.Errorf("restored capacity %d", restored.GetCapacityBytes())
	}
	if !bytes.Equal(f.readVolume(restored, len(data)), data) {
		t.Fatal("restored volume does not hold the snapshot's data")
	}

	f.deleteSnapshot(snap.GetSnapshotId())
	ls, err := f.s.ListSnapshots(f.ctx, &csi.ListSnapshotsRequest{SnapshotId: snap.GetSnapshotId(), Secrets: f.secrets})
	if err != nil || len(ls.GetEntries()) != 0 {
		t.Errorf("deleted snapshot still listed: %v %v", ls, err)
	}
	if _, err := f.s.CreateVolume(f.ctx, &csi.CreateVolumeRequest{Name: "life-again", VolumeCapabilities: mountCaps,
		Parameters: f.params(), Secrets: f.secrets, VolumeContentSource: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snap.GetSnapshotId()}}}}); status.Code(err) != codes.NotFound {
		t.Errorf("restore from a deleted snapshot: %v, want NotFound", err)
	}
	if !bytes.Equal(f.readVolume(restored, len(data)), data) {
		t.Fatal("restored volume lost its data when the snapshot was deleted")
	}
	// The clone still holds the trashed source: it is not purged yet, and
	// the deleted snapshot waits in the trash snapshot namespace, as
	// librbd leaves it (no user snapshot in `rbd snap ls`).
	tr := f.trash()
	if n := len(tr); n != 1 {
		t.Errorf("%d trash entries while the clone lives, want 1", n)
	}
	for id := range tr {
		img, err := rbd.OpenByID(f.ctx, f.io, id, &rbd.OpenOptions{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		snaps := img.Stat().Snapshots
		_ = img.Close(f.ctx)
		if len(snaps) != 1 || snaps[0].Namespace.Type != rbd.SnapNamespaceTrash || !strings.HasPrefix(snaps[0].Namespace.OriginalName, f.prefix+"s-") {
			t.Errorf("trashed source's snapshots: %+v, want one in the trash namespace named %ss-<uuid>", snaps, f.prefix)
		}
	}

	f.deleteVolume(restored.GetVolumeId())
	f.requireClean()
}

// TestCloneSurvivesSource: a clone of a volume keeps its data when the
// source goes; the temporary snapshot and the trashed source are purged
// with the clone.
func TestCloneSurvivesSource(t *testing.T) {
	f := newFixture(t, Options{})
	src := f.createVolume("cl-src", 8<<20, nil)
	data := []byte("clone v2, no copy")
	img := f.openVolume(src)
	if _, err := img.WriteAt(f.ctx, data, 0); err != nil {
		t.Fatal(err)
	}
	_ = img.Close(f.ctx)
	cl := f.createVolume("cl-clone", 8<<20, &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
		Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: src.GetVolumeId()}}})
	f.deleteVolume(src.GetVolumeId())
	if n := len(f.trash()); n != 1 {
		t.Errorf("source with a clone: %d trash entries, want 1", n)
	}
	if got := f.readVolume(cl, len(data)); !bytes.Equal(got, data) {
		t.Fatalf("clone reads %q", got)
	}
	f.deleteVolume(cl.GetVolumeId())
	f.requireClean()
}

// TestFlattenPastDepth: with maxCloneDepth 2, the third clone in a chain
// is flattened in the background; the chain above it is then freed as
// its members are deleted.
func TestFlattenPastDepth(t *testing.T) {
	f := newFixture(t, Options{})
	prev := f.createVolume("chain-0", 4<<20, nil)
	img := f.openVolume(prev)
	if _, err := img.WriteAt(f.ctx, []byte("chain"), 4096); err != nil {
		t.Fatal(err)
	}
	_ = img.Close(f.ctx)
	vols := []*csi.Volume{prev}
	for i := 1; i <= 3; i++ {
		prev = f.createVolume(fmt.Sprintf("chain-%d", i), 4<<20, &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
			Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: prev.GetVolumeId()}}}, "maxCloneDepth", "2")
		vols = append(vols, prev)
	}
	if err := f.s.WaitBackground(f.ctx); err != nil {
		t.Fatal(err)
	}
	for _, err := range f.s.BackgroundErrors() {
		t.Errorf("background: %v", err)
	}
	for i, v := range vols {
		img := f.openVolume(v)
		hasParent := img.Stat().Parent != nil
		_ = img.Close(f.ctx)
		if want := i == 1 || i == 2; hasParent != want {
			t.Errorf("chain-%d has a parent: %v, want %v", i, hasParent, want)
		}
	}
	if got := f.readVolume(vols[3], 8192)[4096:4101]; string(got) != "chain" {
		t.Errorf("flattened clone reads %q", got)
	}
	for _, v := range vols {
		f.deleteVolume(v.GetVolumeId())
	}
	f.requireClean()
}

// TestBadInput: each mistake an operator can make gets its gRPC code and a
// message that says what to fix.
func TestBadInput(t *testing.T) {
	f := newFixture(t, Options{ConnectTimeout: 10 * time.Second})
	vol := f.createVolume("bad-base", 4<<20, nil)
	defer f.deleteVolume(vol.GetVolumeId())
	missingVol := csiceph.VolumeID{ClusterID: f.cluster, PoolID: f.io.PoolID(), Image: f.prefix + "v-missing"}
	missingSnap := csiceph.SnapshotID{VolumeID: csiceph.VolumeID{ClusterID: f.cluster, PoolID: f.io.PoolID(), Image: f.prefix + "v-missing"}, Snap: "s"}
	create := func(p map[string]string, sec map[string]string, cr *csi.CapacityRange, src *csi.VolumeContentSource) error {
		_, err := f.s.CreateVolume(f.ctx, &csi.CreateVolumeRequest{Name: "bad-" + hex.EncodeToString([]byte(fmt.Sprint(len(p), cr))),
			VolumeCapabilities: mountCaps, Parameters: p, Secrets: sec, CapacityRange: cr, VolumeContentSource: src})
		return err
	}
	wrongKey := map[string]string{"userID": "admin", "userKey": "AQBTmgNpAAAAABAAjSCv7Z2yqnE0RKxqp6w6Xw=="}
	for _, tc := range []struct {
		name string
		err  error
		code codes.Code
		msg  string // must appear in the message
	}{
		{"unknown clusterID", create(map[string]string{"clusterID": "nope", "pool": f.pool}, f.secrets, nil, nil),
			codes.InvalidArgument, `clusterID "nope" is not in the clusters file (known: ` + f.cluster + `); fix the StorageClass parameter clusterID`},
		{"missing secrets", create(f.params(), nil, nil, nil), codes.InvalidArgument, "userID and userKey"},
		{"wrong key", create(f.params(), wrongKey, nil, nil), codes.PermissionDenied, `refused Ceph user "admin": check userID and userKey in the secret`},
		{"unknown user", create(f.params(), map[string]string{"userID": "nobody-" + f.instance, "userKey": f.secrets["userKey"]}, nil, nil),
			codes.PermissionDenied, "check userID and userKey"},
		{"missing pool", create(f.params("pool", f.prefix+"no-pool"), f.secrets, nil, nil), codes.NotFound, `pool "` + f.prefix + `no-pool" (StorageClass parameter pool) does not exist`},
		{"required over limit", create(f.params(), f.secrets, &csi.CapacityRange{RequiredBytes: 2 << 20, LimitBytes: 1 << 20}, nil),
			codes.OutOfRange, "exceeds limit_bytes"},
		{"limit below a MiB", create(f.params(), f.secrets, &csi.CapacityRange{LimitBytes: 1000}, nil), codes.OutOfRange, "whole MiB"},
		{"negative", create(f.params(), f.secrets, &csi.CapacityRange{RequiredBytes: -1}, nil), codes.OutOfRange, "negative"},
		{"huge", create(f.params(), f.secrets, &csi.CapacityRange{RequiredBytes: 1 << 62}, nil), codes.OutOfRange, "over the largest volume"},
		{"unknown source snapshot", create(f.params(), f.secrets, nil, &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: missingSnap.String()}}}), codes.NotFound, `image "` + missingSnap.Image + `" does not exist in pool`},
		{"foreign source volume id", create(f.params(), f.secrets, nil, &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
			Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: "pvc-123"}}}), codes.NotFound, "malformed id"},
		{"bad imageFeatures", create(f.params("imageFeatures", "layering,journalling"), f.secrets, nil, nil), codes.InvalidArgument, "imageFeatures"},
		{"validate unknown volume", errOf(f.s.ValidateVolumeCapabilities(f.ctx, &csi.ValidateVolumeCapabilitiesRequest{
			VolumeId: missingVol.String(), VolumeCapabilities: mountCaps, Secrets: f.secrets})), codes.NotFound, `image "` + missingVol.Image + `" does not exist in pool ` + f.pool},
		{"expand unknown volume", errOf(f.s.ControllerExpandVolume(f.ctx, &csi.ControllerExpandVolumeRequest{
			VolumeId: missingVol.String(), CapacityRange: &csi.CapacityRange{RequiredBytes: 8 << 20}, Secrets: f.secrets})), codes.NotFound, `image "` + missingVol.Image + `" does not exist in pool ` + f.pool},
		{"snapshot of unknown volume", errOf(f.s.CreateSnapshot(f.ctx, &csi.CreateSnapshotRequest{Name: "bad-snap",
			SourceVolumeId: missingVol.String(), Secrets: f.secrets})), codes.NotFound, `image "` + missingVol.Image + `" does not exist in pool ` + f.pool},
		{"snapshot of a foreign id", errOf(f.s.CreateSnapshot(f.ctx, &csi.CreateSnapshotRequest{Name: "bad-snap2",
			SourceVolumeId: "pvc-123", Secrets: f.secrets})), codes.NotFound, "malformed id"},
		{"expand with a wrong key", errOf(f.s.ControllerExpandVolume(f.ctx, &csi.ControllerExpandVolumeRequest{
			VolumeId: vol.GetVolumeId(), CapacityRange: &csi.CapacityRange{RequiredBytes: 8 << 20}, Secrets: wrongKey})), codes.PermissionDenied, "check userID and userKey"},
	} {
		st, _ := status.FromError(tc.err)
		if st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
			t.Errorf("%s: %v (%q), want %v with %q", tc.name, st.Code(), st.Message(), tc.code, tc.msg)
		} else {
			t.Logf("%s: %v: %s", tc.name, st.Code(), st.Message())
		}
	}
	// Deleting unknown ids is success (idempotence).
	if _, err := f.s.DeleteVolume(f.ctx, &csi.DeleteVolumeRequest{VolumeId: missingVol.String(), Secrets: f.secrets}); err != nil {
		t.Errorf("DeleteVolume of an unknown volume: %v", err)
	}
	if _, err := f.s.DeleteSnapshot(f.ctx, &csi.DeleteSnapshotRequest{SnapshotId: missingSnap.String(), Secrets: f.secrets}); err != nil {
		t.Errorf("DeleteSnapshot of an unknown snapshot: %v", err)
	}
}

// TestReadyReportsReachability: Probe's hook is ready with the real
// cluster configured, before and after a session exists, and not ready
// when a configured cluster's monitors refuse connections.
func TestReadyReportsReachability(t *testing.T) {
	f := newFixture(t, Options{})
	if !f.s.Ready(f.ctx) {
		t.Error("not ready before any session, with the cluster up")
	}
	v := f.createVolume("ready", 1<<20, nil)
	if !f.s.Ready(f.ctx) {
		t.Error("not ready with a live session")
	}
	f.deleteVolume(v.GetVolumeId())
	down := New(Options{Clusters: map[string]csiceph.ClusterInfo{
		f.cluster: {ClusterID: f.cluster, Monitors: []string{f.mon}},
		"down":    {ClusterID: "down", Monitors: []string{"127.0.0.1:1"}},
	}})
	defer down.Close()
	if down.Ready(f.ctx) {
		t.Error("ready although cluster \"down\" refuses connections")
	}
	f.requireClean()
}

// TestChainCollected: a chain of restores (A -snap-> B -snap-> C) whose
// sources and snapshots are deleted first keeps C readable; deleting C,
// the last user, purges the whole chain from the trash.
func TestChainCollected(t *testing.T) {
	f := newFixture(t, Options{})
	a := f.createVolume("chain-a", 4<<20, nil)
	img := f.openVolume(a)
	if _, err := img.WriteAt(f.ctx, []byte("from A"), 0); err != nil {
		t.Fatal(err)
	}
	_ = img.Close(f.ctx)
	fromSnap := func(id string) *csi.VolumeContentSource {
		return &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: id}}}
	}
	sa := f.createSnapshot("chain-sa", a.GetVolumeId())
	b := f.createVolume("chain-b", 4<<20, fromSnap(sa.GetSnapshotId()))
	img = f.openVolume(b)
	if _, err := img.WriteAt(f.ctx, []byte("from B"), 1<<20); err != nil {
		t.Fatal(err)
	}
	_ = img.Close(f.ctx)
	sb := f.createSnapshot("chain-sb", b.GetVolumeId())
	c := f.createVolume("chain-c", 4<<20, fromSnap(sb.GetSnapshotId()))

	f.deleteVolume(a.GetVolumeId())
	f.deleteSnapshot(sa.GetSnapshotId())
	f.deleteVolume(b.GetVolumeId())
	f.deleteSnapshot(sb.GetSnapshotId())
	if n := len(f.trash()); n != 2 {
		t.Errorf("%d trash entries while C lives, want 2 (A and B)", n)
	}
	got := f.readVolume(c, 2<<20)
	if string(got[:6]) != "from A" || string(got[1<<20:1<<20+6]) != "from B" {
		t.Fatalf("C reads %q / %q", got[:6], got[1<<20:1<<20+6])
	}
	f.deleteVolume(c.GetVolumeId())
	f.requireClean()
}
