package rbd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// CreateOptions.ID: the image gets exactly that id (rbd info, the data
// object prefix); a second image with the same id is refused with
// ErrExists and leaves no name behind; a malformed id is ErrInvalid before
// anything is written.
func TestInteropCreateWithID(t *testing.T) {
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx := tctx(t)
			name, other := iname("withid"), iname("withid-dup")
			id := "ccsi" + strings.TrimPrefix(name, "rbdtest-withid-")[:8]
			id = strings.ReplaceAll(id, "-", "")
			got, err := rbd.Create(ctx, e.io, name, 8<<20, &rbd.CreateOptions{ID: id})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.rbdQuiet("rm", "--no-progress", name); e.rbdQuiet("rm", "--no-progress", other) })
			if got != id {
				t.Fatalf("Create returned id %q, want %q", got, id)
			}
			var info struct {
				ID     string `json:"id"`
				Prefix string `json:"block_name_prefix"`
			}
			if err := json.Unmarshal(e.rbd(t, "info", "--format", "json", name), &info); err != nil {
				t.Fatal(err)
			}
			if info.ID != id || info.Prefix != "rbd_data."+id {
				t.Fatalf("rbd info: id %q prefix %q, want %q", info.ID, info.Prefix, id)
			}
			if _, err := rbd.Create(ctx, e.io, other, 8<<20, &rbd.CreateOptions{ID: id}); !errors.Is(err, rbd.ErrExists) {
				t.Fatalf("second image with id %q: %v, want ErrExists", id, err)
			}
			if ls := string(e.rbd(t, "ls")); strings.Contains(ls, other) {
				t.Fatalf("refused create left %q in the directory:\n%s", other, ls)
			}
			for _, bad := range []string{"has.dot", "a/b", "0123456789abcdefg"} {
				if _, err := rbd.Create(ctx, e.io, other, 8<<20, &rbd.CreateOptions{ID: bad}); !errors.Is(err, rbd.ErrInvalid) {
					t.Errorf("id %q: %v, want ErrInvalid", bad, err)
				}
			}
			if err := rbd.Remove(ctx, e.io, name); err != nil {
				t.Fatal(err)
			}

			// With a data pool, librbd names data objects
			// rbd_data.<image pool id>.<id>; so must we.
			dpool := iname("dp")
			if err := e.conn.PoolCreate(ctx, dpool, 8); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = e.conn.PoolDelete(context.Background(), dpool) })
			_ = e.conn.ApplicationEnable(ctx, dpool, "rbd")
			dio, err := e.conn.OpenIOContext(ctx, dpool)
			if err != nil {
				t.Fatal(err)
			}
			ours, theirs := iname("dp-ours"), iname("dp-theirs")
			if _, err := rbd.Create(ctx, e.io, ours, 8<<20, &rbd.CreateOptions{ID: id, DataPool: dio.PoolID(), DataPoolSet: true}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.rbdQuiet("rm", "--no-progress", ours) })
			e.rbd(t, "create", "--size", "8M", "--data-pool", dpool, theirs)
			t.Cleanup(func() { e.rbdQuiet("rm", "--no-progress", theirs) })
			var a, b struct {
				ID       string `json:"id"`
				Prefix   string `json:"block_name_prefix"`
				DataPool string `json:"data_pool"`
			}
			_ = json.Unmarshal(e.rbd(t, "info", "--format", "json", ours), &a)
			_ = json.Unmarshal(e.rbd(t, "info", "--format", "json", theirs), &b)
			if strings.TrimSuffix(a.Prefix, a.ID) != strings.TrimSuffix(b.Prefix, b.ID) || a.DataPool != dpool ||
				!strings.HasPrefix(a.Prefix, fmt.Sprintf("rbd_data.%d.", e.io.PoolID())) {
				t.Fatalf("data-pool image prefix %q (data pool %q), librbd's %q", a.Prefix, a.DataPool, b.Prefix)
			}
			// Our I/O and librbd's reads agree on where the data is.
			img, err := rbd.Open(ctx, e.io, ours, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := randBytes(1<<20, 7)
			if _, err := img.WriteAt(ctx, want, 3<<20); err != nil {
				t.Fatal(err)
			}
			if err := img.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if got := e.export(t, ours); !bytes.Equal(got[3<<20:4<<20], want) {
				t.Fatal("rbd export of the data-pool image differs from what we wrote")
			}
		})
	}
}
