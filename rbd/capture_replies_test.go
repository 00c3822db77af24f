package rbd_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// TestCaptureReplies is not a test: with GORBD_CAPTURE_REPLIES=1 it sets
// up images with each cluster's own rbd CLI (metadata, a protected
// snapshot with a clone v1, a snapshot in the trash namespace held by a
// clone v2) and stores the raw cls_rbd replies under
// testdata/<release>/replies/, which TestCapturedReplies decodes.
//
//	GORBD_CAPTURE_REPLIES=1 go test -run TestCaptureReplies ./rbd/
func TestCaptureReplies(t *testing.T) {
	if os.Getenv("GORBD_CAPTURE_REPLIES") != "1" {
		t.Skip("set GORBD_CAPTURE_REPLIES=1 to capture")
	}
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx := tctx(t)
			const p = "gorbdcapr"
			e.rbdQuiet("rm", "--no-progress", p+"v1")
			e.rbdQuiet("rm", "--no-progress", p+"v2")
			e.rbdQuiet("snap", "unprotect", p+"@prot")
			e.rbdQuiet("snap", "purge", "--no-progress", p)
			e.rbdQuiet("rm", "--no-progress", p)
			e.rbd(t, "create", "--size", "8", p)
			e.rbd(t, "image-meta", "set", p, "owner", "engineer-e")
			e.rbd(t, "image-meta", "set", p, "conf_rbd_cache", "false")
			e.rbd(t, "snap", "create", p+"@prot")
			e.rbd(t, "snap", "protect", p+"@prot")
			e.rbd(t, "clone", "--rbd-default-clone-format", "1", p+"@prot", p+"v1")
			e.rbd(t, "snap", "create", p+"@gone")
			e.rbd(t, "clone", "--rbd-default-clone-format", "2", p+"@gone", p+"v2")
			e.rbd(t, "snap", "rm", "--no-progress", p+"@gone")

			var info struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(e.rbd(t, "info", "--format", "json", p), &info); err != nil {
				t.Fatal(err)
			}
			var snaps []cliSnap
			if err := json.Unmarshal(e.rbd(t, "snap", "ls", "--all", "--format", "json", p), &snaps); err != nil {
				t.Fatal(err)
			}
			var prot, trash uint64
			for _, s := range snaps {
				if s.Name == "prot" {
					prot = s.ID
				} else if s.Namespace.Type == "trash" {
					trash = s.ID
				}
			}
			hdr := rbd.HeaderObjectName(info.ID)
			u64 := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
			str := func(s string) []byte { return append(binary.LittleEndian.AppendUint32(nil, uint32(len(s))), s...) }
			getChildren := append(append(u64(uint64(e.io.PoolID())), str(info.ID)...), u64(prot)...)
			calls := []struct {
				file, oid, method string
				in                []byte
			}{
				{"metadata_get", hdr, "metadata_get", str("owner")},
				{"metadata_list", hdr, "metadata_list", append(str(""), u64(64)...)},
				{"get_protection_status.protected", hdr, "get_protection_status", u64(prot)},
				{"snapshot_get.trash", hdr, "snapshot_get", u64(trash)},
				{"children_list.trash", hdr, "children_list", u64(trash)},
				{"get_children.v1", rbd.ChildrenObject, "get_children", getChildren},
				{"get_snapcontext", hdr, "get_snapcontext", nil},
			}
			dir := filepath.Join("testdata", c, "replies")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, cl := range calls {
				out, err := e.io.Exec(context.Background(), cl.oid, "rbd", cl.method, cl.in)
				if err != nil {
					t.Fatalf("%s: %v", cl.method, err)
				}
				if err := os.WriteFile(filepath.Join(dir, cl.file), out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var v1, v2 struct {
				ID string `json:"id"`
			}
			json.Unmarshal(e.rbd(t, "info", "--format", "json", p+"v1"), &v1)
			json.Unmarshal(e.rbd(t, "info", "--format", "json", p+"v2"), &v2)
			want := map[string]any{"image_id": info.ID, "pool_id": e.io.PoolID(), "prot_snap": prot, "trash_snap": trash,
				"v1_child": v1.ID, "v2_child": v2.ID}
			b, _ := json.MarshalIndent(want, "", "  ")
			if err := os.WriteFile(filepath.Join(dir, "expect.json"), append(b, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			_ = ctx
			// Leave the cluster clean.
			e.rbd(t, "rm", "--no-progress", p+"v1")
			e.rbd(t, "rm", "--no-progress", p+"v2")
			e.rbd(t, "snap", "unprotect", p+"@prot")
			e.rbd(t, "snap", "purge", "--no-progress", p)
			e.rbd(t, "rm", "--no-progress", p)
			t.Logf("captured %s", strings.Join([]string{dir}, ""))
		})
	}
}
