package rbd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// Group snapshots (librbd's Group::snap_create, snap_remove): the group
// header records the snapshot (incomplete), every member's users are
// quiesced, every member gets a snapshot in the group snapshot namespace
// named GroupImageSnapName, the record is completed with the members'
// snapshot ids, and the users are released.

// GroupSnapshots lists the snapshots of group name (`rbd group snap ls`),
// in the order the group header keeps them.
func GroupSnapshots(ctx context.Context, io *rados.IOContext, group string) ([]GroupSnapshot, error) {
	s := newRadosStore(io)
	id, err := groupID(ctx, s, group)
	if err != nil {
		return nil, err
	}
	return groupSnapshots(ctx, s, id)
}

func groupSnapshots(ctx context.Context, s store, id string) ([]GroupSnapshot, error) {
	var out []GroupSnapshot
	start := ""
	for {
		b, err := s.call(ctx, GroupHeaderObjectName(id), clsRBD, "group_snap_list", groupSnapListArgs(start, groupPage))
		if errors.Is(err, syscall.ENOENT) {
			return nil, fmt.Errorf("%w: group id %q has no header", ErrNotFound, id)
		}
		if err != nil {
			return nil, fmt.Errorf("rbd: group id %q: group_snap_list: %w", id, err)
		}
		page, err := decodeGroupSnapList(b)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < groupPage {
			return out, nil
		}
		start = page[len(page)-1].ID
	}
}

// FindGroupSnapshot returns group name's snapshot called snap (ErrNotFound
// when there is none).
func FindGroupSnapshot(ctx context.Context, io *rados.IOContext, group, snap string) (GroupSnapshot, error) {
	all, err := GroupSnapshots(ctx, io, group)
	if err != nil {
		return GroupSnapshot{}, err
	}
	for _, gs := range all {
		if gs.Name == snap {
			return gs, nil
		}
	}
	return GroupSnapshot{}, fmt.Errorf("%w: snapshot %q of group %q", ErrNotFound, snap, group)
}

// CreateGroupSnapshot snapshots every member of group name at one point
// in time (`rbd group snap create`): the record first (incomplete), then
// the members' users are all quiesced (unless opts.SkipQuiesce), every
// member is snapshotted in the group namespace, the record is completed
// and the users are released. A failure undoes the member snapshots and
// the record. A snapshot name the group has already is ErrExists.
func CreateGroupSnapshot(ctx context.Context, io *rados.IOContext, group, snap string, opts *SnapshotOptions) (GroupSnapshot, error) {
	if snap == "" {
		return GroupSnapshot{}, fmt.Errorf("%w: empty snapshot name", ErrInvalid)
	}
	var o SnapshotOptions
	if opts != nil {
		o = *opts
	}
	s := newRadosStore(io)
	gid, err := groupID(ctx, s, group)
	if err != nil {
		return GroupSnapshot{}, err
	}
	members, err := groupImages(ctx, s, gid)
	if err != nil {
		return GroupSnapshot{}, err
	}
	gs := GroupSnapshot{ID: generateGroupID(s.clientID()), Name: snap, State: GroupSnapshotIncomplete}
	for _, m := range members {
		gs.Snaps = append(gs.Snaps, GroupImageSnapshot{PoolID: m.PoolID, ImageID: m.ImageID})
	}
	ghdr := GroupHeaderObjectName(gid)
	if err := s.write(ctx, ghdr, opCall(clsRBD, "group_snap_set", groupSnapSetArgs(gs))); err != nil {
		if errors.Is(err, syscall.EEXIST) {
			return GroupSnapshot{}, fmt.Errorf("%w: snapshot %q of group %q", ErrExists, snap, group)
		}
		return GroupSnapshot{}, fmt.Errorf("rbd: group %q: group_snap_set: %w", group, err)
	}
	cleanup := context.WithoutCancel(ctx)
	dropRecord := func() {
		_ = s.write(cleanup, ghdr, opCall(clsRBD, "group_snap_remove", stringArg(gs.ID)))
	}

	imgs, err := openMembers(ctx, s, gs.Snaps)
	defer closeAll(cleanup, imgs)
	if err != nil {
		dropRecord()
		return GroupSnapshot{}, err
	}
	release := func() {}
	if !o.SkipQuiesce {
		r, err := quiesceImages(ctx, imgs)
		if err != nil && !o.IgnoreQuiesceError {
			dropRecord()
			return GroupSnapshot{}, err
		}
		if r != nil {
			release = r
		}
	}
	defer release()

	ns := SnapshotNamespace{Type: SnapNamespaceGroup, GroupPool: s.poolID(), GroupID: gid, GroupSnapshotID: gs.ID}
	name := GroupImageSnapName(s.poolID(), gid, gs.ID)
	errs := make([]error, len(imgs))
	var wg sync.WaitGroup
	for i, img := range imgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gs.Snaps[i].SnapID, errs[i] = img.createSnapshot(ctx, name, ns)
		}()
	}
	wg.Wait()
	if err = errors.Join(errs...); err == nil {
		gs.State = GroupSnapshotComplete
		if err = s.write(ctx, ghdr, opCall(clsRBD, "group_snap_set", groupSnapSetArgs(gs))); err != nil {
			err = fmt.Errorf("rbd: group %q: group_snap_set: %w", group, err)
		}
	}
	if err != nil {
		release()
		for _, img := range imgs {
			if si, ok := img.groupSnapshot(ns); ok {
				_ = img.dropSnap(cleanup, si, false)
			}
		}
		dropRecord()
		return GroupSnapshot{}, err
	}
	return gs, nil
}

// openMembers opens the images of a group snapshot record by id; the
// images opened so far are returned with an error.
func openMembers(ctx context.Context, s store, snaps []GroupImageSnapshot) ([]*Image, error) {
	imgs := make([]*Image, 0, len(snaps))
	for _, m := range snaps {
		is, err := s.withPool(ctx, m.PoolID, s.namespace())
		if err != nil {
			return imgs, fmt.Errorf("rbd: group member %s in pool %d: %w", m.ImageID, m.PoolID, err)
		}
		img, err := open(ctx, is, "", m.ImageID, nil)
		if err != nil {
			return imgs, err
		}
		imgs = append(imgs, img)
	}
	return imgs, nil
}

func closeAll(ctx context.Context, imgs []*Image) {
	for _, img := range imgs {
		_ = img.Close(ctx)
	}
}

// groupSnapshot finds the image's snapshot in group namespace ns (by
// namespace, as librbd's get_group_snap_id: the name is librbd's choice).
func (img *Image) groupSnapshot(ns SnapshotNamespace) (SnapshotInfo, bool) {
	for _, si := range img.state().snaps {
		n := si.Namespace
		if n.Type == SnapNamespaceGroup && n.GroupPool == ns.GroupPool && n.GroupID == ns.GroupID && n.GroupSnapshotID == ns.GroupSnapshotID {
			return si, true
		}
	}
	return SnapshotInfo{}, false
}

// RemoveGroupSnapshot deletes group name's snapshot snap (`rbd group snap
// rm`): each member's snapshot of it, then the record. A member snapshot
// that still has clone children moves to the trash snapshot namespace
// (librbd does the same); one whose image is gone is passed over.
func RemoveGroupSnapshot(ctx context.Context, io *rados.IOContext, group, snap string) error {
	s := newRadosStore(io)
	gid, err := groupID(ctx, s, group)
	if err != nil {
		return err
	}
	all, err := groupSnapshots(ctx, s, gid)
	if err != nil {
		return err
	}
	for _, gs := range all {
		if gs.Name == snap {
			return removeGroupSnapshot(ctx, s, gid, gs)
		}
	}
	return fmt.Errorf("%w: snapshot %q of group %q", ErrNotFound, snap, group)
}

func removeGroupSnapshot(ctx context.Context, s store, gid string, gs GroupSnapshot) error {
	ns := SnapshotNamespace{Type: SnapNamespaceGroup, GroupPool: s.poolID(), GroupID: gid, GroupSnapshotID: gs.ID}
	for _, m := range gs.Snaps {
		is, err := s.withPool(ctx, m.PoolID, s.namespace())
		if errors.Is(err, ErrNotFound) || errors.Is(err, syscall.ENOENT) {
			continue // the pool is gone, and the image with it
		}
		if err != nil {
			return err
		}
		img, err := open(ctx, is, "", m.ImageID, nil)
		if errors.Is(err, ErrNotFound) || errors.Is(err, syscall.ENOENT) {
			continue
		}
		if err != nil {
			return err
		}
		if si, ok := img.groupSnapshot(ns); ok {
			err = img.dropSnap(ctx, si, false)
		}
		_ = img.Close(context.WithoutCancel(ctx))
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	err := s.write(ctx, GroupHeaderObjectName(gid), opCall(clsRBD, "group_snap_remove", stringArg(gs.ID)))
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("rbd: group id %q: group_snap_remove: %w", gid, err)
	}
	return nil
}
