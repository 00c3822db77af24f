package journal

import (
	"testing"
)

// TestDirValue: the directory values ceph-csi writes (a uuid, or a pool id
// and a uuid) and csi-gorbd's earlier JSON records are told apart.
func TestDirValue(t *testing.T) {
	for _, tc := range []struct {
		in     string
		uuid   string
		pool   int64
		legacy bool
	}{
		{"03a84d22-27f6-46f7-8322-2755a89960db", "03a84d22-27f6-46f7-8322-2755a89960db", -1, false},
		{"0000000000000025/03a84d22-27f6-46f7-8322-2755a89960db", "03a84d22-27f6-46f7-8322-2755a89960db", 0x25, false},
		{`{"image":"csi-vol-x","size":1048576}`, "", -1, true},
		{"03a84d22-27f6-46f7-8322-2755a89960d", "", -1, true},
		{"25/03a84d22-27f6-46f7-8322-2755a89960db", "", -1, true},
		{"zzzzzzzzzzzzzzzz/03a84d22-27f6-46f7-8322-2755a89960db", "", -1, true},
	} {
		dv := parseDirValue([]byte(tc.in))
		if dv.UUID != tc.uuid || dv.PoolID != tc.pool || (dv.Legacy != nil) != tc.legacy {
			t.Errorf("%q: %+v", tc.in, dv)
		}
	}
}

func TestNamesAndUUID(t *testing.T) {
	j := Journal{Kind: Volumes}
	if j.DirObject() != "csi.volumes.default" || j.EntryObject("u") != "csi.volume.u" || j.DirKey("pvc-1") != "csi.volume.pvc-1" {
		t.Errorf("volume names: %s %s %s", j.DirObject(), j.EntryObject("u"), j.DirKey("pvc-1"))
	}
	s := Journal{Kind: Snapshots, Instance: "i1"}
	if s.DirObject() != "csi.snaps.i1" || s.EntryObject("u") != "csi.snap.u" || s.DirKey("snapshot-1") != "csi.snap.snapshot-1" {
		t.Errorf("snapshot names")
	}
	if got := s.ImageName(Entry{UUID: "u"}); got != "csi-snap-u" {
		t.Errorf("default image name %q", got)
	}
	for range 100 {
		if u := NewUUID(); !validUUID(u) || u[14] != '4' {
			t.Fatalf("NewUUID %q", u)
		}
	}
}
