package controllerserver

import (
	"context"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
)

func TestRoundCapacity(t *testing.T) {
	for _, tc := range []struct {
		req, lim int64
		want     uint64
		fail     bool
	}{
		{0, 0, DefaultVolumeSize, false},
		{1, 0, mib, false},
		{mib, 0, mib, false},
		{mib + 1, 0, 2 * mib, false},
		{0, 3 * mib, 3 * mib, false},
		{mib + 1, mib + 2, 0, true},
		{2 * mib, mib, 0, true},
		{-1, 0, 0, true},
		{MaxVolumeSize, 0, MaxVolumeSize, false},
		{MaxVolumeSize + 1, 0, 0, true},
		{1 << 62, 0, 0, true},
	} {
		got, err := RoundCapacity(&csi.CapacityRange{RequiredBytes: tc.req, LimitBytes: tc.lim})
		if (err != nil) != tc.fail || (!tc.fail && got != tc.want) {
			t.Errorf("RoundCapacity(%d, %d) = %d, %v; want %d fail=%v", tc.req, tc.lim, got, err, tc.want, tc.fail)
		}
	}
	if !fits(16*mib, &csi.CapacityRange{RequiredBytes: 16 * mib}) || fits(16*mib, &csi.CapacityRange{RequiredBytes: 32 * mib}) ||
		fits(16*mib, &csi.CapacityRange{LimitBytes: 8 * mib}) {
		t.Error("fits")
	}
}

func capOf(mode csi.VolumeCapability_AccessMode_Mode, block bool) *csi.VolumeCapability {
	c := &csi.VolumeCapability{AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode}}
	if block {
		c.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
	} else {
		c.AccessType = &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}}
	}
	return c
}

func TestGuard(t *testing.T) {
	s := New(Options{})
	release, err := s.guard("volume-name/a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.guard("volume-name/a"); status.Code(err) != codes.Aborted {
		t.Errorf("duplicate in flight: %v, want Aborted", err)
	}
	r2, err := s.guard("volume-name/b")
	if err != nil {
		t.Fatal(err)
	}
	r2()
	release()
	if r, err := s.guard("volume-name/a"); err != nil {
		t.Errorf("after release: %v", err)
	} else {
		r()
	}
}

func TestRequestValidation(t *testing.T) {
	s := New(Options{Clusters: map[string]csiceph.ClusterInfo{"c": {ClusterID: "c", Monitors: []string{"127.0.0.1:1"}}}})
	ctx := context.Background()
	caps := []*csi.VolumeCapability{capOf(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, false)}
	params := map[string]string{"clusterID": "c", "pool": "rbd"}
	for name, err := range map[string]error{
		"no name":      errOf(s.CreateVolume(ctx, &csi.CreateVolumeRequest{VolumeCapabilities: caps, Parameters: params})),
		"no caps":      errOf(s.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "n", Parameters: params})),
		"no pool":      errOf(s.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "n", VolumeCapabilities: caps, Parameters: map[string]string{"clusterID": "c"}})),
		"no secrets":   errOf(s.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "n", VolumeCapabilities: caps, Parameters: params})),
		"bad cluster":  errOf(s.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "n", VolumeCapabilities: caps, Parameters: map[string]string{"clusterID": "x", "pool": "rbd"}, Secrets: map[string]string{"userID": "a", "userKey": "b"}})),
		"del no id":    errOf(s.DeleteVolume(ctx, &csi.DeleteVolumeRequest{})),
		"snap no src":  errOf(s.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "s"})),
		"expand nocap": errOf(s.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: "v1.YzE.1a.x"})),
	} {
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
	if _, err := s.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: "not-ours"}); err != nil {
		t.Errorf("DeleteVolume of a foreign id: %v, want success", err)
	}
	if _, err := s.ListSnapshots(ctx, &csi.ListSnapshotsRequest{StartingToken: "x"}); status.Code(err) != codes.Aborted {
		t.Errorf("bad token: %v, want Aborted", err)
	}
	if _, err := s.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "n", VolumeCapabilities: caps, Parameters: params,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 3 * mib, LimitBytes: 2 * mib}}); status.Code(err) != codes.OutOfRange {
		t.Errorf("bad range: %v, want OutOfRange", err)
	}
}

func errOf[T any](_ T, err error) error { return err }

// TestMalformedKey: a userKey that is no Ceph key is the request's fault
// (InvalidArgument), as the node service says too (nodeserver
// TestMalformedKey): both use one table.
func TestMalformedKey(t *testing.T) {
	s := New(Options{Clusters: map[string]csiceph.ClusterInfo{"c": {ClusterID: "c", Monitors: []string{"127.0.0.1:1"}}}})
	defer s.Close()
	_, err := s.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: "n",
		VolumeCapabilities: []*csi.VolumeCapability{capOf(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, false)},
		Parameters:         map[string]string{"clusterID": "c", "pool": "rbd"},
		Secrets:            map[string]string{"userID": "admin", "userKey": "not-a-key"}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("malformed userKey: %v, want InvalidArgument", err)
	}
}
