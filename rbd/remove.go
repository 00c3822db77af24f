package rbd

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// Remove deletes the image called name (librbd's image::RemoveRequest,
// without the trash detour): it refuses while another client watches the
// header or while snapshots exist, deletes the data objects, detaches from
// a clone parent, and removes the object map, header, id object and
// directory entry.
func Remove(ctx context.Context, io *rados.IOContext, name string) error {
	return remove(ctx, newRadosStore(io), name, "")
}

// remove deletes an image by name, or by id (name empty: a trashed image,
// which has no id object or directory entry).
func remove(ctx context.Context, s store, name, id string) error {
	img, err := open(ctx, s, name, id, &OpenOptions{ReadOnly: true, NoWatch: true})
	if err != nil {
		return err
	}
	if id != "" {
		name = ""
	}
	if ws, err := s.listWatchers(ctx, img.hdr()); err != nil {
		return fmt.Errorf("rbd: remove %q: listing watchers: %w", name, err)
	} else if n := len(ws); n > 0 {
		return fmt.Errorf("%w: image %q has %d watchers", ErrBusy, name, n)
	}
	st := img.state()
	if len(st.snaps) > 0 {
		return fmt.Errorf("%w: image %q has %d snapshots", ErrBusy, name, len(st.snaps))
	}
	// Writes from here on: no exclusive lock is needed when nobody
	// watches, and the live object map stays NONE (no map updates: the
	// map object goes away below).
	// The object map still tells which data objects exist, so a sparse
	// image costs one delete per written object, not per object number.
	om, err := headObjectMap(ctx, img)
	if err != nil {
		return fmt.Errorf("rbd: remove %q: object map: %w", name, err)
	}
	if err := img.trim(ctx, st, 0, om); err != nil {
		return err
	}
	if st.parent.Exists() {
		if err := img.detachParentSpec(ctx, st.parent); err != nil {
			return err
		}
	}
	if err := s.remove(ctx, ObjectMapName(img.id, NoSnap)); err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("rbd: remove %q: object map: %w", name, err)
	}
	if err := s.remove(ctx, img.hdr()); err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("rbd: remove %q: header: %w", name, err)
	}
	if name == "" {
		return nil
	}
	if err := s.remove(ctx, IDObjectName(name)); err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("rbd: remove %q: id object: %w", name, err)
	}
	err = s.write(ctx, DirectoryObject, opCall(clsRBD, "dir_remove_image", dirAddArgs(name, img.id)))
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("rbd: remove %q: directory: %w", name, err)
	}
	return nil
}

// detachParentSpec undoes a clone link: child_detach on the parent (clone
// v2), and remove_child on the child pool's rbd_children (v1).
func (img *Image) detachParentSpec(ctx context.Context, p ParentSpec) error {
	ps, err := img.s.withPool(ctx, p.PoolID, p.Namespace)
	if err != nil {
		return err
	}
	child := ChildSpec{PoolID: img.s.poolID(), Namespace: img.s.namespace(), ImageID: img.id}
	err = ps.write(ctx, HeaderObjectName(p.ImageID), opCall(clsRBD, "child_detach", childAttachArgs(p.SnapID, child)))
	if err != nil && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.EOPNOTSUPP) {
		return fmt.Errorf("rbd: %s: child_detach: %w", img.name, err)
	}
	// Clone v1 records children in rbd_children of the child's own pool.
	err = img.s.write(ctx, ChildrenObject, opCall(clsRBD, "remove_child", legacyChildArgs(p, img.id)))
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("rbd: %s: remove_child: %w", img.name, err)
	}
	removeTrashedSnapshot(ctx, ps, p)
	return nil
}

// removeTrashedSnapshot deletes the parent's snapshot once its last clone
// child is gone, if it waits in the trash namespace (librbd's
// DetachChildRequest). It is best effort: a snapshot that stays (the
// parent's lock owner refuses, say) shows in `rbd snap ls --all`.
func removeTrashedSnapshot(ctx context.Context, ps store, p ParentSpec) {
	out, err := ps.call(ctx, HeaderObjectName(p.ImageID), clsRBD, "snapshot_get", snapIDArg(p.SnapID))
	if err != nil {
		return
	}
	si, err := decodeSnapshotInfo(out)
	if err != nil || si.Namespace.Type != SnapNamespaceTrash || si.ChildCount > 0 {
		return
	}
	parent, err := open(ctx, ps, "", p.ImageID, nil)
	if err != nil {
		return
	}
	_ = parent.RemoveSnapshotByID(ctx, p.SnapID)
	_ = parent.Close(context.WithoutCancel(ctx))
}
