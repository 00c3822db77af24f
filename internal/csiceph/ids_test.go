package csiceph

import (
	"errors"
	"strings"
	"testing"
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
