package controllerserver

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/internal/journal"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// Volume group snapshots are RBD group snapshots.
//
// CreateVolumeGroupSnapshot journals the request name in the first
// volume's snapshot journal (kind "group", csi.imagename the RBD group
// csi-vgs-<uuid>), creates that group in the first volume's pool and
// namespace, adds the volumes' images, takes the group snapshot (named
// <uuid>) and takes the images out of the group again, so that a volume
// can be in the next group snapshot too; the group keeps its snapshot
// (`rbd group snap ls` shows it). Taking it asks every user of every
// image to quiesce (rbd.CreateGroupSnapshot): a node serving a volume
// holds and drains its I/O and freezes its filesystem, so the members
// are consistent with each other. Each member gets a journal entry of
// its own in its volume's pool (kind "group-member", csi.imagename the
// group-namespace snapshot on the source image), so its id serves like
// any snapshot's: a restore source, ListSnapshots.
//
// DeleteVolumeGroupSnapshot removes the group with its snapshot: a
// member snapshot that restored volumes still hang from moves to the
// trash namespace until the last of them goes, and a source image that
// waits in the trash (its volume deleted) and is left without snapshots
// is purged. A member cannot be deleted alone (FailedPrecondition).

// groupPrefix names the RBD group of a volume group snapshot.
const groupPrefix = "csi-vgs-"

// groupMemberName is the journal request name of a member's entry.
func groupMemberName(groupUUID, sourceID string) string {
	return "csi-vgs-member/" + groupUUID + "/" + sourceID
}

// GroupControllerGetCapabilities advertises CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT.
func (s *Server) GroupControllerGetCapabilities(context.Context, *csi.GroupControllerGetCapabilitiesRequest) (
	*csi.GroupControllerGetCapabilitiesResponse, error) {
	return &csi.GroupControllerGetCapabilitiesResponse{Capabilities: []*csi.GroupControllerServiceCapability{{
		Type: &csi.GroupControllerServiceCapability_Rpc{Rpc: &csi.GroupControllerServiceCapability_RPC{
			Type: csi.GroupControllerServiceCapability_RPC_CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT}}}}}, nil
}

// groupSource is one source volume of a group snapshot request.
type groupSource struct {
	id string
	se *session
	v  *volRef
}

// CreateVolumeGroupSnapshot takes an RBD group snapshot of the volumes.
func (s *Server) CreateVolumeGroupSnapshot(ctx context.Context, req *csi.CreateVolumeGroupSnapshotRequest) (
	*csi.CreateVolumeGroupSnapshotResponse, error) {
	name := req.GetName()
	if err := csiceph.Required("name", name); err != nil {
		return nil, err
	}
	ids := append([]string(nil), req.GetSourceVolumeIds()...)
	if len(ids) == 0 {
		return nil, status.Error(codes.InvalidArgument, "source_volume_ids is required")
	}
	sort.Strings(ids)
	for i := 1; i < len(ids); i++ {
		if ids[i] == ids[i-1] {
			return nil, status.Errorf(codes.InvalidArgument, "source volume %s is named twice", ids[i])
		}
	}
	sp, err := csiceph.ParseSnapshotParams(req.GetParameters())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	release, err := s.guard("group-snapshot-name/" + name)
	if err != nil {
		return nil, err
	}
	defer release()

	srcs := make([]groupSource, len(ids))
	for i, id := range ids {
		vid, err := csiceph.ParseVolumeID(id)
		if err != nil {
			return nil, status.Errorf(codes.NotFound, "source volume %s: %v", id, err)
		}
		se, v, err := s.openVolume(ctx, vid, req.GetSecrets())
		if err != nil {
			return nil, gone(err, "source volume "+id)
		}
		srcs[i] = groupSource{id: id, se: se, v: v}
	}
	first := srcs[0]
	for _, g := range srcs[1:] {
		if g.se.io.Conn().FSID() != first.se.io.Conn().FSID() {
			return nil, status.Errorf(codes.InvalidArgument, "source volumes %s and %s are on different clusters", first.id, g.id)
		}
		if g.v.io.Namespace() != first.v.io.Namespace() {
			return nil, status.Errorf(codes.InvalidArgument, "source volumes %s and %s are in different RADOS namespaces (%q, %q); an RBD group holds one namespace's images",
				first.id, g.id, first.v.io.Namespace(), g.v.io.Namespace())
		}
	}
	// Images are locked in the order of their volume ids (sorted above).
	for _, g := range srcs {
		unlock, err := s.lockImage(ctx, g.v.io, g.v.image)
		if err != nil {
			return nil, err
		}
		defer unlock()
	}

	se := first.se
	j := se.snapJournal()
	sources := strings.Join(ids, ",")
	_, e, err := j.Find(ctx, name)
	switch {
	case err == nil && e.Attrs[journal.KeySnapKind] != journal.SnapKindGroup:
		return nil, status.Errorf(codes.AlreadyExists, "name %q is a snapshot's, not a volume group snapshot's", name)
	case err == nil:
		if e.Attrs[journal.KeyGroupSources] != sources {
			return nil, status.Errorf(codes.AlreadyExists, "volume group snapshot %q exists with other source volumes", name)
		}
	case errors.Is(err, journal.ErrNotFound):
		uuid := journal.NewUUID()
		attrs := map[string]string{journal.KeySnapKind: journal.SnapKindGroup, journal.KeyImageName: groupPrefix + uuid,
			journal.KeyGroupSources: sources}
		if sp.VSNamespace != "" {
			attrs[journal.KeyOwner] = sp.VSNamespace
		}
		if e, err = j.Reserve(ctx, name, attrs, uuid); err != nil {
			s.cleanup(ctx, fmt.Sprintf("the journal entry of volume group snapshot %q (a retry of the request uses it)", name),
				func(ctx context.Context) error { return j.Release(ctx, name, uuid) })
			return nil, se.fail(err)
		}
	case errors.Is(err, journal.ErrConflict):
		return nil, status.Errorf(codes.Internal, "volume group snapshot %q: %v", name, err)
	default:
		return nil, se.fail(err)
	}
	gid := csiceph.SnapshotID{VolumeID: csiceph.VolumeID{ClusterID: se.cluster, PoolID: se.io.PoolID(), UUID: e.UUID}}.String()
	group := j.ImageName(e)
	gs, err := se.takeGroupSnapshot(ctx, group, e.UUID, srcs)
	if err != nil {
		// The entry stays: a retry finishes the snapshot, a
		// DeleteVolumeGroupSnapshot of the id (or of a retry's) removes
		// what was made.
		return nil, err
	}
	out := &csi.VolumeGroupSnapshot{GroupSnapshotId: gid, ReadyToUse: true}
	var members []string
	for _, g := range srcs {
		sn, err := g.se.memberEntry(ctx, g, e.UUID, gid, gs)
		if err != nil {
			return nil, err
		}
		members = append(members, sn.SnapshotId)
		out.Snapshots = append(out.Snapshots, sn)
		if out.CreationTime == nil || sn.CreationTime.AsTime().Before(out.CreationTime.AsTime()) {
			out.CreationTime = sn.CreationTime
		}
	}
	if m := strings.Join(members, ","); e.Attrs[journal.KeyGroupMembers] != m {
		if err := j.SetAttrs(ctx, e.UUID, map[string]string{journal.KeyGroupMembers: m}); err != nil {
			return nil, se.fail(err)
		}
	}
	return &csi.CreateVolumeGroupSnapshotResponse{GroupSnapshot: out}, nil
}

// takeGroupSnapshot makes group (if it is not there), takes its snapshot
// snap of the sources' images (if it is not there complete) and leaves
// the group without members. It returns the group snapshot's member
// snapshot name (the same on every image).
func (se *session) takeGroupSnapshot(ctx context.Context, group, snap string, srcs []groupSource) (string, error) {
	io := se.io
	if _, err := rbd.CreateGroup(ctx, io, group); err != nil && !errors.Is(err, rbd.ErrExists) {
		return "", se.fail(fmt.Errorf("creating group %s: %w", group, err))
	}
	groupID, err := rbd.GroupID(ctx, io, group)
	if err != nil {
		return "", se.fail(err)
	}
	gs, err := rbd.FindGroupSnapshot(ctx, io, group, snap)
	switch {
	case err == nil && gs.State == rbd.GroupSnapshotComplete:
		return rbd.GroupImageSnapName(io.PoolID(), groupID, gs.ID), nil
	case err == nil:
		// Cut short: take it again.
		if err := rbd.RemoveGroupSnapshot(ctx, io, group, snap); err != nil && !notFound(err) {
			return "", se.fail(err)
		}
	case !notFound(err):
		return "", se.fail(err)
	}
	// The images leave the group however this ends (a group snapshot
	// keeps its members' snapshots without them).
	defer func() {
		cctx := context.WithoutCancel(ctx)
		for _, g := range srcs {
			if err := rbd.RemoveGroupImage(cctx, io, group, g.v.io, g.v.image); err != nil && !notFound(err) {
				se.s.log.Error(err, "taking an image out of its volume group snapshot's group", "group", group, "image", g.v.image)
			}
		}
	}()
	for _, g := range srcs {
		err := rbd.AddGroupImage(ctx, io, group, g.v.io, g.v.image)
		if err == nil {
			continue
		}
		if !errors.Is(err, rbd.ErrExists) {
			return "", se.volumeErr(g.v, err)
		}
		in, gerr := imageGroup(ctx, g.v)
		if gerr != nil {
			return "", se.volumeErr(g.v, gerr)
		}
		if in.PoolID != io.PoolID() || in.GroupID != groupID {
			name, _ := rbd.GroupName(ctx, io, in.GroupID)
			return "", status.Errorf(codes.FailedPrecondition, "volume %s: image %s is in another RBD group (%q, id %s); an image is in one group at a time",
				g.id, g.v.image, name, in.GroupID)
		}
	}
	gs, err = rbd.CreateGroupSnapshot(ctx, io, group, snap, nil)
	if err != nil {
		if errors.Is(err, rbd.ErrQuiesce) {
			return "", status.Errorf(codes.Unavailable, "volume group snapshot: %v", err)
		}
		return "", se.fail(err)
	}
	return rbd.GroupImageSnapName(io.PoolID(), groupID, gs.ID), nil
}

// imageGroup is the RBD group v's image is in.
func imageGroup(ctx context.Context, v *volRef) (rbd.GroupSpec, error) {
	img, err := rbd.Open(ctx, v.io, v.image, &rbd.OpenOptions{ReadOnly: true})
	if err != nil {
		return rbd.GroupSpec{}, err
	}
	defer img.Close(context.WithoutCancel(ctx))
	return img.Group(ctx)
}

// memberEntry journals g's snapshot of the group snapshot (the member
// snapshot snap on g's image) in g's pool, unless it is there, and
// describes it.
func (se *session) memberEntry(ctx context.Context, g groupSource, groupUUID, groupID, snap string) (*csi.Snapshot, error) {
	j := se.snapJournal()
	name := groupMemberName(groupUUID, g.id)
	_, e, err := j.Find(ctx, name)
	if errors.Is(err, journal.ErrNotFound) {
		attrs := map[string]string{journal.KeySnapKind: journal.SnapKindGroupMember, journal.KeySource: g.v.image,
			journal.KeySourceVolume: g.id, journal.KeyImageName: snap, journal.KeyGroupSnapshot: groupID}
		if o := g.v.entry.Attrs[journal.KeyOwner]; o != "" {
			attrs[journal.KeyOwner] = o
		}
		e, err = j.Reserve(ctx, name, attrs, "")
	}
	if err != nil {
		return nil, se.fail(err)
	}
	r := &snapRef{id: csiceph.SnapshotID{VolumeID: csiceph.VolumeID{ClusterID: se.cluster, PoolID: se.io.PoolID(), UUID: e.UUID}},
		io: se.io, holder: g.v.image, snap: snap, native: true, entry: e}
	return se.csiSnapshot(ctx, r, g.id)
}

// groupRef is a volume group snapshot found from its id.
type groupRef struct {
	id      string
	se      *session
	entry   journal.Entry
	group   string
	members []string // snapshot ids
}

// openGroupSnapshot finds the volume group snapshot of id (errGone if it
// does not exist).
func (s *Server) openGroupSnapshot(ctx context.Context, id string, secrets map[string]string) (*groupRef, error) {
	sid, err := csiceph.ParseSnapshotID(id)
	if err != nil || sid.Legacy() {
		return nil, fmt.Errorf("%w: %q is not a volume group snapshot id", errGone, id)
	}
	g := &groupRef{id: id}
	g.se, err = s.locate(ctx, sid.VolumeID, secrets, func(se *session) error {
		j := se.snapJournal()
		e, err := j.Entry(ctx, sid.UUID)
		if err != nil {
			return err
		}
		if e.Attrs[journal.KeySnapKind] != journal.SnapKindGroup {
			return status.Errorf(codes.InvalidArgument, "%s is not a volume group snapshot", id)
		}
		g.entry, g.group = e, j.ImageName(e)
		if m := e.Attrs[journal.KeyGroupMembers]; m != "" {
			g.members = strings.Split(m, ",")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// checkMembers refuses snapshot ids a request names that are not the
// group snapshot's members.
func (g *groupRef) checkMembers(ids []string) error {
	known := make(map[string]bool, len(g.members))
	for _, m := range g.members {
		known[m] = true
	}
	for _, id := range ids {
		if !known[id] {
			return status.Errorf(codes.InvalidArgument, "snapshot %s is not a member of volume group snapshot %s", id, g.id)
		}
	}
	return nil
}

// GetVolumeGroupSnapshot describes a volume group snapshot.
func (s *Server) GetVolumeGroupSnapshot(ctx context.Context, req *csi.GetVolumeGroupSnapshotRequest) (
	*csi.GetVolumeGroupSnapshotResponse, error) {
	if err := csiceph.Required("group_snapshot_id", req.GetGroupSnapshotId()); err != nil {
		return nil, err
	}
	g, err := s.openGroupSnapshot(ctx, req.GetGroupSnapshotId(), req.GetSecrets())
	if err != nil {
		return nil, gone(err, "volume group snapshot "+req.GetGroupSnapshotId())
	}
	if err := g.checkMembers(req.GetSnapshotIds()); err != nil {
		return nil, err
	}
	if _, err := rbd.FindGroupSnapshot(ctx, g.se.io, g.group, g.entry.UUID); err != nil {
		if notFound(err) {
			return nil, status.Errorf(codes.NotFound, "volume group snapshot %s: RBD group snapshot %s@%s does not exist", g.id, g.group, g.entry.UUID)
		}
		return nil, g.se.fail(err)
	}
	if len(g.members) == 0 {
		return nil, status.Errorf(codes.NotFound, "volume group snapshot %s is not complete (its CreateVolumeGroupSnapshot did not finish)", g.id)
	}
	out := &csi.VolumeGroupSnapshot{GroupSnapshotId: g.id, ReadyToUse: true}
	for _, m := range g.members {
		sid, err := csiceph.ParseSnapshotID(m)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "volume group snapshot %s: member %q: %v", g.id, m, err)
		}
		se, r, err := s.openSnapshot(ctx, sid, req.GetSecrets())
		if err != nil {
			return nil, gone(err, "member snapshot "+m)
		}
		sn, err := se.csiSnapshot(ctx, r, r.entry.Attrs[journal.KeySourceVolume])
		if err != nil {
			return nil, err
		}
		out.Snapshots = append(out.Snapshots, sn)
		if out.CreationTime == nil || sn.CreationTime.AsTime().Before(out.CreationTime.AsTime()) {
			out.CreationTime = sn.CreationTime
		}
	}
	if out.CreationTime == nil {
		out.CreationTime = timestamppb.Now()
	}
	return &csi.GetVolumeGroupSnapshotResponse{GroupSnapshot: out}, nil
}

// DeleteVolumeGroupSnapshot removes a volume group snapshot with its
// members; unknown ids are success.
func (s *Server) DeleteVolumeGroupSnapshot(ctx context.Context, req *csi.DeleteVolumeGroupSnapshotRequest) (
	*csi.DeleteVolumeGroupSnapshotResponse, error) {
	id := req.GetGroupSnapshotId()
	if err := csiceph.Required("group_snapshot_id", id); err != nil {
		return nil, err
	}
	release, err := s.guard("group-snapshot-id/" + id)
	if err != nil {
		return nil, err
	}
	defer release()
	g, err := s.openGroupSnapshot(ctx, id, req.GetSecrets())
	if errors.Is(err, errGone) {
		return &csi.DeleteVolumeGroupSnapshotResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := g.checkMembers(req.GetSnapshotIds()); err != nil {
		return nil, err
	}
	// The members' entries, found from the record or (a create cut short
	// before it wrote the record) from the source volumes.
	type member struct {
		se *session
		r  *snapRef
	}
	var members []member
	names := g.members
	if len(names) == 0 {
		for _, src := range strings.Split(g.entry.Attrs[journal.KeyGroupSources], ",") {
			vid, err := csiceph.ParseVolumeID(src)
			if err != nil {
				continue
			}
			se, _, err := s.openVolume(ctx, vid, req.GetSecrets())
			if err != nil {
				continue
			}
			dv, err := se.snapJournal().Lookup(ctx, groupMemberName(g.entry.UUID, src))
			if err != nil || dv.UUID == "" {
				continue
			}
			names = append(names, csiceph.SnapshotID{VolumeID: csiceph.VolumeID{ClusterID: se.cluster, PoolID: se.io.PoolID(), UUID: dv.UUID}}.String())
		}
	}
	for _, m := range names {
		sid, err := csiceph.ParseSnapshotID(m)
		if err != nil {
			continue
		}
		se, r, err := s.openSnapshot(ctx, sid, req.GetSecrets())
		if errors.Is(err, errGone) {
			continue
		}
		if err != nil {
			return nil, err
		}
		members = append(members, member{se, r})
	}
	sort.Slice(members, func(a, b int) bool { return members[a].r.id.String() < members[b].r.id.String() })
	for _, m := range members {
		unlock, err := s.lockImage(ctx, m.r.io, m.r.holder)
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	if err := rbd.RemoveGroup(ctx, g.se.io, g.group); err != nil && !notFound(err) {
		return nil, g.se.fail(fmt.Errorf("removing group %s: %w", g.group, err))
	}
	for _, m := range members {
		// The member snapshot went with the group; a source image in
		// the trash left without snapshots goes now.
		if err := m.se.deleteSnapshot(ctx, m.r.holder, m.r.snap); err != nil {
			return nil, m.se.fail(err)
		}
		if err := m.se.snapJournal().Release(ctx, m.r.entry.Name(), m.r.entry.UUID); err != nil {
			return nil, m.se.fail(err)
		}
	}
	if err := g.se.snapJournal().Release(ctx, g.entry.Name(), g.entry.UUID); err != nil {
		return nil, g.se.fail(err)
	}
	return &csi.DeleteVolumeGroupSnapshotResponse{}, nil
}
