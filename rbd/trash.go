package rbd

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// TrashMove moves the image called name into the pool's trash
// (trash::MoveRequest): trash_add records it in rbd_trash under its id,
// then its directory entry and rbd_id.<name> go, so the name is free
// again. The image must not be open elsewhere. It returns the image id.
// delay is the deferment: `rbd trash rm` refuses the image before it ends
// unless forced.
func TrashMove(ctx context.Context, io *rados.IOContext, name string, delay time.Duration) (string, error) {
	s := newRadosStore(io)
	img, err := open(ctx, s, name, "", &OpenOptions{ReadOnly: true, NoWatch: true})
	if err != nil {
		return "", err
	}
	if ws, err := s.listWatchers(ctx, img.hdr()); err != nil {
		return "", fmt.Errorf("rbd: trash move %q: listing watchers: %w", name, err)
	} else if n := len(ws); n > 0 {
		return "", fmt.Errorf("%w: image %q has %d watchers", ErrBusy, name, n)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	spec := TrashSpec{Source: TrashSourceUser, Name: name, DeletionTime: now, DefermentEnd: now.Add(delay)}
	if err := s.write(ctx, TrashObject, opCall(clsRBD, "trash_add", trashAddArgs(img.id, spec))); err != nil {
		return "", fmt.Errorf("rbd: trash move %q: trash_add: %w", name, err)
	}
	if err := s.write(ctx, DirectoryObject, opCall(clsRBD, "dir_remove_image", dirAddArgs(name, img.id))); err != nil &&
		!errors.Is(err, syscall.ENOENT) {
		return "", fmt.Errorf("rbd: trash move %q: directory: %w", name, err)
	}
	if err := s.remove(ctx, IDObjectName(name)); err != nil && !errors.Is(err, syscall.ENOENT) {
		return "", fmt.Errorf("rbd: trash move %q: id object: %w", name, err)
	}
	return img.id, nil
}

// TrashList returns the trash entries by image id.
func TrashList(ctx context.Context, io *rados.IOContext) (map[string]TrashSpec, error) {
	s := newRadosStore(io)
	all := map[string]TrashSpec{}
	start := ""
	for {
		out, err := s.call(ctx, TrashObject, clsRBD, "trash_list", trashListArgs(start, 1024))
		if errors.Is(err, syscall.ENOENT) {
			return all, nil
		}
		if err != nil {
			return nil, fmt.Errorf("rbd: trash_list: %w", err)
		}
		m, err := decodeTrashList(out)
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			all[k] = v
			start = max(start, k)
		}
		if len(m) < 1024 {
			return all, nil
		}
	}
}

// TrashRemove deletes a trashed image by id: its data, header and object
// maps as Remove does, then its rbd_trash entry.
func TrashRemove(ctx context.Context, io *rados.IOContext, id string) error {
	s := newRadosStore(io)
	out, err := s.call(ctx, TrashObject, clsRBD, "trash_get", stringArg(id))
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("%w: trash entry %q: %w", ErrNotFound, id, err)
		}
		return fmt.Errorf("rbd: trash_get %q: %w", id, err)
	}
	spec, err := DecodeTrashSpec(out)
	if err != nil {
		return err
	}
	// REMOVING keeps a concurrent restore away (librbd's
	// trash::RemoveRequest); an entry already REMOVING is a removal that
	// was interrupted, which we finish.
	switch spec.State {
	case TrashStateNormal:
		if err := setTrashState(ctx, s, id, TrashStateRemoving, TrashStateNormal); err != nil {
			return err
		}
	case TrashStateRemoving:
	default:
		return fmt.Errorf("%w: trash entry %q is being moved or restored (state %d)", ErrBusy, id, spec.State)
	}
	if err := remove(ctx, s, "", id); err != nil && !errors.Is(err, ErrNotFound) {
		// Leave the entry restorable, as librbd does.
		_ = setTrashState(context.WithoutCancel(ctx), s, id, TrashStateNormal, TrashStateRemoving)
		return err
	}
	if err := s.write(ctx, TrashObject, opCall(clsRBD, "trash_remove", stringArg(id))); err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("rbd: trash_remove %q: %w", id, err)
	}
	return nil
}

// TrashRestore brings a trashed image back under name, or under the name
// it had when newName is empty (librbd's trash restore): rbd_id.<name> is
// created exclusively with the id, the directory entry added, then the
// rbd_trash entry removed. Only images the user trashed are restored
// (ErrInvalid for mirroring, migration or in-progress removal). It
// returns the name.
func TrashRestore(ctx context.Context, io *rados.IOContext, id, newName string) (string, error) {
	s := newRadosStore(io)
	out, err := s.call(ctx, TrashObject, clsRBD, "trash_get", stringArg(id))
	if errors.Is(err, syscall.ENOENT) {
		return "", fmt.Errorf("%w: trash entry %q: %w", ErrNotFound, id, err)
	}
	if err != nil {
		return "", fmt.Errorf("rbd: trash_get %q: %w", id, err)
	}
	spec, err := DecodeTrashSpec(out)
	if err != nil {
		return "", err
	}
	if spec.Source != TrashSourceUser && spec.Source != TrashSourceUserParent {
		return "", fmt.Errorf("%w: trash entry %q has source %d", ErrInvalid, id, spec.Source)
	}
	if spec.State != TrashStateNormal {
		return "", fmt.Errorf("%w: trash entry %q is being moved, removed or restored (state %d)", ErrBusy, id, spec.State)
	}
	name := newName
	if name == "" {
		name = spec.Name
	}
	// RESTORING keeps a concurrent trash remove or purge away while the
	// image gets its name back (librbd's api::Trash::restore); any failure
	// sets it back to NORMAL.
	if err := setTrashState(ctx, s, id, TrashStateRestoring, TrashStateNormal); err != nil {
		return "", err
	}
	undoState := func() {
		_ = setTrashState(context.WithoutCancel(ctx), s, id, TrashStateNormal, TrashStateRestoring)
	}
	err = s.write(ctx, IDObjectName(name), opSetID(id))
	if errors.Is(err, syscall.EEXIST) {
		undoState()
		return "", fmt.Errorf("%w: image %q", ErrExists, name)
	}
	if err != nil {
		undoState()
		return "", fmt.Errorf("rbd: trash restore %q: rbd_id: %w", id, err)
	}
	if err := s.write(ctx, DirectoryObject, opCall(clsRBD, "dir_add_image", dirAddArgs(name, id))); err != nil {
		_ = s.remove(context.WithoutCancel(ctx), IDObjectName(name))
		undoState()
		if errors.Is(err, syscall.EEXIST) {
			return "", fmt.Errorf("%w: image %q (directory)", ErrExists, name)
		}
		return "", fmt.Errorf("rbd: trash restore %q: directory: %w", id, err)
	}
	if err := s.write(ctx, TrashObject, opCall(clsRBD, "trash_remove", stringArg(id))); err != nil && !errors.Is(err, syscall.ENOENT) {
		return "", fmt.Errorf("rbd: trash restore %q: trash_remove: %w", id, err)
	}
	return name, nil
}

// TrashPurge removes the user-trashed images whose deferment ended by now
// (`rbd trash purge`). Images that cannot go yet (snapshots, watchers)
// stay; their errors are joined. It returns the removed ids.
func TrashPurge(ctx context.Context, io *rados.IOContext, now time.Time) ([]string, error) {
	all, err := TrashList(ctx, io)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, id := range sortedKeys(all) {
		t := all[id]
		if t.Source != TrashSourceUser || t.DefermentEnd.After(now) {
			continue
		}
		if err := TrashRemove(ctx, io, id); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", id, t.Name, err))
			continue
		}
		removed = append(removed, id)
	}
	return removed, errors.Join(errs...)
}

// setTrashState moves trash entry id from state expect to state to
// (cls_rbd trash_state_set). An entry in another state is being worked on
// by someone else: ErrBusy. A cls_rbd without the method (pre-Mimic) has
// no states to keep, so that is not an error.
func setTrashState(ctx context.Context, s store, id string, to, expect TrashState) error {
	e := enc()
	e.String(id)
	e.U8(uint8(to))
	e.U8(uint8(expect))
	err := s.write(ctx, TrashObject, opCall(clsRBD, "trash_state_set", e.B))
	switch {
	case err == nil, errors.Is(err, syscall.EOPNOTSUPP):
		return nil
	case errors.Is(err, syscall.ESTALE), errors.Is(err, syscall.EBUSY):
		return fmt.Errorf("%w: trash entry %q is not in state %d: %w", ErrBusy, id, expect, err)
	case errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("%w: trash entry %q: %w", ErrNotFound, id, err)
	}
	return fmt.Errorf("rbd: trash_state_set %q: %w", id, err)
}
