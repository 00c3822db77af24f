package rbd

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// dirListPage is how many entries one dir_list call asks for.
const dirListPage = 1024

// ListImages returns the images of the pool (and namespace) io addresses,
// name → id, from rbd_directory (dir_list, paged). A pool that never held
// an image has no rbd_directory and no images.
func ListImages(ctx context.Context, io *rados.IOContext) (map[string]string, error) {
	return listImages(ctx, newRadosStore(io))
}

func listImages(ctx context.Context, s store) (map[string]string, error) {
	all := map[string]string{}
	start := ""
	for {
		out, err := s.call(ctx, DirectoryObject, clsRBD, "dir_list", dirListArgs(start, dirListPage))
		if errors.Is(err, syscall.ENOENT) {
			return all, nil
		}
		if err != nil {
			return nil, fmt.Errorf("rbd: dir_list: %w", err)
		}
		m, err := decodeDirList(out)
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			all[k] = v
			start = max(start, k)
		}
		if len(m) < dirListPage {
			return all, nil
		}
	}
}

// ImageName returns the name rbd_directory records for an image id
// (dir_get_name); ErrNotFound when there is none (no such image, or one
// in the trash).
func ImageName(ctx context.Context, io *rados.IOContext, id string) (string, error) {
	out, err := newRadosStore(io).call(ctx, DirectoryObject, clsRBD, "dir_get_name", stringArg(id))
	if errors.Is(err, syscall.ENOENT) {
		return "", fmt.Errorf("%w: image id %q: %w", ErrNotFound, id, err)
	}
	if err != nil {
		return "", fmt.Errorf("rbd: dir_get_name %q: %w", id, err)
	}
	return decodeString("dir_get_name", out)
}

// Children lists the clone v2 children of the user snapshot named snap,
// as the image's header records them (children_list). Clone v1 children
// are recorded only in rbd_children of each child's pool and are not
// listed.
func (img *Image) Children(ctx context.Context, snap string) ([]ChildSpec, error) {
	for _, si := range img.Stat().Snapshots {
		if si.Name == snap && si.Namespace.Type == SnapNamespaceUser {
			return img.snapshotChildren(ctx, si.ID)
		}
	}
	return nil, fmt.Errorf("%w: snapshot %q of %s", ErrNotFound, snap, img.Stat().Name)
}
