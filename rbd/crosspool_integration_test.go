package rbd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// A clone's parent may live in another pool or RADOS namespace: a clone
// v1 child in a second pool keeps the parent snapshot protected (its link
// is recorded only in that pool's rbd_children), and clone v2 children in
// another namespace read through to, flatten from and detach from their
// parent there, whichever of us and librbd made them.
func TestInteropCrossPoolNamespaceClones(t *testing.T) {
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx := tctx(t)
			const size = 4<<20 + 8192
			data := randBytes(size, 77)

			crossPoolV1Child(t, ctx, e, data)
			crossNamespaceV2Children(t, ctx, e, data)
		})
	}
}

// crossPoolV1Child: a v1 clone in another pool keeps the parent snapshot
// protected until it is gone.
func crossPoolV1Child(t *testing.T, ctx context.Context, e *env, data []byte) {
	// v1 child in another pool.
	pool2 := iname("xpool")
	mon := func(cmd string) {
		t.Helper()
		if _, status, err := e.conn.MonCommand(ctx, cmd, nil); err != nil {
			t.Fatalf("%s: %v %s", cmd, err, status)
		}
	}
	mon(`{"prefix":"osd pool create","pool":"` + pool2 + `","pg_num":8,"pgp_num":8}`)
	t.Cleanup(func() {
		_, _, _ = e.conn.MonCommand(context.Background(), `{"prefix":"osd pool delete","pool":"`+pool2+`","pool2":"`+pool2+
			`","yes_i_really_really_mean_it":true}`, nil)
	})
	mon(`{"prefix":"osd pool application enable","pool":"` + pool2 + `","app":"rbd"}`)
	if err := e.conn.WaitForLatestOSDMap(ctx); err != nil {
		t.Fatal(err)
	}
	parent := iname("xparent")
	e.importFile(t, data, parent)
	t.Cleanup(func() {
		e.rbdQuiet("snap", "unprotect", parent+"@s")
		e.rbdQuiet("snap", "purge", "--no-progress", parent)
		e.rbdQuiet("rm", "--no-progress", parent)
	})
	e.rbd(t, "snap", "create", parent+"@s")
	e.rbd(t, "snap", "protect", parent+"@s")
	v1child := pool2 + "/" + parent + "-v1"
	e.rbd(t, "clone", "--rbd-default-clone-format", "1", e.pool+"/"+parent+"@s", v1child)
	img, err := rbd.Open(ctx, e.io, parent, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close(context.Background())
	if err := img.UnprotectSnapshot(ctx, "s"); !errors.Is(err, rbd.ErrBusy) {
		t.Fatalf("unprotect with a v1 child in pool %s: %v, want ErrBusy", pool2, err)
	}
	e.rbd(t, "rm", "--no-progress", v1child)
	if err := img.UnprotectSnapshot(ctx, "s"); err != nil {
		t.Fatalf("unprotect once the v1 child is gone: %v", err)
	}
}

// crossNamespaceV2Children: v2 clones in another namespace, ours and
// librbd's, read through to, flatten from and detach from their parent.
func crossNamespaceV2Children(t *testing.T, ctx context.Context, e *env, data []byte) {
	size := uint64(len(data))
	// v2 children in other namespaces.
	nsA, nsB := iname("nsa"), iname("nsb")
	for _, ns := range []string{nsA, nsB} {
		e.rbd(t, "namespace", "create", "--namespace", ns)
		t.Cleanup(func() { e.rbdQuiet("namespace", "remove", "--namespace", ns) })
	}
	ioA, ioB := e.io.Clone(), e.io.Clone()
	ioA.SetNamespace(nsA)
	ioB.SetNamespace(nsB)
	pa := "p"
	if _, err := rbd.Create(ctx, ioA, pa, size, &rbd.CreateOptions{Features: rbd.FeaturesDefault}); err != nil {
		t.Fatal(err)
	}
	pimg, err := rbd.Open(ctx, ioA, pa, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pimg.WriteAt(ctx, data, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := pimg.CreateSnapshot(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if err := pimg.Close(ctx); err != nil {
		t.Fatal(err)
	}
	specA := e.pool + "/" + nsA + "/" + pa
	t.Cleanup(func() {
		e.rbdQuiet("snap", "purge", "--no-progress", specA)
		e.rbdQuiet("rm", "--no-progress", specA)
	})
	ours, theirs := "ours", "theirs"
	if _, err := rbd.Clone(ctx, ioA, pa, "s", ioB, ours, &rbd.CreateOptions{CloneFormat: rbd.CloneFormatV2}); err != nil {
		t.Fatalf("clone across namespaces: %v", err)
	}
	e.rbd(t, "clone", "--rbd-default-clone-format", "2", specA+"@s", e.pool+"/"+nsB+"/"+theirs)
	t.Cleanup(func() {
		for _, n := range []string{ours, theirs} {
			e.rbdQuiet("rm", "--no-progress", e.pool+"/"+nsB+"/"+n)
		}
	})
	var info struct {
		Parent struct {
			Pool      string `json:"pool"`
			Namespace string `json:"pool_namespace"`
			Image     string `json:"image"`
			Snapshot  string `json:"snapshot"`
		} `json:"parent"`
	}
	if err := json.Unmarshal(e.rbd(t, "info", "--format", "json", e.pool+"/"+nsB+"/"+ours), &info); err != nil {
		t.Fatal(err)
	}
	if p := info.Parent; p.Pool != e.pool || p.Namespace != nsA || p.Image != pa || p.Snapshot != "s" {
		t.Fatalf("rbd info of our cross-namespace clone: parent %+v", p)
	}
	for _, n := range []string{ours, theirs} {
		ci, err := rbd.Open(ctx, ioB, n, nil)
		if err != nil {
			t.Fatalf("open %s/%s: %v", nsB, n, err)
		}
		got := make([]byte, size)
		if _, err := ci.ReadAt(ctx, got, 0); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: reading through to the parent in %s: %v (data equal: %v)", n, nsA, err, bytes.Equal(got, data))
		}
		if n == ours {
			if err := ci.Flatten(ctx); err != nil {
				t.Fatalf("flatten across namespaces: %v", err)
			}
		}
		if err := ci.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.export(t, e.pool+"/"+nsB+"/"+ours); !bytes.Equal(got, data) {
		t.Fatal("rbd export of our flattened clone differs")
	}
	if err := rbd.Remove(ctx, ioB, theirs); err != nil {
		t.Fatalf("remove of the unflattened clone: %v", err)
	}
	// Both child links are gone: librbd removes the parent.
	e.rbd(t, "snap", "rm", "--no-progress", specA+"@s")
	e.rbd(t, "rm", "--no-progress", specA)
}
