package rbd_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// TestCaptureGroupReplies is not a test: with GORBD_CAPTURE_GROUP=1 it
// makes a group of two images with a group snapshot using each cluster's
// own rbd CLI and stores the raw cls_rbd replies about them, and the
// QUIESCE and UNQUIESCE payloads `rbd snap create` sends to a watcher,
// under testdata/<release>/group/, which TestCapturedGroupReplies decodes.
//
//	GORBD_CAPTURE_GROUP=1 go test -run TestCaptureGroupReplies ./rbd/
func TestCaptureGroupReplies(t *testing.T) {
	if os.Getenv("GORBD_CAPTURE_GROUP") != "1" {
		t.Skip("set GORBD_CAPTURE_GROUP=1 to capture")
	}
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx := tctx(t)
			const p = "gorbdcapg"
			spec := func(n string) string { return e.pool + "/" + n }
			e.rbdgErr("group", "rm", spec(p+"g"))
			for _, n := range []string{p + "a", p + "b"} {
				e.rbdQuiet("snap", "purge", "--no-progress", n)
				e.rbdQuiet("rm", "--no-progress", n)
				e.rbd(t, "create", "--size", "8", n)
			}
			e.rbdg(t, "group", "create", spec(p+"g"))
			e.rbdg(t, "group", "image", "add", spec(p+"g"), spec(p+"a"))
			e.rbdg(t, "group", "image", "add", spec(p+"g"), spec(p+"b"))
			e.rbdg(t, "group", "snap", "create", spec(p+"g@gs"))

			var info struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(e.rbd(t, "info", "--format", "json", p+"a"), &info); err != nil {
				t.Fatal(err)
			}
			snaps := e.snapsAll(t, p+"a")
			if len(snaps) != 1 {
				t.Fatalf("snapshots of %s: %+v", p+"a", snaps)
			}
			gid, err := rbd.GroupID(ctx, e.io, p+"g")
			if err != nil {
				t.Fatal(err)
			}
			u64 := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
			str := func(s string) []byte { return append(binary.LittleEndian.AppendUint32(nil, uint32(len(s))), s...) }
			// GroupImageSpec { "", -1 } and GroupSnapshot { "", "", 0, [] }
			// as list starts, struct v1/c1 each.
			imageStart := append([]byte{1, 1, 12, 0, 0, 0}, append(str(""), u64(^uint64(0))...)...)
			snapStart := append([]byte{1, 1, 13, 0, 0, 0}, append(append(str(""), str("")...), 0, 0, 0, 0, 0)...)
			ghdr := rbd.GroupHeaderObjectName(gid)
			calls := []struct {
				file, oid, method string
				in                []byte
			}{
				{"group_dir_list", rbd.GroupDirectoryObject, "group_dir_list", append(str(""), u64(64)...)},
				{"dir_get_id", rbd.GroupDirectoryObject, "dir_get_id", str(p + "g")},
				{"group_image_list", ghdr, "group_image_list", append(imageStart, u64(64)...)},
				{"group_snap_list", ghdr, "group_snap_list", append(snapStart, u64(64)...)},
				{"image_group_get", rbd.HeaderObjectName(info.ID), "image_group_get", nil},
				{"snapshot_get.group", rbd.HeaderObjectName(info.ID), "snapshot_get", u64(snaps[0].ID)},
			}
			dir := filepath.Join("testdata", c, "group")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, cl := range calls {
				out, err := e.io.Exec(ctx, cl.oid, "rbd", cl.method, cl.in)
				if err != nil {
					t.Fatalf("%s: %v", cl.method, err)
				}
				if err := os.WriteFile(filepath.Join(dir, cl.file), out, 0o644); err != nil {
					t.Fatal(err)
				}
			}

			// The quiesce payloads, as a watcher of the header hears them.
			var (
				mu       sync.Mutex
				payloads [][]byte
			)
			w, err := e.io.Watch(ctx, rbd.HeaderObjectName(info.ID), func(ev rados.NotifyEvent) []byte {
				mu.Lock()
				payloads = append(payloads, ev.Payload)
				mu.Unlock()
				return nil
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			e.rbd(t, "snap", "create", p+"a@s")
			w.Close(context.Background())
			mu.Lock()
			var quiesce, unquiesce []byte
			for _, pl := range payloads {
				if len(pl) > 6 && pl[6] == 18 {
					quiesce = pl
				}
				if len(pl) > 6 && pl[6] == 19 {
					unquiesce = pl
				}
			}
			mu.Unlock()
			if quiesce == nil || unquiesce == nil {
				t.Fatalf("no QUIESCE/UNQUIESCE among %d notifies", len(payloads))
			}
			os.WriteFile(filepath.Join(dir, "notify.quiesce"), quiesce, 0o644)
			os.WriteFile(filepath.Join(dir, "notify.unquiesce"), unquiesce, 0o644)

			var b struct {
				ID string `json:"id"`
			}
			json.Unmarshal(e.rbd(t, "info", "--format", "json", p+"b"), &b)
			gsnaps, err := rbd.GroupSnapshots(ctx, e.io, p+"g")
			if err != nil || len(gsnaps) != 1 {
				t.Fatalf("group snapshots %+v, %v", gsnaps, err)
			}
			want := map[string]any{"pool_id": e.io.PoolID(), "group": p + "g", "group_id": gid,
				"image_a": info.ID, "image_b": b.ID, "snap_a": snaps[0].ID, "group_snap_id": gsnaps[0].ID,
				"snap_name": snaps[0].Name}
			out, _ := json.MarshalIndent(want, "", "  ")
			if err := os.WriteFile(filepath.Join(dir, "expect.json"), append(out, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			e.rbdg(t, "group", "rm", spec(p+"g"))
			for _, n := range []string{p + "a", p + "b"} {
				e.rbd(t, "snap", "purge", "--no-progress", n)
				e.rbd(t, "rm", "--no-progress", n)
			}
		})
	}
}
