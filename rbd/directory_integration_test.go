package rbd_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// TestInteropDirectory: ListImages, ImageName and Image.Children agree
// with what the rbd CLI made and reports (dir_list, dir_get_name,
// children_list on a real cluster).
func TestInteropDirectory(t *testing.T) {
	e := newEnv(t, "pacific")
	ctx := tctx(t)
	parent, other := iname("dirpar"), iname("diroth")
	child := parent + "-c"
	t.Cleanup(func() {
		e.rbdQuiet("rm", "--no-progress", child)
		e.rbdQuiet("snap", "purge", "--no-progress", parent)
		e.rbdQuiet("rm", "--no-progress", parent)
		e.rbdQuiet("rm", "--no-progress", other)
	})
	e.rbd(t, "create", "--size", "4M", parent)
	e.rbd(t, "create", "--size", "4M", other)
	e.rbd(t, "snap", "create", parent+"@s1")
	e.rbd(t, "snap", "create", parent+"@s2")
	e.rbd(t, "clone", "--rbd-default-clone-format", "2", parent+"@s1", child)

	ids := map[string]string{}
	for _, n := range []string{parent, other, child} {
		var info struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(e.rbd(t, "info", "--format", "json", n), &info); err != nil || info.ID == "" {
			t.Fatalf("rbd info %s: %v", n, err)
		}
		ids[n] = info.ID
	}
	all, err := rbd.ListImages(ctx, e.io)
	if err != nil {
		t.Fatal(err)
	}
	for n, id := range ids {
		if all[n] != id {
			t.Errorf("ListImages: %s = %q, rbd info id %q", n, all[n], id)
		}
		if got, err := rbd.ImageName(ctx, e.io, id); err != nil || got != n {
			t.Errorf("ImageName(%s) = %q, %v; want %q", id, got, err, n)
		}
	}
	if _, err := rbd.ImageName(ctx, e.io, "nosuchid"); !errors.Is(err, rbd.ErrNotFound) {
		t.Errorf("ImageName of an unknown id: %v", err)
	}

	img, err := rbd.Open(ctx, e.io, parent, &rbd.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close(ctx)
	kids, err := img.Children(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if len(kids) != 1 || kids[0].ImageID != ids[child] || kids[0].PoolID != e.io.PoolID() || kids[0].Namespace != "" {
		t.Errorf("Children(s1) = %+v, want the clone %s", kids, ids[child])
	}
	if kids, err := img.Children(ctx, "s2"); err != nil || len(kids) != 0 {
		t.Errorf("Children(s2) = %+v, %v; want none", kids, err)
	}
	if _, err := img.Children(ctx, "nosuchsnap"); !errors.Is(err, rbd.ErrNotFound) {
		t.Errorf("Children of an unknown snapshot: %v", err)
	}
}
