package rbd

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// RollbackSnapshot makes the head equal to user snapshot name (`rbd snap
// rollback`), under the exclusive lock: the head is resized to the
// snapshot's size, then every object is rewritten from its snapshot
// version — objects that did not exist at the snapshot are deleted, so a
// clone reads through to its parent there again — with the object map
// kept in step. librbd sends the OSD's rollback op instead; rewriting from
// a snapshot read leaves the same bytes (holes inside an object become
// written zeros). Other snapshots are untouched.
func (img *Image) RollbackSnapshot(ctx context.Context, name string) error {
	si, done, err := img.startSnapshotWrite(ctx, name)
	if err != nil {
		return err
	}
	defer done()
	if img.Size() != si.Size {
		if err := img.resize(ctx, si.Size); err != nil {
			return err
		}
	}
	st := img.state()
	snapData := st.data.withReadSnap(si.ID)
	n := st.layout.ObjectCount(si.Size)
	objs := make([]ObjectExtent, 0, n)
	for o := uint64(0); o < n; o++ {
		objs = append(objs, ObjectExtent{ObjectNo: o})
	}
	osz := st.layout.ObjectSize()
	err = forExtents(objs, func(e ObjectExtent) error {
		oid := DataObjectName(st.prefix, e.ObjectNo)
		buf := make([]byte, osz)
		got, err := snapData.read(ctx, oid, buf, 0)
		if errors.Is(err, syscall.ENOENT) {
			return img.removeObject(ctx, st, e.ObjectNo)
		}
		if err != nil {
			return fmt.Errorf("rbd: %s: reading object %d at snapshot %q: %w", img.name, e.ObjectNo, name, err)
		}
		if err := img.markObject(ctx, st, e.ObjectNo, ObjectExists); err != nil {
			return err
		}
		w := rados.NewWriteOp()
		w.Create(false)
		w.Truncate(0)
		if got > 0 {
			w.Write(buf[:got], 0)
		}
		if err := st.data.write(ctx, oid, w); err != nil {
			return fmt.Errorf("rbd: %s: rollback of object %d: %w", img.name, e.ObjectNo, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := img.refresh(ctx); err != nil {
		return err
	}
	img.notifyUpdate(ctx)
	return nil
}
