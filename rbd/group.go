package rbd

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// Consistency groups (librbd's api/Group.cc): a group is a name in the
// pool's rbd_group_directory and a header object listing its images and
// its snapshots; each member image names its group in its header
// (cls_group.go). An image belongs to at most one group, in the group's
// RADOS namespace (it may be in another pool). Group snapshots are in
// group_snapshot.go.

// groupPage is how many entries one listing call asks for (librbd's
// max_read).
const groupPage = 1024

// generateGroupID returns a new group (or group snapshot) id as librbd's
// generate_uuid builds it: the client's global id in hex followed by a
// random 32-bit number in hex.
func generateGroupID(globalID uint64) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return strconv.FormatUint(globalID, 16) + strconv.FormatUint(uint64(binary.LittleEndian.Uint32(b[:])), 16)
}

// CreateGroup makes a group called name in io's pool and namespace
// (`rbd group create`) and returns its id. An existing name is ErrExists.
func CreateGroup(ctx context.Context, io *rados.IOContext, name string) (string, error) {
	return createGroup(ctx, newRadosStore(io), name)
}

func createGroup(ctx context.Context, s store, name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: empty group name", ErrInvalid)
	}
	id := generateGroupID(s.clientID())
	if err := s.write(ctx, GroupDirectoryObject, opCall(clsRBD, "group_dir_add", dirAddArgs(name, id))); err != nil {
		if errors.Is(err, syscall.EEXIST) {
			return "", fmt.Errorf("%w: group %q", ErrExists, name)
		}
		return "", fmt.Errorf("rbd: group create %q: group_dir_add: %w", name, err)
	}
	w := rados.NewWriteOp()
	w.Create(true)
	if err := s.write(ctx, GroupHeaderObjectName(id), w); err != nil {
		_ = s.write(context.WithoutCancel(ctx), GroupDirectoryObject, opCall(clsRBD, "group_dir_remove", dirAddArgs(name, id)))
		return "", fmt.Errorf("rbd: group create %q: header: %w", name, err)
	}
	return id, nil
}

// ListGroups returns the groups of io's pool and namespace by name, with
// their ids (`rbd group ls`).
func ListGroups(ctx context.Context, io *rados.IOContext) (map[string]string, error) {
	return listGroups(ctx, newRadosStore(io))
}

func listGroups(ctx context.Context, s store) (map[string]string, error) {
	out := map[string]string{}
	start := ""
	for {
		b, err := s.call(ctx, GroupDirectoryObject, clsRBD, "group_dir_list", dirListArgs(start, groupPage))
		if errors.Is(err, syscall.ENOENT) {
			return out, nil // no group ever made
		}
		if err != nil {
			return nil, fmt.Errorf("rbd: group_dir_list: %w", err)
		}
		page, err := decodeDirList(b)
		if err != nil {
			return nil, err
		}
		for k, v := range page {
			out[k] = v
			start = max(start, k)
		}
		if len(page) < groupPage {
			return out, nil
		}
	}
}

// GroupID returns the id of group name (ErrNotFound when there is none).
func GroupID(ctx context.Context, io *rados.IOContext, name string) (string, error) {
	return groupID(ctx, newRadosStore(io), name)
}

func groupID(ctx context.Context, s store, name string) (string, error) {
	out, err := s.call(ctx, GroupDirectoryObject, clsRBD, "dir_get_id", stringArg(name))
	if errors.Is(err, syscall.ENOENT) {
		return "", fmt.Errorf("%w: group %q", ErrNotFound, name)
	}
	if err != nil {
		return "", fmt.Errorf("rbd: group %q: dir_get_id: %w", name, err)
	}
	return decodeString("dir_get_id", out)
}

// GroupName returns the name of the group with id (ErrNotFound when there
// is none).
func GroupName(ctx context.Context, io *rados.IOContext, id string) (string, error) {
	s := newRadosStore(io)
	out, err := s.call(ctx, GroupDirectoryObject, clsRBD, "dir_get_name", stringArg(id))
	if errors.Is(err, syscall.ENOENT) {
		return "", fmt.Errorf("%w: group id %q", ErrNotFound, id)
	}
	if err != nil {
		return "", fmt.Errorf("rbd: group id %q: dir_get_name: %w", id, err)
	}
	return decodeString("dir_get_name", out)
}

// RemoveGroup deletes group name as `rbd group rm` does: its snapshots
// first (each member's snapshot of them; one that still has clone
// children moves to the trash snapshot namespace), then every image's
// link, the header and the directory entry. A missing group is
// ErrNotFound.
func RemoveGroup(ctx context.Context, io *rados.IOContext, name string) error {
	s := newRadosStore(io)
	id, err := groupID(ctx, s, name)
	if err != nil {
		return err
	}
	snaps, err := groupSnapshots(ctx, s, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	for _, gs := range snaps {
		if err := removeGroupSnapshot(ctx, s, id, gs); err != nil {
			return err
		}
	}
	images, err := groupImages(ctx, s, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	for _, gi := range images {
		is, err := s.withPool(ctx, gi.PoolID, s.namespace())
		if err != nil {
			return err
		}
		if err := unlinkGroupImage(ctx, s, id, is, gi.ImageID); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	if err := s.remove(ctx, GroupHeaderObjectName(id)); err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("rbd: group rm %q: header: %w", name, err)
	}
	err = s.write(ctx, GroupDirectoryObject, opCall(clsRBD, "group_dir_remove", dirAddArgs(name, id)))
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("rbd: group rm %q: group_dir_remove: %w", name, err)
	}
	return nil
}

// GroupImages lists the members of group name (`rbd group image list`):
// pool, image id and link state.
func GroupImages(ctx context.Context, io *rados.IOContext, name string) ([]GroupImage, error) {
	s := newRadosStore(io)
	id, err := groupID(ctx, s, name)
	if err != nil {
		return nil, err
	}
	return groupImages(ctx, s, id)
}

func groupImages(ctx context.Context, s store, id string) ([]GroupImage, error) {
	var out []GroupImage
	startPool, startImage := int64(-1), ""
	for {
		b, err := s.call(ctx, GroupHeaderObjectName(id), clsRBD, "group_image_list", groupImageListArgs(startPool, startImage, groupPage))
		if errors.Is(err, syscall.ENOENT) {
			return nil, fmt.Errorf("%w: group id %q has no header", ErrNotFound, id)
		}
		if err != nil {
			return nil, fmt.Errorf("rbd: group id %q: group_image_list: %w", id, err)
		}
		page, err := decodeGroupImageList(b)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < groupPage {
			return out, nil
		}
		last := page[len(page)-1]
		startPool, startImage = last.PoolID, last.ImageID
	}
}

// AddGroupImage adds image (in imageIO's pool; the namespace must be the
// group's) to group (in groupIO), as `rbd group image add` does: the
// group records the image as incomplete, the image's header names the
// group, the image's watchers are told, and the link is marked attached.
// An image in a group already is ErrExists.
func AddGroupImage(ctx context.Context, groupIO *rados.IOContext, group string, imageIO *rados.IOContext, image string) error {
	if groupIO.Namespace() != imageIO.Namespace() {
		return fmt.Errorf("%w: group %q and image %q are in different namespaces", ErrInvalid, group, image)
	}
	gs, is := newRadosStore(groupIO), newRadosStore(imageIO)
	id, err := groupID(ctx, gs, group)
	if err != nil {
		return err
	}
	imageID, err := imageIDOf(ctx, is, image)
	if err != nil {
		return err
	}
	return linkGroupImage(ctx, gs, id, is, imageID)
}

func linkGroupImage(ctx context.Context, gs store, groupID string, is store, imageID string) error {
	ghdr := GroupHeaderObjectName(groupID)
	gi := GroupImage{PoolID: is.poolID(), ImageID: imageID, State: GroupImageIncomplete}
	if err := gs.write(ctx, ghdr, opCall(clsRBD, "group_image_set", groupImageSetArgs(gi))); err != nil {
		return fmt.Errorf("rbd: group id %q: group_image_set: %w", groupID, err)
	}
	spec := GroupSpec{PoolID: gs.poolID(), GroupID: groupID}
	if err := is.write(ctx, HeaderObjectName(imageID), opCall(clsRBD, "image_group_add", groupSpecArg(spec))); err != nil {
		_ = gs.write(context.WithoutCancel(ctx), ghdr, opCall(clsRBD, "group_image_remove", groupImageRemoveArgs(gi.PoolID, imageID)))
		if errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("%w: image id %q is in a group already", ErrExists, imageID)
		}
		return fmt.Errorf("rbd: image id %q: image_group_add: %w", imageID, err)
	}
	_, _ = is.notify(ctx, HeaderObjectName(imageID), notifyPayload(notifyHeaderUpdate, 0, 0))
	gi.State = GroupImageAttached
	if err := gs.write(ctx, ghdr, opCall(clsRBD, "group_image_set", groupImageSetArgs(gi))); err != nil {
		return fmt.Errorf("rbd: group id %q: group_image_set: %w", groupID, err)
	}
	return nil
}

// RemoveGroupImage takes image out of group (`rbd group image rm`). Its
// snapshots of the group's snapshots stay, as with librbd.
func RemoveGroupImage(ctx context.Context, groupIO *rados.IOContext, group string, imageIO *rados.IOContext, image string) error {
	if groupIO.Namespace() != imageIO.Namespace() {
		return fmt.Errorf("%w: group %q and image %q are in different namespaces", ErrInvalid, group, image)
	}
	is := newRadosStore(imageIO)
	imageID, err := imageIDOf(ctx, is, image)
	if err != nil {
		return err
	}
	return RemoveGroupImageByID(ctx, groupIO, group, imageIO, imageID)
}

// RemoveGroupImageByID is RemoveGroupImage for an image given by id (one
// in the trash has no name).
func RemoveGroupImageByID(ctx context.Context, groupIO *rados.IOContext, group string, imageIO *rados.IOContext, imageID string) error {
	gs := newRadosStore(groupIO)
	id, err := groupID(ctx, gs, group)
	if err != nil {
		return err
	}
	return unlinkGroupImage(ctx, gs, id, newRadosStore(imageIO), imageID)
}

func unlinkGroupImage(ctx context.Context, gs store, groupID string, is store, imageID string) error {
	ghdr := GroupHeaderObjectName(groupID)
	gi := GroupImage{PoolID: is.poolID(), ImageID: imageID, State: GroupImageIncomplete}
	if err := gs.write(ctx, ghdr, opCall(clsRBD, "group_image_set", groupImageSetArgs(gi))); err != nil {
		return fmt.Errorf("rbd: group id %q: group_image_set: %w", groupID, err)
	}
	spec := GroupSpec{PoolID: gs.poolID(), GroupID: groupID}
	err := is.write(ctx, HeaderObjectName(imageID), opCall(clsRBD, "image_group_remove", groupSpecArg(spec)))
	switch {
	case err == nil:
		_, _ = is.notify(ctx, HeaderObjectName(imageID), notifyPayload(notifyHeaderUpdate, 0, 0))
	case !errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("rbd: image id %q: image_group_remove: %w", imageID, err)
	}
	if err := gs.write(ctx, ghdr, opCall(clsRBD, "group_image_remove", groupImageRemoveArgs(gi.PoolID, imageID))); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("%w: image id %q in group id %q", ErrNotFound, imageID, groupID)
		}
		return fmt.Errorf("rbd: group id %q: group_image_remove: %w", groupID, err)
	}
	return nil
}

// imageIDOf reads the id of the image called name.
func imageIDOf(ctx context.Context, s store, name string) (string, error) {
	out, err := s.call(ctx, IDObjectName(name), clsRBD, "get_id", nil)
	if errors.Is(err, syscall.ENOENT) {
		return "", fmt.Errorf("%w: image %q", ErrNotFound, name)
	}
	if err != nil {
		return "", fmt.Errorf("rbd: image %q: get_id: %w", name, err)
	}
	return decodeString("get_id", out)
}

// Group returns the group the image belongs to (image_group_get); an
// image in none has a spec that is not Valid.
func (img *Image) Group(ctx context.Context) (GroupSpec, error) {
	out, err := img.s.call(ctx, img.hdr(), clsRBD, "image_group_get", nil)
	if err != nil {
		return GroupSpec{PoolID: -1}, fmt.Errorf("rbd: %s: image_group_get: %w", img.name, err)
	}
	return decodeImageGroupGet(out)
}
