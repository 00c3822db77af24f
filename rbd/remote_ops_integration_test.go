package rbd_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// TestInteropRemoteOperations: an owner that keeps the exclusive lock
// (Exclusive, krbd -o exclusive) runs the maintenance operations others
// need the lock for, when they ask (librbd's operation requests): our
// own second client and librbd's CLI resize the image and create and
// remove snapshots while the owner goes on writing, and the snapshots
// hold what was written before them.
func TestInteropRemoteOperations(t *testing.T) {
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx := tctx(t)
			name := iname("remote")
			if _, err := rbd.Create(ctx, e.io, name, 8<<20, &rbd.CreateOptions{Features: rbd.FeaturesDefault}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = rbd.Remove(context.Background(), e.io, name) })
			owner, err := rbd.Open(ctx, e.io, name, &rbd.OpenOptions{Exclusive: true})
			if err != nil {
				t.Fatal(err)
			}
			defer owner.Close(context.Background())
			before := bytes.Repeat([]byte("before"), 100)
			if _, err := owner.WriteAt(ctx, before, 0); err != nil {
				t.Fatal(err)
			}

			conn2, err := rados.Connect(ctx, rados.Config{ConfFile: e.cl.Conf(), Keyring: e.cl.Keyring()})
			if err != nil {
				t.Fatal(err)
			}
			defer conn2.Close()
			io2, err := conn2.OpenIOContext(ctx, e.pool)
			if err != nil {
				t.Fatal(err)
			}
			other, err := rbd.Open(ctx, io2, name, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close(context.Background())

			// Our requester: snapshot, grow, and the lock stays put.
			id, err := other.CreateSnapshot(ctx, "s1")
			if err != nil {
				t.Fatalf("snapshot through the owner: %v", err)
			}
			if id == 0 {
				t.Fatal("snapshot id 0")
			}
			if _, err := other.CreateSnapshot(ctx, "s1"); !errors.Is(err, rbd.ErrExists) {
				t.Fatalf("second snapshot s1 through the owner: %v, want ErrExists", err)
			}
			if err := other.Resize(ctx, 16<<20); err != nil {
				t.Fatalf("resize through the owner: %v", err)
			}
			if other.Size() != 16<<20 {
				t.Fatalf("requester sees size %d after its resize", other.Size())
			}
			if !owner.OwnsLock() || other.OwnsLock() {
				t.Fatal("the lock moved")
			}
			if _, err := owner.WriteAt(ctx, []byte("after s1"), 0); err != nil {
				t.Fatalf("owner's write after the remote operations: %v", err)
			}
			if err := owner.Refresh(ctx); err != nil || owner.Size() != 16<<20 {
				t.Fatalf("owner size %d after the remote resize: %v", owner.Size(), err)
			}
			snap, err := rbd.Open(ctx, e.io, name, &rbd.OpenOptions{Snapshot: "s1"})
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(before))
			_, err = snap.ReadAt(ctx, got, 0)
			snap.Close(ctx)
			if err != nil || !bytes.Equal(got, before) {
				t.Fatalf("snapshot s1 reads %q... (%v), want what was written before it", got[:16], err)
			}

			// librbd's CLI asks the owner the same way.
			e.rbd(t, "snap", "create", name+"@cli")
			e.rbd(t, "resize", "--size", "24M", name)
			if out := string(e.rbd(t, "snap", "ls", name)); !strings.Contains(out, "cli") || !strings.Contains(out, "s1") {
				t.Fatalf("rbd snap ls:\n%s", out)
			}
			e.rbd(t, "snap", "rm", name+"@cli")
			if err := other.RemoveSnapshot(ctx, "s1"); err != nil {
				t.Fatalf("snapshot remove through the owner: %v", err)
			}
			if err := other.RemoveSnapshot(ctx, "s1"); !errors.Is(err, rbd.ErrNotFound) {
				t.Fatalf("removing s1 again: %v, want ErrNotFound", err)
			}
			if out := string(e.rbd(t, "snap", "ls", name)); strings.Contains(out, "cli") || strings.Contains(out, "s1") {
				t.Fatalf("snapshots left:\n%s", out)
			}
			if err := owner.Refresh(ctx); err != nil || owner.Size() != 24<<20 {
				t.Fatalf("owner size %d after rbd resize: %v", owner.Size(), err)
			}
			if !owner.OwnsLock() {
				t.Fatal("the owner lost the lock to librbd")
			}
		})
	}
}
