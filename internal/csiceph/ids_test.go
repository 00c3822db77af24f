package csiceph

import (
	"errors"
	"strings"
	"testing"
)

// Handles ceph-csi v3.12.2 answered in the capture
// (test/cephcsi/testdata/v3.12.2/state.json: vol-plain, ns-vol).
const (
	capturedHandle   = "0001-0024-cdc11dd3-f5c1-45ca-a5e8-df93f3290452-0000000000000023-03a84d22-27f6-46f7-8322-2755a89960db"
	capturedNSHandle = "0001-000f-ccsi-ns-cluster-0000000000000023-e1ea49bf-445a-4f0a-abf8-b805a92a01e1"
)

func TestCephCSIHandle(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want VolumeID
	}{
		{capturedHandle, VolumeID{ClusterID: "cdc11dd3-f5c1-45ca-a5e8-df93f3290452", PoolID: 0x23, UUID: "03a84d22-27f6-46f7-8322-2755a89960db"}},
		{capturedNSHandle, VolumeID{ClusterID: "ccsi-ns-cluster", PoolID: 0x23, UUID: "e1ea49bf-445a-4f0a-abf8-b805a92a01e1"}},
	} {
		v, err := ParseVolumeID(tc.s)
		if err != nil || v != tc.want {
			t.Errorf("ParseVolumeID(%q) = %+v, %v; want %+v", tc.s, v, err, tc.want)
		}
		if v.Legacy() || v.String() != tc.s {
			t.Errorf("%+v encodes as %q", v, v.String())
		}
		s, err := ParseSnapshotID(tc.s)
		if err != nil || s.VolumeID != tc.want || s.String() != tc.s {
			t.Errorf("ParseSnapshotID(%q) = %+v, %v", tc.s, s, err)
		}
		n, err := NewHandle(tc.want.ClusterID, tc.want.PoolID, tc.want.UUID)
		if err != nil || n != tc.want {
			t.Errorf("NewHandle: %+v %v", n, err)
		}
	}
	long := strings.Repeat("c", MaxClusterIDLen)
	v, err := NewHandle(long, 1, "03a84d22-27f6-46f7-8322-2755a89960db")
	if err != nil || len(v.String()) != MaxHandleLen {
		t.Errorf("longest clusterID: %v, %d", err, len(v.String()))
	}
	if _, err := NewHandle(long+"c", 1, "03a84d22-27f6-46f7-8322-2755a89960db"); !errors.Is(err, ErrBadID) {
		t.Errorf("clusterID too long for a handle accepted: %v", err)
	}
	if _, err := NewHandle("c", 1, "not-a-uuid"); !errors.Is(err, ErrBadID) {
		t.Errorf("bad uuid accepted: %v", err)
	}
}

func TestLegacyIDRoundTrip(t *testing.T) {
	for _, v := range []VolumeID{
		{ClusterID: "ee0104fd-d78c-4527-bc54-8ae7ecf3cbfc", PoolID: 1, Image: "csi-vol-0b1c"},
		{ClusterID: "a.b_c-d", PoolID: 0x7fffffff, Image: "name.with.dots-and_more"},
	} {
		s := v.String()
		if strings.ContainsAny(s, "/+=?&#% ") {
			t.Errorf("%q is not URL-safe", s)
		}
		got, err := ParseVolumeID(s)
		if err != nil || got != v || !got.Legacy() {
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
	// Fixed vectors of what earlier versions wrote, so old ids keep
	// resolving.
	v := VolumeID{ClusterID: "c1", PoolID: 26, Image: "csi-vol-x"}
	if got, want := v.String(), "v1.YzE.1a.csi-vol-x"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	s := SnapshotID{VolumeID: v, Snap: "snap"}
	if got, want := s.String(), "s1.c25hcA.YzE.1a.csi-vol-x"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestParseIDRejects(t *testing.T) {
	for _, s := range []string{"", "v1", "v1.", "v1.YzE", "v1.YzE.1a", "v1.YzE.1a.", "v1.!!.1a.img", "v1..1a.img",
		"v1.YzE.zz.img", "v1.YzE.-1.img", "v2.YzE.1a.img", "fake-vol-id", "s1.YzE.YzE.1a.img", "s1..YzE.1a.img",
		// ceph-csi form: short, wrong version, wrong lengths, bad pool or uuid
		capturedHandle[:63], "0002" + capturedHandle[4:], capturedHandle[:5] + "0023" + capturedHandle[9:],
		capturedHandle + "0", strings.Replace(capturedHandle, "0000000000000023", "000000000000002g", 1),
		strings.Replace(capturedHandle, "0000000000000023", "8000000000000023", 1),
		strings.Replace(capturedHandle, "03a84d22-27f6", "03a84d22x27f6", 1),
		strings.Replace(capturedHandle, "0024", "+024", 1),
		"0001-0000--0000000000000023-03a84d22-27f6-46f7-8322-2755a89960db",
		"mig_mons-b7f67366bb43f32e07d8a261a7840da9_image-e0b45b52-7e09-47d3-8f1b-806995fa4412_7265706c6963617065646f6f6c",
	} {
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
}

func FuzzParseVolumeID(f *testing.F) {
	f.Add("v1.YzE.1a.csi-vol-x")
	f.Add("s1.c25hcA.YzE.1a.csi-vol-x")
	f.Add(capturedHandle)
	f.Add(capturedNSHandle)
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := ParseVolumeID(s); err == nil {
			if v2, err := ParseVolumeID(v.String()); err != nil || v2 != v {
				t.Fatalf("round trip of %q: %+v %v", s, v2, err)
			}
			if !v.Legacy() && (v.String() != s || !ValidUUID(v.UUID) || len(s) > MaxHandleLen) {
				t.Fatalf("handle %q decoded to %+v", s, v)
			}
		}
		if v, err := ParseSnapshotID(s); err == nil {
			if v2, err := ParseSnapshotID(v.String()); err != nil || v2 != v {
				t.Fatalf("round trip of %q: %+v %v", s, v2, err)
			}
		}
	})
}
