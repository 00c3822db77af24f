package rbd_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// setTrashStateRaw forces a trash entry's state with cls_rbd's
// trash_state_set, as an interrupted librbd restore or removal leaves it.
func setTrashStateRaw(t *testing.T, ctx context.Context, io *rados.IOContext, id string, to, expect rbd.TrashState) error {
	t.Helper()
	in := binary.LittleEndian.AppendUint32(nil, uint32(len(id)))
	in = append(in, id...)
	in = append(in, byte(to), byte(expect))
	w := rados.NewWriteOp()
	w.Exec("rbd", "trash_state_set", in)
	return w.Operate(ctx, io, rbd.TrashObject)
}

// Trash entries carry librbd's states: a restore sets RESTORING and a
// removal REMOVING first, so neither runs over the other. An entry
// another client is restoring is neither removed nor restored by us (nor
// by librbd); an interrupted removal (REMOVING) is finished by
// TrashRemove; a failed restore leaves the entry NORMAL and restorable by
// the CLI.
func TestInteropTrashStates(t *testing.T) {
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx := tctx(t)
			a := iname("trst")
			data := randBytes(1<<20, 83)
			e.importFile(t, data, a)
			t.Cleanup(func() {
				e.rbdQuiet("rm", "--no-progress", a)
				e.rbdQuiet("rm", "--no-progress", a+"-x")
			})
			id, err := rbd.TrashMove(ctx, e.io, a, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = setTrashStateRaw(t, context.Background(), e.io, id, rbd.TrashStateNormal, rbd.TrashStateRestoring)
				_ = rbd.TrashRemove(context.Background(), e.io, id)
			})

			// Someone else is restoring it.
			if err := setTrashStateRaw(t, ctx, e.io, id, rbd.TrashStateRestoring, rbd.TrashStateNormal); err != nil {
				t.Fatal(err)
			}
			if err := rbd.TrashRemove(ctx, e.io, id); !errors.Is(err, rbd.ErrBusy) {
				t.Fatalf("TrashRemove of an entry being restored: %v, want ErrBusy", err)
			}
			if _, err := rbd.TrashRestore(ctx, e.io, id, ""); !errors.Is(err, rbd.ErrBusy) {
				t.Fatalf("TrashRestore of an entry being restored: %v, want ErrBusy", err)
			}
			if out := e.rbdFails(t, "trash", "rm", id); out == "" {
				t.Fatal("rbd trash rm of an entry being restored succeeded")
			}
			if err := setTrashStateRaw(t, ctx, e.io, id, rbd.TrashStateNormal, rbd.TrashStateRestoring); err != nil {
				t.Fatal(err)
			}

			// A failed restore (name taken) leaves it NORMAL: the CLI can
			// restore it.
			e.rbd(t, "create", "--size", "1", a)
			if _, err := rbd.TrashRestore(ctx, e.io, id, ""); !errors.Is(err, rbd.ErrExists) {
				t.Fatalf("restore onto an existing name: %v, want ErrExists", err)
			}
			st, err := rbd.TrashList(ctx, e.io)
			if err != nil || st[id].State != rbd.TrashStateNormal {
				t.Fatalf("trash entry after a failed restore: %+v %v", st[id], err)
			}
			e.rbd(t, "trash", "restore", "--image", a+"-x", id)
			if exp := e.export(t, a+"-x"); !bytes.Equal(exp, data) {
				t.Fatal("rbd trash restore after our failed restore: data differs")
			}

			// An interrupted removal: REMOVING. Restores are refused, by
			// us and by librbd; TrashRemove finishes it.
			if id, err = rbd.TrashMove(ctx, e.io, a+"-x", 0); err != nil {
				t.Fatal(err)
			}
			if err := setTrashStateRaw(t, ctx, e.io, id, rbd.TrashStateRemoving, rbd.TrashStateNormal); err != nil {
				t.Fatal(err)
			}
			if _, err := rbd.TrashRestore(ctx, e.io, id, a+"-y"); !errors.Is(err, rbd.ErrBusy) {
				t.Fatalf("TrashRestore of an entry being removed: %v, want ErrBusy", err)
			}
			e.rbdFails(t, "trash", "restore", "--image", a+"-y", id)
			if err := rbd.TrashRemove(ctx, e.io, id); err != nil {
				t.Fatalf("finishing an interrupted removal: %v", err)
			}
			if out := string(e.rbd(t, "trash", "ls")); strings.Contains(out, id) {
				t.Fatalf("entry still in the trash:\n%s", out)
			}
		})
	}
}
