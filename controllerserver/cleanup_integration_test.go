package controllerserver

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func volumeSource(id string) *csi.VolumeContentSource {
	return &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: id}}}
}

// sourceSnapshots lists the snapshots of the image behind volume v.
func (f *fixture) sourceSnapshots(v *csi.Volume) []string {
	f.t.Helper()
	img := f.openVolume(v)
	defer img.Close(f.ctx)
	var out []string
	for _, si := range img.Stat().Snapshots {
		out = append(out, si.Name)
	}
	return out
}

// TestFailedCloneLeavesNothing: a volume clone refused after its
// temporary snapshot was taken (the requested size is below the
// source's) leaves neither the snapshot nor a journal entry.
func TestFailedCloneLeavesNothing(t *testing.T) {
	f := newFixture(t, Options{})
	src := f.createVolume("fc-src", 8<<20, nil)
	_, err := f.s.CreateVolume(f.ctx, &csi.CreateVolumeRequest{Name: "fc-small", VolumeCapabilities: mountCaps,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 4 << 20}, Parameters: f.params(), Secrets: f.secrets,
		VolumeContentSource: volumeSource(src.GetVolumeId())})
	if status.Code(err) != codes.OutOfRange {
		t.Fatalf("clone smaller than its source: %v, want OutOfRange", err)
	}
	if snaps := f.sourceSnapshots(src); len(snaps) != 0 {
		t.Errorf("the failed clone left snapshots %v on its source", snaps)
	}
	if keys := f.journalKeys(); len(keys) != 2 {
		t.Errorf("journal %v, want the source's two keys only", keys)
	}
	f.deleteVolume(src.GetVolumeId())
	f.requireClean()
}

// TestTimedOutCreatesAreFinished: CreateVolume (a volume clone, the
// longest path: reservation, temporary snapshot, clone, grow) cut off by
// deadlines spread over its run either leaves nothing behind or leaves
// what a retry of the same request finishes; deleting the volumes then
// leaves the pool clean and the source without temporary snapshots.
func TestTimedOutCreatesAreFinished(t *testing.T) {
	f := newFixture(t, Options{})
	src := f.createVolume("to-src", 4<<20, nil)
	create := func(ctx context.Context, name string) (*csi.CreateVolumeResponse, error) {
		return f.s.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: mountCaps,
			CapacityRange: &csi.CapacityRange{RequiredBytes: 8 << 20}, Parameters: f.params(), Secrets: f.secrets,
			VolumeContentSource: volumeSource(src.GetVolumeId())})
	}
	// How long an uncut request takes: the second of two (the monitors'
	// paxos proposal interval slows snapshot changes after the first).
	var took time.Duration
	for _, name := range []string{"to-full1", "to-full2"} {
		start := time.Now()
		full, err := create(f.ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		took = time.Since(start)
		f.deleteVolume(full.GetVolume().GetVolumeId())
	}
	const steps = 8
	failed := 0
	for i := range steps {
		name := fmt.Sprintf("to-%d", i)
		ctx, cancel := context.WithTimeout(f.ctx, took*time.Duration(i)/steps)
		_, err := create(ctx, name)
		cancel()
		if err != nil {
			failed++
			t.Logf("deadline %v: %v", took*time.Duration(i)/steps, status.Code(err))
			// The cut-off request undid what it made, after its deadline.
			if imgs, keys, snaps := f.images(), f.journalKeys(), f.sourceSnapshots(src); len(imgs) != 1 || len(keys) != 2 || len(snaps) != 0 {
				t.Errorf("%s cut off left images %v, journal keys %v, source snapshots %v", name, imgs, keys, snaps)
			}
		}
		r, err := retry(f.ctx, func() (*csi.CreateVolumeResponse, error) { return create(f.ctx, name) })
		if err != nil {
			t.Fatalf("retry of %s: %v", name, err)
		}
		if got := r.GetVolume().GetCapacityBytes(); got != 8<<20 {
			t.Errorf("%s: %d bytes, want %d", name, got, 8<<20)
		}
		if img := f.openVolume(r.GetVolume()); img.Size() != 8<<20 {
			t.Errorf("%s: image of %d bytes after the retry, want %d", name, img.Size(), 8<<20)
			_ = img.Close(f.ctx)
		} else {
			_ = img.Close(f.ctx)
		}
		f.deleteVolume(r.GetVolume().GetVolumeId())
	}
	if failed == 0 {
		t.Error("no deadline cut a request off: the test proves nothing")
	}
	if snaps := f.sourceSnapshots(src); len(snaps) != 0 {
		t.Errorf("clones that were cut off left snapshots %v on their source", snaps)
	}
	f.deleteVolume(src.GetVolumeId())
	f.requireClean()
}
