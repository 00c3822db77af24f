package rbd

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// Resize changes the image size (librbd's operation::ResizeRequest). A
// shrink first deletes or truncates the data beyond the new end; the
// object map is resized before a grow and after a shrink's trim; then
// set_size, and a HEADER_UPDATE notify for other clients.
func (img *Image) Resize(ctx context.Context, size uint64) error {
	done, err := img.startWrite(ctx)
	if err != nil {
		return err
	}
	defer done()
	return img.resize(ctx, size)
}

// resize does Resize under the caller's startWrite.
func (img *Image) resize(ctx context.Context, size uint64) error {
	st := img.state()
	if size == st.size {
		return nil
	}
	count := st.layout.ObjectCount(size)
	if size < st.size {
		if err := img.trim(ctx, st, size); err != nil {
			return err
		}
	}
	if img.feat()&FeatureObjectMap != 0 {
		img.omBusy.Lock() // no object map update in flight (io.go markObject)
		defer img.omBusy.Unlock()
		err := img.s.write(ctx, ObjectMapName(img.id, NoSnap),
			opCall(clsLock, "assert_locked", assertLockedArgs(rbdLockName, LockExclusive, "", "")),
			opCall(clsRBD, "object_map_resize", objectMapResizeArgs(count, ObjectNonexistent)))
		if err != nil {
			return fmt.Errorf("rbd: %s: object_map_resize: %w", img.name, err)
		}
		img.omMu.Lock()
		nm := NewObjectMap(count)
		for i := uint64(0); i < count && i < img.omap.Len(); i++ {
			nm.Set(i, img.omap.Get(i))
		}
		img.omap = nm
		img.omMu.Unlock()
	}
	if err := img.s.write(ctx, img.hdr(), opCall(clsRBD, "set_size", u64Arg(size))); err != nil {
		return fmt.Errorf("rbd: %s: set_size: %w", img.name, err)
	}
	img.mu.Lock()
	img.size = size
	img.overlap = min(img.overlap, size) // set_size clips the parent overlap too
	img.hdrGen.Add(1)                    // a refresh that read the old size must not store it
	img.mu.Unlock()
	img.notifyUpdate(ctx)
	return nil
}

// trim removes the image data at and beyond newSize (TrimRequest): objects
// wholly beyond it are deleted (ENOENT ignored), the boundary object is
// truncated or zeroed.
func (img *Image) trim(ctx context.Context, st snapshotState, newSize uint64) error {
	first := st.layout.ObjectCount(newSize)
	last := st.layout.ObjectCount(st.size)
	objs := make([]ObjectExtent, 0, last-first)
	for o := first; o < last; o++ {
		objs = append(objs, ObjectExtent{ObjectNo: o})
	}
	err := forExtents(objs, func(e ObjectExtent) error {
		if img.omap != nil && img.omapState(e.ObjectNo) == ObjectNonexistent {
			return nil
		}
		if err := img.markObject(ctx, e.ObjectNo, ObjectPending); err != nil {
			return err
		}
		err := st.data.write(ctx, DataObjectName(st.prefix, e.ObjectNo), opRemove())
		if err != nil && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("rbd: %s: trimming object %d: %w", img.name, e.ObjectNo, err)
		}
		return img.markObject(ctx, e.ObjectNo, ObjectNonexistent)
	})
	if err != nil {
		return err
	}
	// The tail of the objects that stay: zero what lies beyond newSize.
	if first > 0 && newSize < st.size {
		end := min(st.size, first*st.layout.ObjectSize())
		if !st.layout.IsFancy() && end > newSize {
			os := st.layout.ObjectSize()
			objno := newSize / os
			oid := DataObjectName(st.prefix, objno)
			if ok, err := st.data.exists(ctx, oid); err != nil {
				return err
			} else if ok {
				if err := st.data.write(ctx, oid, opTruncate(newSize%os)); err != nil {
					return fmt.Errorf("rbd: %s: truncating object %d: %w", img.name, objno, err)
				}
			}
		} else if st.layout.IsFancy() {
			// Striped images interleave the last object set: zero the
			// image range itself, object by object.
			for _, e := range st.layout.Map(newSize, st.size-newSize) {
				if e.ObjectNo >= first {
					continue
				}
				oid := DataObjectName(st.prefix, e.ObjectNo)
				if ok, err := st.data.exists(ctx, oid); err != nil {
					return err
				} else if ok {
					if err := st.data.write(ctx, oid, opZero(e.Offset, e.Length)); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

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
	img, err := open(ctx, s, name, id, &OpenOptions{ReadOnly: true, internal: true})
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
	if len(img.snaps) > 0 {
		return fmt.Errorf("%w: image %q has %d snapshots", ErrBusy, name, len(img.snaps))
	}
	// Writes from here on: no exclusive lock is needed when nobody watches.
	img.readOnly = false
	img.omap = nil
	if err := img.trim(ctx, st, 0); err != nil {
		return err
	}
	if img.parent.Exists() {
		if err := img.detachParent(ctx); err != nil {
			return err
		}
	}
	if err := s.write(ctx, ObjectMapName(img.id, NoSnap), opRemove()); err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("rbd: remove %q: object map: %w", name, err)
	}
	if err := s.write(ctx, img.hdr(), opRemove()); err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("rbd: remove %q: header: %w", name, err)
	}
	if name == "" {
		return nil
	}
	if err := s.write(ctx, IDObjectName(name), opRemove()); err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("rbd: remove %q: id object: %w", name, err)
	}
	err = s.write(ctx, DirectoryObject, opCall(clsRBD, "dir_remove_image", dirAddArgs(name, img.id)))
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("rbd: remove %q: directory: %w", name, err)
	}
	return nil
}

// detachParent undoes a clone link: child_detach on the parent (clone
// v2), and remove_child on the child pool's rbd_children (v1).
func (img *Image) detachParent(ctx context.Context) error {
	img.mu.RLock()
	p := img.parent
	img.mu.RUnlock()
	return img.detachParentSpec(ctx, p)
}

func (img *Image) detachParentSpec(ctx context.Context, p ParentSpec) error {
	ps, err := img.s.withPool(ctx, p.PoolID)
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
