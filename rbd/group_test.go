package rbd

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// Replies captured by TestCaptureGroupReplies (GORBD_CAPTURE_GROUP=1)
// from each release's OSDs about a group the release's own rbd CLI made:
// two images, one group snapshot; and the QUIESCE/UNQUIESCE notifies of
// `rbd snap create` as a watcher hears them.
func TestCapturedGroupReplies(t *testing.T) {
	forReleases(t, func(t *testing.T, c capture) {
		var want struct {
			PoolID      int64  `json:"pool_id"`
			Group       string `json:"group"`
			GroupID     string `json:"group_id"`
			ImageA      string `json:"image_a"`
			ImageB      string `json:"image_b"`
			SnapA       uint64 `json:"snap_a"`
			GroupSnapID string `json:"group_snap_id"`
			SnapName    string `json:"snap_name"`
		}
		if err := json.Unmarshal(c.read("group/expect.json"), &want); err != nil {
			t.Fatal(err)
		}
		if m, err := decodeDirList(c.read("group/group_dir_list")); err != nil || m[want.Group] != want.GroupID {
			t.Errorf("group_dir_list = %v, %v", m, err)
		}
		if id, err := decodeString("dir_get_id", c.read("group/dir_get_id")); err != nil || id != want.GroupID {
			t.Errorf("dir_get_id = %q, %v", id, err)
		}
		imgs, err := decodeGroupImageList(c.read("group/group_image_list"))
		if err != nil || len(imgs) != 2 {
			t.Fatalf("group_image_list = %+v, %v", imgs, err)
		}
		for _, gi := range imgs {
			if gi.PoolID != want.PoolID || gi.State != GroupImageAttached || gi.ImageID != want.ImageA && gi.ImageID != want.ImageB {
				t.Errorf("member %+v", gi)
			}
		}
		snaps, err := decodeGroupSnapList(c.read("group/group_snap_list"))
		if err != nil || len(snaps) != 1 {
			t.Fatalf("group_snap_list = %+v, %v", snaps, err)
		}
		gs := snaps[0]
		if gs.ID != want.GroupSnapID || gs.Name != "gs" || gs.State != GroupSnapshotComplete || len(gs.Snaps) != 2 {
			t.Errorf("group snapshot %+v", gs)
		}
		for _, s := range gs.Snaps {
			if s.ImageID == want.ImageA && s.SnapID != want.SnapA || s.PoolID != want.PoolID {
				t.Errorf("member snapshot %+v, want snap %d of %s", s, want.SnapA, want.ImageA)
			}
		}
		// Our encoding of the record is what the OSD stored.
		var e = enc()
		encodeGroupSnapshot(e, gs)
		if got := groupSnapListReply(e.B); !bytes.Equal(got, c.read("group/group_snap_list")) {
			t.Errorf("GroupSnapshot encodes as\n%x\nthe OSD returned\n%x", got, c.read("group/group_snap_list"))
		}
		spec, err := decodeImageGroupGet(c.read("group/image_group_get"))
		if err != nil || spec != (GroupSpec{PoolID: want.PoolID, GroupID: want.GroupID}) {
			t.Errorf("image_group_get = %+v, %v", spec, err)
		}
		if !bytes.Equal(groupSpecArg(spec), c.read("group/image_group_get")) {
			t.Errorf("GroupSpec encodes differently")
		}
		si, err := decodeSnapshotInfo(c.read("group/snapshot_get.group"))
		ns := si.Namespace
		if err != nil || si.ID != want.SnapA || si.Name != want.SnapName || ns.Type != SnapNamespaceGroup ||
			ns.GroupPool != want.PoolID || ns.GroupID != want.GroupID || ns.GroupSnapshotID != want.GroupSnapID {
			t.Errorf("snapshot_get of the member snapshot = %+v, %v", si, err)
		}
		if n := GroupImageSnapName(want.PoolID, want.GroupID, want.GroupSnapID); n != want.SnapName {
			t.Errorf("GroupImageSnapName = %q, librbd named it %q", n, want.SnapName)
		}
		q := c.read("group/notify.quiesce")
		if op, ok := decodeNotifyOp(q); !ok || op != notifyQuiesce {
			t.Errorf("QUIESCE decodes as op %d (%v)", op, ok)
		}
		id, ok := decodeQuiesceID(q)
		if !ok || id.gid == 0 || id.id == 0 {
			t.Errorf("QUIESCE's request id %+v (%v)", id, ok)
		}
		if !bytes.Equal(quiescePayload(notifyQuiesce, id), q) {
			t.Errorf("our QUIESCE\n%x\nlibrbd's\n%x", quiescePayload(notifyQuiesce, id), q)
		}
		u := c.read("group/notify.unquiesce")
		if uid, ok := decodeQuiesceID(u); !ok || uid != id || !bytes.Equal(quiescePayload(notifyUnquiesce, id), u) {
			t.Errorf("UNQUIESCE %x: id %+v (%v), want the QUIESCE's %+v", u, uid, ok, id)
		}
	})
}

// groupSnapListReply wraps one encoded GroupSnapshot as a group_snap_list
// reply (vector of one).
func groupSnapListReply(gs []byte) []byte {
	e := enc()
	e.U32(1)
	e.Raw(gs)
	return e.B
}

func TestGroupArgs(t *testing.T) {
	// GroupImageStatus { GroupImageSpec { "abc", 3 }, incomplete }.
	want := []byte{1, 1, 0x16, 0, 0, 0, 1, 1, 0x0f, 0, 0, 0, 3, 0, 0, 0, 'a', 'b', 'c', 3, 0, 0, 0, 0, 0, 0, 0, 1}
	if got := groupImageSetArgs(GroupImage{PoolID: 3, ImageID: "abc", State: GroupImageIncomplete}); !bytes.Equal(got, want) {
		t.Errorf("group_image_set args\n%x\nwant\n%x", got, want)
	}
	if n := GroupImageSnapName(26, "g", "s"); n != ".group.1a_g_s" {
		t.Errorf("GroupImageSnapName = %q", n)
	}
	// The group namespace round-trips through snapshot_add's encoding.
	ns := SnapshotNamespace{Type: SnapNamespaceGroup, GroupPool: 5, GroupID: "gid", GroupSnapshotID: "sid"}
	e := enc()
	encodeSnapshotNamespace(e, ns)
	d := encoding.NewDecoder(e.B)
	if got := decodeSnapshotNamespace(d); got != ns || d.Err() != nil {
		t.Errorf("namespace round trip: %+v, %v", got, d.Err())
	}
}
