package rbd_test

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// A clone v2 keeps its parent snapshot alive after `snap rm` moved it into
// the trash namespace. Whatever way the clone lets go of it (flatten, with
// or without snapshots of its own, with or without deep-flatten; removal
// without flatten), the child link on the parent must go, the trashed
// snapshot must be removed with its last child (as librbd does), and
// `rbd rm` of the parent must then succeed.
func TestChildLinkTrashedParentSnapshot(t *testing.T) {
	scenarios := []childLinkCase{
		{name: "flatten", flatten: true, removeByUs: true},
		{name: "flatten-cli-rm", flatten: true},
		{name: "flatten-snap", flatten: true, cloneSnap: true, removeByUs: true},
		{name: "flatten-snap-deep", features: rbd.FeatureDeepFlatten, flatten: true, cloneSnap: true, removeByUs: true},
		{name: "flatten-snap-cli", flatten: true, cloneSnap: true},
		{name: "remove-unflattened", removeByUs: true},
		{name: "remove-unflattened-snap", cloneSnap: true, removeByUs: true},
	}
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) { childLinkScenario(t, e, sc) })
			}
		})
	}
}

// childLinkCase is one way TestChildLinkTrashedParentSnapshot lets a clone
// of a trashed parent snapshot go.
type childLinkCase struct {
	name       string
	features   uint64 // of the clone (layering is added by Clone)
	cloneSnap  bool   // the clone has a snapshot when it is flattened
	flatten    bool
	removeByUs bool // rbd.Remove of the clone (else `rbd rm`)
}

func childLinkScenario(t *testing.T, e *env, sc childLinkCase) {
	ctx := tctx(t)
	base := iname("childlink")
	clone := base + "-c"
	if _, err := rbd.Create(ctx, e.io, base, 8<<20, &rbd.CreateOptions{Features: rbd.FeatureLayering}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.rbdQuiet("snap", "purge", "--no-progress", clone)
		e.rbdQuiet("rm", "--no-progress", clone)
		e.rbdQuiet("snap", "purge", "--no-progress", base)
		e.rbdQuiet("rm", "--no-progress", base)
	})
	bimg, err := rbd.Open(ctx, e.io, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bimg.Close(context.Background())
	data := randBytes(5<<20, 7)
	if _, err := bimg.WriteAt(ctx, data, 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := bimg.CreateSnapshot(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := rbd.Clone(ctx, e.io, base, "s1", e.io, clone,
		&rbd.CreateOptions{Features: sc.features, CloneFormat: rbd.CloneFormatV2}); err != nil {
		t.Fatal(err)
	}
	// The snapshot has a child: it goes to the trash namespace.
	if err := bimg.RemoveSnapshot(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	all := e.snaps(t, base, true)
	if len(all) != 1 || all[0].Namespace.Type != "trash" {
		t.Fatalf("rbd snap ls --all after RemoveSnapshot: %+v", all)
	}
	snapID := strconv.FormatUint(all[0].ID, 10)
	if out := e.rbd(t, "children", "--all", "--snap-id", snapID, base); !strings.Contains(string(out), clone) {
		t.Fatalf("rbd children of the trashed snapshot: %q", out)
	}

	cimg, err := rbd.Open(ctx, e.io, clone, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cimg.Close(context.Background()) // a failure must not leave its watch behind
	if sc.cloneSnap {
		if _, err := cimg.CreateSnapshot(ctx, "cs"); err != nil {
			t.Fatal(err)
		}
	}
	if sc.flatten {
		if err := cimg.Flatten(ctx); err != nil {
			t.Fatal(err)
		}
		if sc.cloneSnap && sc.features&rbd.FeatureDeepFlatten == 0 {
			// Its snapshot still reads through the parent:
			// the link and the trashed snapshot stay.
			if out := e.rbd(t, "children", "--all", "--snap-id", snapID, base); !strings.Contains(string(out), clone) {
				t.Fatalf("clone snapshot still uses the parent, but rbd children: %q", out)
			}
			// and it still reads the parent's data.
			if exp := e.export(t, clone+"@cs"); !bytes.Equal(exp[1000:1000+5<<20], data) {
				t.Fatal("rbd export of the clone's snapshot after Flatten lost the parent's data")
			}
		} else if all := e.snaps(t, base, true); len(all) != 0 {
			// Its last child detached: librbd removes a
			// trashed snapshot then.
			t.Fatalf("rbd snap ls --all %s after Flatten: %+v", base, all)
		}
	}
	if sc.cloneSnap && sc.removeByUs {
		if err := cimg.RemoveSnapshot(ctx, "cs"); err != nil {
			t.Fatal(err)
		}
	}
	if err := cimg.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if sc.removeByUs {
		if err := rbd.Remove(ctx, e.io, clone); err != nil {
			t.Fatal(err)
		}
	} else {
		e.rbd(t, "snap", "purge", "--no-progress", clone)
		e.rbd(t, "rm", "--no-progress", clone)
	}
	if all := e.snaps(t, base, true); len(all) != 0 {
		t.Fatalf("rbd snap ls --all %s after the clone went: %+v (trashed snapshot not removed)", base, all)
	}
	if err := bimg.Close(ctx); err != nil {
		t.Fatal(err)
	}
	e.rbd(t, "rm", "--no-progress", base)
}
