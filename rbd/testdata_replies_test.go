package rbd

import (
	"encoding/json"
	"slices"
	"testing"
)

// Replies captured by TestCaptureReplies (GORBD_CAPTURE_REPLIES=1) from
// each release's OSDs, for images the release's own rbd CLI set up: image
// metadata, a protected snapshot with a clone v1, and a snapshot moved to
// the trash namespace by `rbd snap rm` while a clone v2 still used it.
func TestCapturedReplies(t *testing.T) {
	forReleases(t, func(t *testing.T, c capture) {
		var want struct {
			ImageID   string `json:"image_id"`
			PoolID    int64  `json:"pool_id"`
			ProtSnap  uint64 `json:"prot_snap"`
			TrashSnap uint64 `json:"trash_snap"`
			V1Child   string `json:"v1_child"`
			V2Child   string `json:"v2_child"`
		}
		if err := json.Unmarshal(c.read("replies/expect.json"), &want); err != nil {
			t.Fatal(err)
		}
		if v, err := decodeMetadataValue(c.read("replies/metadata_get")); err != nil || string(v) != "engineer-e" {
			t.Errorf("metadata_get = %q, %v", v, err)
		}
		if m, err := decodeMetadataList(c.read("replies/metadata_list")); err != nil || len(m) != 2 ||
			string(m["owner"]) != "engineer-e" || string(m["conf_rbd_cache"]) != "false" {
			t.Errorf("metadata_list = %q, %v", m, err)
		}
		if ps, err := decodeProtectionStatus(c.read("replies/get_protection_status.protected")); err != nil || ps != ProtectionProtected {
			t.Errorf("get_protection_status = %d, %v", ps, err)
		}
		si, err := decodeSnapshotInfo(c.read("replies/snapshot_get.trash"))
		if err != nil || si.ID != want.TrashSnap || si.Namespace.Type != SnapNamespaceTrash ||
			si.Namespace.OriginalName != "gone" || si.Namespace.OriginalType != SnapNamespaceUser ||
			si.ChildCount != 1 || si.Size != 8<<20 || si.Name == "gone" {
			t.Errorf("snapshot_get of the trashed snapshot = %+v, %v", si, err)
		}
		if ch, err := decodeChildrenList(c.read("replies/children_list.trash")); err != nil || len(ch) != 1 ||
			ch[0] != (ChildSpec{PoolID: want.PoolID, ImageID: want.V2Child}) {
			t.Errorf("children_list = %+v, %v", ch, err)
		}
		if ids, err := decodeStringSet("get_children", c.read("replies/get_children.v1")); err != nil || !slices.Equal(ids, []string{want.V1Child}) {
			t.Errorf("get_children = %q, %v", ids, err)
		}
		sc, err := decodeSnapContext(c.read("replies/get_snapcontext"))
		if err != nil || !sc.valid() || !slices.Contains(sc.Snaps, want.ProtSnap) || !slices.Contains(sc.Snaps, want.TrashSnap) {
			t.Errorf("get_snapcontext = %+v, %v", sc, err)
		}
		// Our encoders produce the arguments these replies answered.
		if got := legacyParentArgs(ParentSpec{PoolID: want.PoolID, ImageID: want.ImageID, SnapID: want.ProtSnap}); len(got) != 8+4+len(want.ImageID)+8 {
			t.Errorf("get_children args: %x", got)
		}
	})
}

func FuzzDecodeReplies(f *testing.F) {
	addCaptured(f, "replies/*")
	f.Add(ackPayload(-95))
	f.Add(notifyPayload(notifyRequestLock, 4242, 17))
	f.Add(dirRenameArgs("a", "b", "id"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeMetadataValue(b)
		_, _ = decodeStringSet("get_children", b)
		_, _ = decodeAck(b)
		_, _ = decodeProtectionStatus(b)
		_, _ = decodeNotifyOp(b)
	})
}
