package controllerserver

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"google.golang.org/grpc/codes"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// Snapshot semantics without hidden copies.
//
// A CSI snapshot is a user snapshot of the source image. Deleting a volume
// that still has snapshots (or snapshots with clone children) moves its
// image to the RBD trash instead of removing it: it keeps serving those
// snapshots and clones. Deleting a snapshot that still has clone v2
// children moves it to the trash snapshot namespace (rbd's RemoveSnapshot
// does, as librbd): the snapshot is gone for CSI and `rbd snap ls`, its
// data stays for the children. Whenever a clone goes away (deleted or
// flattened), collect walks up its parent chain: a trash-namespace or
// temporary (csi-clone-) snapshot left with no children is removed, and a
// trashed image left with no snapshots is purged, which may free its own
// parent in turn.

// openImage opens the image called name in io, looking in the trash when
// it has no directory entry any more. trashID is the image id when it was
// found in the trash.
func openImage(ctx context.Context, io *rados.IOContext, name string, opts *rbd.OpenOptions) (img *rbd.Image, trashID string, err error) {
	img, err = rbd.Open(ctx, io, name, opts)
	if err == nil || csiceph.Code(err) != codes.NotFound {
		return img, "", err
	}
	id, terr := trashedID(ctx, io, name)
	if terr != nil {
		return nil, "", terr
	}
	if id == "" {
		return nil, "", err
	}
	img, err = rbd.OpenByID(ctx, io, id, opts)
	return img, id, err
}

// trashedID finds the id of the trashed image that was called name ("" if
// none).
func trashedID(ctx context.Context, io *rados.IOContext, name string) (string, error) {
	entries, err := rbd.TrashList(ctx, io)
	if err != nil {
		return "", err
	}
	for id, e := range entries {
		if e.Name == name {
			return id, nil
		}
	}
	return "", nil
}

// inTrash reports whether the image id has a trash entry, and the name
// the image had.
func inTrash(ctx context.Context, io *rados.IOContext, id string) (bool, string, error) {
	entries, err := rbd.TrashList(ctx, io)
	if err != nil {
		return false, "", err
	}
	e, ok := entries[id]
	return ok, e.Name, nil
}

// poolIO returns an IOContext for pool id and RADOS namespace ns,
// reusing se.io when it is that.
func (se *session) poolIO(ctx context.Context, pool int64, ns string) (*rados.IOContext, error) {
	if pool == se.io.PoolID() && ns == se.io.Namespace() {
		return se.io, nil
	}
	io, err := se.io.Conn().OpenIOContextByID(ctx, pool)
	if err != nil {
		return nil, err
	}
	io.SetNamespace(ns)
	return io, nil
}

// maxCollectDepth bounds the walk up a parent chain (twice the deepest
// chain a StorageClass may allow before flattening).
const maxCollectDepth = 2 * csiceph.MaxCloneDepthLimit

// collect frees what a vanished clone held on its parent p (see the
// comment at the top of this file). child is the clone's image name.
func (se *session) collect(ctx context.Context, p rbd.ParentSpec, child string) error {
	for depth := 0; depth < maxCollectDepth; depth++ {
		next, name, err := se.collectOne(ctx, p, child)
		if err != nil || next == nil {
			return err
		}
		p, child = *next, name
	}
	return nil
}

// collectOne handles one parent; it returns the grandparent and the
// parent's name when it purged the parent from the trash.
func (se *session) collectOne(ctx context.Context, p rbd.ParentSpec, child string) (*rbd.ParentSpec, string, error) {
	pio, err := se.poolIO(ctx, p.PoolID, p.Namespace)
	if err != nil {
		if csiceph.Code(err) == codes.NotFound {
			return nil, "", nil
		}
		return nil, "", err
	}
	parent, err := rbd.OpenByID(ctx, pio, p.ImageID, nil)
	if err != nil {
		if csiceph.Code(err) == codes.NotFound {
			return nil, "", nil
		}
		return nil, "", err
	}
	for _, si := range parent.Stat().Snapshots {
		if si.ID != p.SnapID || si.ChildCount > 0 {
			continue
		}
		gone := si.Namespace.Type == rbd.SnapNamespaceTrash ||
			(child != "" && si.Namespace.Type == rbd.SnapNamespaceUser && si.Name == cloneSnapPrefix+child)
		if !gone {
			continue
		}
		if err = parent.RemoveSnapshotByID(ctx, si.ID); err != nil && !notFound(err) {
			break
		}
		err = nil
	}
	if err != nil {
		se.s.closeImage(ctx, parent, "id "+p.ImageID)
		return nil, "", err
	}
	return se.purgeIfEmpty(ctx, pio, parent)
}

// purgeIfEmpty closes img and, when it is a trashed image with no
// snapshots left, removes it and returns its parent (to collect next), if
// it had one, and the name it had.
func (se *session) purgeIfEmpty(ctx context.Context, io *rados.IOContext, img *rbd.Image) (*rbd.ParentSpec, string, error) {
	err := img.Refresh(ctx)
	info := img.Stat()
	se.s.closeImage(ctx, img, info.Name)
	if err != nil {
		return nil, "", err
	}
	if len(info.Snapshots) > 0 {
		return nil, "", nil
	}
	trashed, name, err := inTrash(ctx, io, info.ID)
	if err != nil || !trashed {
		return nil, "", err
	}
	if err := rbd.TrashRemove(ctx, io, info.ID); err != nil && csiceph.Code(err) != codes.NotFound {
		return nil, "", fmt.Errorf("purging trashed image %s: %w", info.ID, err)
	}
	return info.Parent, name, nil
}

// dropDeadSnaps removes the snapshots of img that only wait for their
// children and have none left: trash-namespace snapshots and temporary
// clone snapshots. It reports how many snapshots remain.
func dropDeadSnaps(ctx context.Context, img *rbd.Image) (int, error) {
	left := 0
	for _, si := range img.Stat().Snapshots {
		dead := si.ChildCount == 0 && (si.Namespace.Type == rbd.SnapNamespaceTrash ||
			(si.Namespace.Type == rbd.SnapNamespaceUser && isCloneSnap(si.Name)))
		if !dead {
			left++
			continue
		}
		if err := img.RemoveSnapshotByID(ctx, si.ID); err != nil && !notFound(err) {
			return 0, err
		}
	}
	return left, nil
}

func isCloneSnap(name string) bool {
	return len(name) > len(cloneSnapPrefix) && name[:len(cloneSnapPrefix)] == cloneSnapPrefix
}

// notFound reports whether err says an object is missing.
func notFound(err error) bool {
	return errors.Is(err, rbd.ErrNotFound) || errors.Is(err, syscall.ENOENT)
}
