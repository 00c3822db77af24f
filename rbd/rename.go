package rbd

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// Rename renames an image in io's pool and namespace (librbd's
// RenameRequest for format 2): rbd_id.<dst> is created exclusively with
// the image id, the directory entry is renamed (dir_rename_image, which
// fails if dst is listed), rbd_id.<src> is removed, and open clients are
// told to refresh. The image id, header and data do not change.
func Rename(ctx context.Context, io *rados.IOContext, src, dst string) error {
	return rename(ctx, newRadosStore(io), src, dst)
}

func rename(ctx context.Context, s store, src, dst string) error {
	if src == "" || dst == "" {
		return fmt.Errorf("%w: empty image name", ErrInvalid)
	}
	if src == dst {
		return fmt.Errorf("%w: image %q", ErrExists, dst)
	}
	out, err := s.call(ctx, IDObjectName(src), clsRBD, "get_id", nil)
	if errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("%w: image %q: %w", ErrNotFound, src, err)
	}
	if err != nil {
		return fmt.Errorf("rbd: rename %q: get_id: %w", src, err)
	}
	id, err := decodeString("get_id", out)
	if err != nil {
		return err
	}
	err = s.write(ctx, IDObjectName(dst), opSetID(id))
	if errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("%w: image %q", ErrExists, dst)
	}
	if err != nil {
		return fmt.Errorf("rbd: rename %q: rbd_id.%s: %w", src, dst, err)
	}
	if err := s.write(ctx, DirectoryObject, opCall(clsRBD, "dir_rename_image", dirRenameArgs(src, dst, id))); err != nil {
		_ = s.remove(context.WithoutCancel(ctx), IDObjectName(dst))
		if errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("%w: image %q (directory)", ErrExists, dst)
		}
		return fmt.Errorf("rbd: rename %q: dir_rename_image: %w", src, err)
	}
	if err := s.remove(ctx, IDObjectName(src)); err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("rbd: rename %q: removing rbd_id.%s: %w", src, src, err)
	}
	_, _ = s.notify(ctx, HeaderObjectName(id), notifyPayload(notifyHeaderUpdate, 0, 0))
	return nil
}
