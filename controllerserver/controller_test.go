package controllerserver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

func TestVolumeIDRoundTrip(t *testing.T) {
	for _, v := range []VolumeID{
		{ClusterID: "ee0104fd-d78c-4527-bc54-8ae7ecf3cbfc", PoolID: 1, Image: "csi-vol-0b1c"},
		{ClusterID: "a.b_c-d", PoolID: 0x7fffffff, Image: "name.with.dots-and_more"},
	} {
		s := v.String()
		if strings.ContainsAny(s, "/+=?&#% ") {
			t.Errorf("%q is not URL-safe", s)
		}
		got, err := ParseVolumeID(s)
		if err != nil || got != v {
			t.Errorf("ParseVolumeID(%q) = %+v, %v; want %+v", s, got, err, v)
		}
		sn := SnapshotID{VolumeID: v, Snap: "csi-snap-1.2@3"}
		got2, err := ParseSnapshotID(sn.String())
		if err != nil || got2 != sn {
			t.Errorf("ParseSnapshotID(%q) = %+v, %v; want %+v", sn.String(), got2, err, sn)
		}
		if _, err := ParseVolumeID(sn.String()); !errors.Is(err, ErrBadID) {
			t.Errorf("a snapshot id parsed as a volume id: %v", err)
		}
		if _, err := ParseSnapshotID(s); !errors.Is(err, ErrBadID) {
			t.Errorf("a volume id parsed as a snapshot id: %v", err)
		}
	}
	// A fixed vector, so the format cannot change by accident.
	v := VolumeID{ClusterID: "c1", PoolID: 26, Image: "csi-vol-x"}
	if got, want := v.String(), "v1.YzE.1a.csi-vol-x"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestParseIDRejects(t *testing.T) {
	for _, s := range []string{"", "v1", "v1.", "v1.YzE", "v1.YzE.1a", "v1.YzE.1a.", "v1.!!.1a.img", "v1..1a.img",
		"v1.YzE.zz.img", "v1.YzE.-1.img", "v2.YzE.1a.img", "fake-vol-id", "s1.YzE.YzE.1a.img", "s1..YzE.1a.img"} {
		if _, err := ParseVolumeID(s); !errors.Is(err, ErrBadID) {
			t.Errorf("ParseVolumeID(%q): %v, want ErrBadID", s, err)
		}
		if strings.HasPrefix(s, "s1") {
			continue
		}
		if _, err := ParseSnapshotID(s); !errors.Is(err, ErrBadID) {
			t.Errorf("ParseSnapshotID(%q): %v, want ErrBadID", s, err)
		}
	}
	if _, err := ParseSnapshotID("s1..YzE.1a.img"); !errors.Is(err, ErrBadID) {
		t.Errorf("empty snapshot name accepted")
	}
}

func FuzzParseVolumeID(f *testing.F) {
	f.Add("v1.YzE.1a.csi-vol-x")
	f.Add("s1.c25hcA.YzE.1a.csi-vol-x")
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := ParseVolumeID(s); err == nil {
			if v2, err := ParseVolumeID(v.String()); err != nil || v2 != v {
				t.Fatalf("round trip of %q: %+v %v", s, v2, err)
			}
		}
		if v, err := ParseSnapshotID(s); err == nil {
			if v2, err := ParseSnapshotID(v.String()); err != nil || v2 != v {
				t.Fatalf("round trip of %q: %+v %v", s, v2, err)
			}
		}
	})
}

func TestParseVolumeParams(t *testing.T) {
	p, err := ParseVolumeParams(map[string]string{"clusterID": "c", "pool": "rbd", "csi.storage.k8s.io/fstype": "ext4"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Features != rbd.FeatureLayering || p.NamePrefix != "csi-vol-" || p.SnapPrefix != "csi-snap-" {
		t.Errorf("defaults: %+v", p)
	}
	p, err = ParseVolumeParams(map[string]string{"clusterID": "c", "pool": "rbd", "imageFeatures": "layering, exclusive-lock,object-map"})
	if err != nil {
		t.Fatal(err)
	}
	if p.MaxCloneDepth != 0 {
		t.Errorf("maxCloneDepth without the parameter: %d", p.MaxCloneDepth)
	}
	if p, err := ParseVolumeParams(map[string]string{"clusterID": "c", "pool": "rbd", "maxCloneDepth": "3"}); err != nil || p.MaxCloneDepth != 3 {
		t.Errorf("maxCloneDepth 3: %+v %v", p, err)
	}
	want, _ := rbd.ParseFeatures("layering", "exclusive-lock", "object-map")
	if p.Features != want {
		t.Errorf("features %#x, want %#x", p.Features, want)
	}
	for _, bad := range []map[string]string{
		{"pool": "rbd"},
		{"clusterID": "c"},
		{"clusterID": "c", "pool": "rbd", "imageFeatures": "bogus"},
		{"clusterID": "c", "pool": "rbd", "imageFeatures": "exclusive-lock"},
		{"clusterID": "c", "pool": "rbd", "volumeNamePrefix": "a/b"},
		{"clusterID": "c", "pool": "rbd", "maxCloneDepth": "0"},
		{"clusterID": "c", "pool": "rbd", "maxCloneDepth": "x"},
		{"clusterID": "c", "pool": "rbd", "maxCloneDepth": "1000"},
	} {
		if _, err := ParseVolumeParams(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestParseClusters(t *testing.T) {
	m, err := ParseClusters([]byte(`[{"clusterID":"a","monitors":["10.0.0.1:6789","10.0.0.2"]},{"clusterID":"b","monitors":["h:3300"],"cephFS":{}}]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || len(m["a"].Monitors) != 2 {
		t.Errorf("got %+v", m)
	}
	for _, bad := range []string{`{}`, `[{"clusterID":"a"}]`, `[{"monitors":["x"]}]`,
		`[{"clusterID":"a","monitors":["x"]},{"clusterID":"a","monitors":["y"]}]`} {
		if _, err := ParseClusters([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestCredentials(t *testing.T) {
	if _, err := CredentialsFrom(map[string]string{"userID": "admin"}); err == nil {
		t.Error("missing key accepted")
	}
	c, err := CredentialsFrom(map[string]string{"userID": "admin", "userKey": "AQ=="})
	if err != nil || c.User != "admin" || c.Key != "AQ==" {
		t.Errorf("%+v %v", c, err)
	}
}

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

func TestCheckCapabilities(t *testing.T) {
	M := csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER
	for _, tc := range []struct {
		c  *csi.VolumeCapability
		ok bool
	}{
		{capOf(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, false), true},
		{capOf(csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER, false), true},
		{capOf(csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER, true), true},
		{capOf(csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY, false), true},
		{capOf(M, true), true},
		{capOf(M, false), false},
		{capOf(csi.VolumeCapability_AccessMode_MULTI_NODE_SINGLE_WRITER, false), false},
		{capOf(csi.VolumeCapability_AccessMode_UNKNOWN, false), false},
		{&csi.VolumeCapability{AccessMode: &csi.VolumeCapability_AccessMode{Mode: M}}, false},
		{&csi.VolumeCapability{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}}}, false},
	} {
		if err := CheckCapabilities([]*csi.VolumeCapability{tc.c}); (err == nil) != tc.ok {
			t.Errorf("%v: err=%v, want ok=%v", tc.c, err, tc.ok)
		}
	}
	if CheckCapabilities(nil) == nil {
		t.Error("no capabilities accepted")
	}
}

func TestCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("open: %w", rbd.ErrNotFound), codes.NotFound},
		{fmt.Errorf("osd: %w", syscall.ENOENT), codes.NotFound},
		{fmt.Errorf("x: %w", rados.ErrPoolNotFound), codes.NotFound},
		{rbd.ErrExists, codes.AlreadyExists},
		{fmt.Errorf("remove: %w", rbd.ErrBusy), codes.FailedPrecondition},
		{&rbd.FeatureError{}, codes.FailedPrecondition},
		{rbd.ErrInvalid, codes.InvalidArgument},
		{fmt.Errorf("%w: x", ErrBadID), codes.InvalidArgument},
		{fmt.Errorf("connect: %w", rados.ErrPermission), codes.PermissionDenied},
		{rados.ErrPoolFull, codes.ResourceExhausted},
		{fmt.Errorf("dial: %w", rados.ErrNoMonitor), codes.Unavailable},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{context.Canceled, codes.Canceled},
		{errors.New("boom"), codes.Internal},
	} {
		if got := Code(tc.err); got != tc.want {
			t.Errorf("Code(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	if got := status.Code(toStatus(status.Error(codes.Aborted, "x"))); got != codes.Aborted {
		t.Errorf("status passed through as %v", got)
	}
	if got := status.Code(toStatus(fmt.Errorf("w: %w", rbd.ErrNotFound))); got != codes.NotFound {
		t.Errorf("toStatus: %v", got)
	}
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
	s := New(Options{Clusters: map[string]ClusterInfo{"c": {ClusterID: "c", Monitors: []string{"127.0.0.1:1"}}}})
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

func FuzzParseClusters(f *testing.F) {
	f.Add([]byte(`[{"clusterID":"a","monitors":["10.0.0.1:6789","v2:10.0.0.2:3300/0"]}]`))
	f.Add([]byte(`[{"clusterID":"b","monitors":["h:3300"],"cephFS":{}},{"clusterID":"c","monitors":["[::1]:6789"]}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseClusters(b)
		if err != nil {
			return
		}
		for id, c := range m {
			if id == "" || id != c.ClusterID || len(c.Monitors) == 0 {
				t.Fatalf("accepted a bad entry %q: %+v", id, c)
			}
		}
	})
}

func FuzzParseVolumeParams(f *testing.F) {
	f.Add("c", "rbd", "layering,exclusive-lock", "csi-vol-", "3")
	f.Add("c", "rbd", "", "", "")
	f.Add("", "rbd", "bogus", "a/b", "-1")
	f.Fuzz(func(t *testing.T, cluster, pool, features, prefix, depth string) {
		p, err := ParseVolumeParams(map[string]string{"clusterID": cluster, "pool": pool, "imageFeatures": features,
			"volumeNamePrefix": prefix, "maxCloneDepth": depth})
		if err != nil {
			return
		}
		if p.ClusterID == "" || p.Pool == "" || p.Features&rbd.FeatureLayering == 0 || strings.ContainsAny(p.NamePrefix, "/@") ||
			p.MaxCloneDepth < 0 || p.MaxCloneDepth > maxCollectDepth {
			t.Fatalf("accepted %+v", p)
		}
	})
}
