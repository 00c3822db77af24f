package controllerserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// rbdCLI runs the rbd CLI against the pacific cluster.
func (f *fixture) rbdCLI(args ...string) ([]byte, error) {
	c := cephtest.Need(f.t, "pacific")
	full := append([]string{"rbd", "-c", c.Conf(), "-k", c.Keyring()}, args...)
	if cli := c.Get("CEPH_CLI"); cli != "" {
		full = append(strings.Fields(cli), full...)
	}
	cmd := exec.Command(full[0], full[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, errors.Join(err, errors.New(stderr.String()))
	}
	return out, nil
}

func (f *fixture) createGroupSnapshot(name string, ids ...string) (*csi.VolumeGroupSnapshot, error) {
	r, err := f.s.CreateVolumeGroupSnapshot(f.ctx, &csi.CreateVolumeGroupSnapshotRequest{Name: name, SourceVolumeIds: ids,
		Secrets: f.secrets, Parameters: map[string]string{"csi.storage.k8s.io/volumegroupsnapshot/name": name}})
	return r.GetGroupSnapshot(), err
}

func (f *fixture) writeVolume(v *csi.Volume, data []byte) {
	f.t.Helper()
	img := f.openVolume(v)
	defer img.Close(f.ctx)
	if _, err := img.WriteAt(f.ctx, data, 0); err != nil {
		f.t.Fatal(err)
	}
}

// TestVolumeGroupSnapshot: a volume group snapshot of three volumes is
// an RBD group snapshot (`rbd group snap ls` lists it with the three
// images) taken while a user of one image is asked to quiesce; a repeated
// request returns the same snapshot, another source set under the name
// is AlreadyExists; every member restores the data of the snapshot's
// point as a volume of its own; a member alone cannot be deleted; the
// volumes can be in a second group snapshot at once; a source volume
// deleted while the group snapshot exists waits in the trash, and the
// restored volumes outlive the group snapshot; at the end nothing is
// left (images, trash, journal, group).
func TestVolumeGroupSnapshot(t *testing.T) {
	f := newFixture(t, Options{})
	vols := make([]*csi.Volume, 3)
	before := make([][]byte, 3)
	for i := range vols {
		vols[i] = f.createVolume("gs-src-"+string(rune('a'+i)), 8<<20, nil)
		before[i] = []byte("before the group snapshot, volume " + string(rune('a'+i)))
		f.writeVolume(vols[i], before[i])
	}
	ids := []string{vols[0].GetVolumeId(), vols[1].GetVolumeId(), vols[2].GetVolumeId()}

	// A user of the first image (a node serving it) answers the quiesce.
	user := f.openVolume(vols[0])
	var quiesced, unquiesced atomic.Int32
	user.OnQuiesce(&rbd.QuiesceHooks{
		Quiesce:   func(context.Context) error { quiesced.Add(1); return nil },
		Unquiesce: func(context.Context) { unquiesced.Add(1) },
	})

	vgs, err := f.createGroupSnapshot("gs-1", ids[2], ids[0], ids[1])
	if err != nil {
		t.Fatalf("CreateVolumeGroupSnapshot: %v", err)
	}
	for wait := time.Now().Add(5 * time.Second); unquiesced.Load() == 0 && time.Now().Before(wait); {
		time.Sleep(20 * time.Millisecond)
	}
	if quiesced.Load() != 1 || unquiesced.Load() != 1 {
		t.Errorf("the serving user was quiesced %d and released %d times, want 1 and 1", quiesced.Load(), unquiesced.Load())
	}
	_ = user.Close(f.ctx)
	if len(vgs.GetSnapshots()) != 3 || !vgs.GetReadyToUse() {
		t.Fatalf("group snapshot %v", vgs)
	}
	bySource := map[string]*csi.Snapshot{}
	for _, sn := range vgs.GetSnapshots() {
		if sn.GetGroupSnapshotId() != vgs.GetGroupSnapshotId() || !sn.GetReadyToUse() || sn.GetSizeBytes() != 8<<20 {
			t.Errorf("member %v", sn)
		}
		bySource[sn.GetSourceVolumeId()] = sn
	}
	for _, id := range ids {
		if bySource[id] == nil {
			t.Fatalf("no member for source %s", id)
		}
	}

	again, err := f.createGroupSnapshot("gs-1", ids...)
	if err != nil {
		t.Fatalf("repeated CreateVolumeGroupSnapshot: %v", err)
	}
	if again.GetGroupSnapshotId() != vgs.GetGroupSnapshotId() || len(again.GetSnapshots()) != 3 {
		t.Errorf("repeat: %v, first %v", again, vgs)
	}
	for _, sn := range again.GetSnapshots() {
		if bySource[sn.GetSourceVolumeId()].GetSnapshotId() != sn.GetSnapshotId() {
			t.Errorf("repeat: member %s differs", sn.GetSnapshotId())
		}
	}
	if _, err := f.createGroupSnapshot("gs-1", ids[0], ids[1]); status.Code(err) != codes.AlreadyExists {
		t.Errorf("same name, other sources: %v, want AlreadyExists", err)
	}
	if _, err := f.createGroupSnapshot("gs-dup", ids[0], ids[0]); status.Code(err) != codes.InvalidArgument {
		t.Errorf("a source named twice: %v, want InvalidArgument", err)
	}

	// The RBD CLI sees the group snapshot with its three members.
	group := mustSnapshotEntryGroup(t, f, vgs.GetGroupSnapshotId())
	out, err := f.rbdCLI("group", "snap", "ls", "--format", "json", f.pool+"/"+group)
	if err != nil {
		t.Fatal(err)
	}
	var snaps []struct {
		Snapshot string `json:"snapshot"`
		State    string `json:"state"`
	}
	if err := json.Unmarshal(out, &snaps); err != nil || len(snaps) != 1 || (snaps[0].State != "complete" && snaps[0].State != "ok") {
		t.Errorf("rbd group snap ls %s: %s (%v)", group, out, err)
	}
	if out, err := f.rbdCLI("group", "image", "list", f.pool+"/"+group); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("the group keeps members after the snapshot: %q %v", out, err)
	}
	for i, v := range vols {
		name := v.GetVolumeContext()["imageName"]
		out, err := f.rbdCLI("snap", "ls", "--all", "--format", "json", f.pool+"/"+name)
		if err != nil || !strings.Contains(string(out), `"type":"group"`) {
			t.Errorf("rbd snap ls --all of volume %d: %s %v", i, out, err)
		}
	}

	// Later writes are not in the snapshot.
	for i, v := range vols {
		f.writeVolume(v, bytes.Repeat([]byte{'X'}, len(before[i])))
	}

	// Members alone cannot go; Get lists them.
	if _, err := f.s.DeleteSnapshot(f.ctx, &csi.DeleteSnapshotRequest{SnapshotId: bySource[ids[0]].GetSnapshotId(), Secrets: f.secrets}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("DeleteSnapshot of a member: %v, want FailedPrecondition", err)
	}
	got, err := f.s.GetVolumeGroupSnapshot(f.ctx, &csi.GetVolumeGroupSnapshotRequest{GroupSnapshotId: vgs.GetGroupSnapshotId(), Secrets: f.secrets})
	if err != nil || len(got.GetGroupSnapshot().GetSnapshots()) != 3 {
		t.Fatalf("GetVolumeGroupSnapshot: %v %v", got, err)
	}
	if _, err := f.s.GetVolumeGroupSnapshot(f.ctx, &csi.GetVolumeGroupSnapshotRequest{GroupSnapshotId: vgs.GetGroupSnapshotId(),
		SnapshotIds: []string{ids[0]}, Secrets: f.secrets}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Get with a foreign snapshot id: %v, want InvalidArgument", err)
	}
	// ListSnapshots shows members with their group.
	ls, err := f.s.ListSnapshots(f.ctx, &csi.ListSnapshotsRequest{SourceVolumeId: ids[1], Secrets: f.secrets})
	if err != nil || len(ls.GetEntries()) != 1 || ls.GetEntries()[0].GetSnapshot().GetGroupSnapshotId() != vgs.GetGroupSnapshotId() {
		t.Errorf("ListSnapshots of a source: %v %v", ls, err)
	}

	// Every member restores the snapshot's point.
	restored := make([]*csi.Volume, 3)
	for i, id := range ids {
		restored[i] = f.createVolume("gs-restore-"+string(rune('a'+i)), 8<<20, &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: bySource[id].GetSnapshotId()}}})
		if got := f.readVolume(restored[i], len(before[i])); !bytes.Equal(got, before[i]) {
			t.Errorf("restore of member %d reads %q, want %q", i, got, before[i])
		}
	}

	// The volumes can be in another group snapshot meanwhile.
	vgs2, err := f.createGroupSnapshot("gs-2", ids[0], ids[1])
	if err != nil {
		t.Fatalf("second group snapshot of the same volumes: %v", err)
	}

	// A source deleted while group snapshots exist waits in the trash;
	// the restored volumes outlive the group snapshot.
	f.deleteVolume(ids[0])
	if n := len(f.trash()); n != 1 {
		t.Errorf("source with group snapshots deleted: %d trash entries, want 1", n)
	}
	for _, g := range []*csi.VolumeGroupSnapshot{vgs, vgs2} {
		if _, err := f.s.DeleteVolumeGroupSnapshot(f.ctx, &csi.DeleteVolumeGroupSnapshotRequest{GroupSnapshotId: g.GetGroupSnapshotId(),
			Secrets: f.secrets}); err != nil {
			t.Fatalf("DeleteVolumeGroupSnapshot: %v", err)
		}
	}
	if _, err := f.s.DeleteVolumeGroupSnapshot(f.ctx, &csi.DeleteVolumeGroupSnapshotRequest{GroupSnapshotId: vgs.GetGroupSnapshotId(),
		Secrets: f.secrets}); err != nil {
		t.Errorf("repeated DeleteVolumeGroupSnapshot: %v", err)
	}
	if _, err := rbd.GroupID(f.ctx, f.io, group); !errors.Is(err, rbd.ErrNotFound) {
		t.Errorf("group %s after the delete: %v", group, err)
	}
	if _, err := f.s.GetVolumeGroupSnapshot(f.ctx, &csi.GetVolumeGroupSnapshotRequest{GroupSnapshotId: vgs.GetGroupSnapshotId(), Secrets: f.secrets}); status.Code(err) != codes.NotFound {
		t.Errorf("Get after the delete: %v, want NotFound", err)
	}
	for i := range restored {
		if got := f.readVolume(restored[i], len(before[i])); !bytes.Equal(got, before[i]) {
			t.Errorf("restore %d after the group snapshot's delete reads %q", i, got)
		}
	}
	for _, v := range append(restored, vols[1], vols[2]) {
		f.deleteVolume(v.GetVolumeId())
	}
	deadline := time.Now().Add(time.Minute)
	for len(f.trash()) > 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	f.requireClean()
	left, err := rbd.ListGroups(f.ctx, f.io)
	if err != nil {
		t.Fatal(err)
	}
	var ours []string
	for name := range left {
		if name == group {
			ours = append(ours, name)
		}
	}
	sort.Strings(ours)
	if len(ours) > 0 {
		t.Errorf("groups left: %v", ours)
	}
}

// mustSnapshotEntryGroup returns the RBD group of a volume group
// snapshot id, read from its journal entry.
func mustSnapshotEntryGroup(t *testing.T, f *fixture, id string) string {
	t.Helper()
	g, err := f.s.openGroupSnapshot(f.ctx, id, f.secrets)
	if err != nil {
		t.Fatal(err)
	}
	return g.group
}
