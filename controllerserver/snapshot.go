package controllerserver

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/internal/journal"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// Snapshots are native RBD snapshots of the source volume's image, named
// <snapshotNamePrefix><uuid> and journalled as ceph-csi journals its own:
// csi.snaps.<instance> maps the request name to the uuid, and
// csi.snap.<uuid> holds csi.snapname, csi.imagename (here the RBD
// snapshot's name), csi.source (the source image) and csi-gorbd's marker
// csi.gorbd.snapshot=native with the source volume's id. ceph-csi's own
// snapshots (an image csi.imagename carrying a snapshot of that name) are
// served as restore sources and deleted with their image.

// CreateSnapshot takes a native RBD snapshot of the source image.
func (s *Server) CreateSnapshot(ctx context.Context, req *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	name := req.GetName()
	if err := csiceph.Required("name", name, "source_volume_id", req.GetSourceVolumeId()); err != nil {
		return nil, err
	}
	sp, err := csiceph.ParseSnapshotParams(req.GetParameters())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	src, err := csiceph.ParseVolumeID(req.GetSourceVolumeId())
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "source volume: %v", err)
	}
	se, v, done, err := s.begin(ctx, "snapshot-name/"+name, src, req.GetSecrets(), true)
	if err != nil {
		return nil, gone(err, "source volume "+src.String())
	}
	defer done()
	img, err := rbd.Open(ctx, v.io, v.image, nil)
	if err != nil {
		return nil, se.volumeErr(v, err)
	}
	defer s.closeImage(ctx, img, v.image)

	j := se.snapJournal()
	dv, e, err := j.Find(ctx, name)
	switch {
	case err == nil && dv.Legacy != nil:
		return se.legacySnapshot(ctx, img, name, src, dv.Legacy)
	case err == nil && (e.Attrs[journal.KeySnapKind] == journal.SnapKindGroup || e.Attrs[journal.KeySnapKind] == journal.SnapKindGroupMember):
		return nil, status.Errorf(codes.AlreadyExists, "snapshot name %q is a volume group snapshot's", name)
	case err == nil && e.Attrs[journal.KeySnapKind] != journal.SnapKindNative:
		// ceph-csi took it before the takeover.
		if e.Attrs[journal.KeySource] != v.image {
			return nil, status.Errorf(codes.AlreadyExists, "snapshot %q exists for another volume", name)
		}
		_, r, err := s.openSnapshot(ctx, csiceph.SnapshotID{VolumeID: csiceph.VolumeID{ClusterID: se.cluster, PoolID: v.io.PoolID(), UUID: e.UUID}}, req.GetSecrets())
		if err != nil {
			return nil, gone(err, "snapshot "+name)
		}
		sn, err := se.csiSnapshot(ctx, r, req.GetSourceVolumeId())
		if err != nil {
			return nil, err
		}
		return &csi.CreateSnapshotResponse{Snapshot: sn}, nil
	case err == nil:
		if e.Attrs[journal.KeySource] != v.image {
			return nil, status.Errorf(codes.AlreadyExists, "snapshot %q exists for another volume", name)
		}
	case errors.Is(err, journal.ErrNotFound):
		attrs := map[string]string{
			journal.KeySource: v.image, journal.KeySnapKind: journal.SnapKindNative, journal.KeySourceVolume: src.String(),
		}
		if o := v.entry.Attrs[journal.KeyOwner]; o != "" {
			attrs[journal.KeyOwner] = o
		} else if sp.VSNamespace != "" {
			attrs[journal.KeyOwner] = sp.VSNamespace
		}
		// An encrypted source's KMS, as ceph-csi records it for its
		// snapshots (a restore reads the passphrase through it).
		for _, k := range []string{journal.KeyEncryptKMS, journal.KeyEncryptionType} {
			if val := v.entry.Attrs[k]; val != "" {
				attrs[k] = val
			}
		}
		uuid := journal.NewUUID()
		attrs[journal.KeyImageName] = sp.Prefix + uuid
		if e, err = j.Reserve(ctx, name, attrs, uuid); err != nil {
			s.cleanup(ctx, fmt.Sprintf("the journal entry of snapshot %q (a retry of the request uses it)", name),
				func(ctx context.Context) error { return j.Release(ctx, name, uuid) })
			return nil, se.fail(err)
		}
		dv.UUID = uuid
	case errors.Is(err, journal.ErrConflict):
		return nil, status.Errorf(codes.Internal, "snapshot %q: %v", name, err)
	default:
		return nil, se.fail(err)
	}
	snap := j.ImageName(e)
	if !hasSnapshot(img, snap) {
		if _, err := img.CreateSnapshot(ctx, snap); err != nil {
			s.cleanup(ctx, fmt.Sprintf("snapshot %s@%s and the journal entry of snapshot %q (a retry of the request finishes them)",
				v.image, snap, name),
				func(ctx context.Context) error {
					if err := se.undoSnapshot(ctx, img, snap); err != nil {
						return err
					}
					return j.Release(ctx, name, e.UUID)
				})
			return nil, se.fail(err)
		}
	}
	r := &snapRef{id: csiceph.SnapshotID{VolumeID: csiceph.VolumeID{ClusterID: se.cluster, PoolID: v.io.PoolID(), UUID: e.UUID}},
		io: v.io, holder: v.image, snap: snap, native: true, entry: e}
	sn, err := snapshotOf(ctx, img, r, req.GetSourceVolumeId())
	if err != nil {
		return nil, err
	}
	return &csi.CreateSnapshotResponse{Snapshot: sn}, nil
}

// legacySnapshot finishes a CreateSnapshot begun before this driver
// adopted ceph-csi's journal (a legacy JSON entry): as it was begun.
func (se *session) legacySnapshot(ctx context.Context, img *rbd.Image, name string, src csiceph.VolumeID, b []byte) (*csi.CreateSnapshotResponse, error) {
	var rec snapRecord
	if err := jsonUnmarshal(b, &rec); err != nil {
		return nil, status.Errorf(codes.Internal, "journal entry of snapshot %q: %v", name, err)
	}
	if rec.Source != src.String() {
		return nil, status.Errorf(codes.AlreadyExists, "snapshot %q exists for another volume", name)
	}
	if !hasSnapshot(img, rec.Snap) {
		if _, err := img.CreateSnapshot(ctx, rec.Snap); err != nil {
			return nil, se.fail(err)
		}
	}
	return &csi.CreateSnapshotResponse{Snapshot: rec.csi(src)}, nil
}

func hasSnapshot(img *rbd.Image, snap string) bool {
	_, ok := userSnapshot(img, snap)
	return ok
}

// userSnapshot finds the snapshot called snap: in the user namespace, or
// a group snapshot's member (group namespace; its names begin with
// ".group.", which csi-gorbd's snapshot names do not).
func userSnapshot(img *rbd.Image, snap string) (rbd.SnapshotInfo, bool) {
	for _, si := range img.Stat().Snapshots {
		if si.Name == snap && (si.Namespace.Type == rbd.SnapNamespaceUser || si.Namespace.Type == rbd.SnapNamespaceGroup) {
			return si, true
		}
	}
	return rbd.SnapshotInfo{}, false
}

// undoSnapshot removes the snapshot a failed CreateSnapshot may have
// taken after all (the answer lost).
func (se *session) undoSnapshot(ctx context.Context, img *rbd.Image, snap string) error {
	if err := img.Refresh(ctx); err != nil {
		return err
	}
	if hasSnapshot(img, snap) {
		if err := img.RemoveSnapshot(ctx, snap); err != nil && !notFound(err) {
			return err
		}
	}
	return nil
}

// snapshotOf describes snapshot r of the open holder image.
// The size of an encrypted volume's snapshot is its plaintext (what a
// restore must at least ask for).
func snapshotOf(ctx context.Context, img *rbd.Image, r *snapRef, sourceID string) (*csi.Snapshot, error) {
	si, ok := userSnapshot(img, r.snap)
	if !ok {
		return nil, status.Errorf(codes.NotFound, "snapshot %s: %s@%s does not exist", r.id, r.holder, r.snap)
	}
	size, err := plainSize(ctx, img, si.Size)
	if err != nil {
		return nil, csiceph.Status(err, "reading the encryption header of "+r.holder)
	}
	return &csi.Snapshot{
		SnapshotId:      r.id.String(),
		SourceVolumeId:  sourceID,
		SizeBytes:       int64(size),
		CreationTime:    timestamppb.New(si.Timestamp),
		ReadyToUse:      true,
		GroupSnapshotId: r.entry.Attrs[journal.KeyGroupSnapshot],
	}, nil
}

// csiSnapshot describes snapshot r, opening its holder image (which may
// wait in the trash).
func (se *session) csiSnapshot(ctx context.Context, r *snapRef, sourceID string) (*csi.Snapshot, error) {
	img, _, err := openImage(ctx, r.io, r.holder, &rbd.OpenOptions{ReadOnly: true})
	if err != nil {
		if notFound(err) {
			return nil, status.Errorf(codes.NotFound, "snapshot %s: image %q does not exist in %s", r.id, r.holder, poolSpec(r.io))
		}
		return nil, se.fail(err)
	}
	defer se.s.closeImage(ctx, img, r.holder)
	return snapshotOf(ctx, img, r, sourceID)
}

func (r snapRecord) csi(src csiceph.VolumeID) *csi.Snapshot {
	return &csi.Snapshot{
		SnapshotId:     csiceph.SnapshotID{VolumeID: src, Snap: r.Snap}.String(),
		SourceVolumeId: r.Source,
		SizeBytes:      int64(r.Size),
		CreationTime:   timestamppb.New(time.Unix(0, r.Created)),
		ReadyToUse:     true,
	}
}

// DeleteSnapshot removes the snapshot (ceph-csi's: with its image);
// unknown ids are success.
func (s *Server) DeleteSnapshot(ctx context.Context, req *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	if err := csiceph.Required("snapshot_id", req.GetSnapshotId()); err != nil {
		return nil, err
	}
	id, err := csiceph.ParseSnapshotID(req.GetSnapshotId())
	if err != nil {
		return &csi.DeleteSnapshotResponse{}, nil
	}
	release, err := s.guard("snapshot-id/" + req.GetSnapshotId())
	if err != nil {
		return nil, err
	}
	defer release()
	se, r, err := s.openSnapshot(ctx, id, req.GetSecrets())
	if errors.Is(err, errGone) {
		return &csi.DeleteSnapshotResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if g := r.entry.Attrs[journal.KeyGroupSnapshot]; g != "" {
		if _, err := s.openGroupSnapshot(ctx, g, req.GetSecrets()); !errors.Is(err, errGone) {
			return nil, status.Errorf(codes.FailedPrecondition, "snapshot %s is a member of volume group snapshot %s: delete that", req.GetSnapshotId(), g)
		}
	}
	unlock, err := s.lockImage(ctx, r.io, r.holder)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := se.deleteSnapshot(ctx, r.holder, r.snap); err != nil {
		return nil, se.fail(err)
	}
	switch {
	case id.Legacy():
		err = se.legacySnapJournal().forget(ctx, snapIDKey(id.Image, id.Snap), snapKeyPrefix)
	case r.cephCSI():
		// Its image goes too (to the trash while restores hang from it).
		if err = se.deleteImage(ctx, r.holder); err == nil {
			err = se.snapJournal().Release(ctx, r.entry.Name(), r.entry.UUID)
		}
	default:
		err = se.snapJournal().Release(ctx, r.entry.Name(), r.entry.UUID)
	}
	if err != nil {
		return nil, se.fail(err)
	}
	return &csi.DeleteSnapshotResponse{}, nil
}

// deleteSnapshot removes snapshot snap of the image called image (which
// may wait in the trash). A snapshot with clone children moves to the
// trash snapshot namespace until its last child goes; a trashed image
// left without snapshots is purged.
func (se *session) deleteSnapshot(ctx context.Context, image, snap string) error {
	img, _, err := openImage(ctx, se.io, image, nil)
	if err != nil {
		if notFound(err) {
			return nil
		}
		return err
	}
	if err = img.RemoveSnapshot(ctx, snap); notFound(err) {
		err = nil
	}
	if err != nil {
		se.s.closeImage(ctx, img, image)
		return err
	}
	next, name, err := se.purgeIfEmpty(ctx, se.io, img)
	if err != nil || next == nil {
		return err
	}
	return se.collect(ctx, *next, name)
}

// ListSnapshots lists journalled snapshots. With a snapshot or source
// volume id it looks in that id's pool; otherwise in every pool of every
// configured cluster the request's secrets can reach. The starting token
// is an offset into the list sorted by snapshot id.
func (s *Server) ListSnapshots(ctx context.Context, req *csi.ListSnapshotsRequest) (*csi.ListSnapshotsResponse, error) {
	start := 0
	if t := req.GetStartingToken(); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return nil, status.Errorf(codes.Aborted, "invalid starting_token %q", t)
		}
		start = n
	}
	if req.GetMaxEntries() < 0 {
		return nil, status.Error(codes.InvalidArgument, "max_entries must not be negative")
	}
	var entries []*csi.ListSnapshotsResponse_Entry
	switch {
	case req.GetSnapshotId() != "":
		id, err := csiceph.ParseSnapshotID(req.GetSnapshotId())
		if err != nil {
			return &csi.ListSnapshotsResponse{}, nil
		}
		se, r, err := s.openSnapshot(ctx, id, req.GetSecrets())
		if errors.Is(err, errGone) {
			return &csi.ListSnapshotsResponse{}, nil
		}
		if err != nil {
			return nil, err
		}
		e, err := se.listEntry(ctx, r)
		if err != nil {
			return nil, err
		}
		if e != nil {
			entries = append(entries, e)
		}
	case req.GetSourceVolumeId() != "":
		id, err := csiceph.ParseVolumeID(req.GetSourceVolumeId())
		if err != nil {
			return &csi.ListSnapshotsResponse{}, nil
		}
		se, v, err := s.openVolume(ctx, id, req.GetSecrets())
		if errors.Is(err, errGone) {
			return &csi.ListSnapshotsResponse{}, nil
		}
		if err != nil {
			return nil, err
		}
		all, err := se.listSnapshots(ctx)
		if err != nil {
			return nil, se.fail(err)
		}
		for _, e := range all {
			if e.Snapshot.SourceVolumeId == id.String() || (e.Snapshot.SourceVolumeId == "" && e.sourceImage == v.image) {
				e.Snapshot.SourceVolumeId = id.String()
				entries = append(entries, &csi.ListSnapshotsResponse_Entry{Snapshot: e.Snapshot})
			}
		}
	default:
		err := s.everyPool(ctx, req.GetSecrets(), func(se *session) error {
			all, err := se.listSnapshots(ctx)
			for _, e := range all {
				entries = append(entries, &csi.ListSnapshotsResponse_Entry{Snapshot: e.Snapshot})
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return page(entries, start, int(req.GetMaxEntries()))
}

// listEntry describes snapshot r for ListSnapshots (nil: its RBD snapshot
// is gone).
func (se *session) listEntry(ctx context.Context, r *snapRef) (*csi.ListSnapshotsResponse_Entry, error) {
	if r.id.Legacy() {
		all, err := se.listSnapshots(ctx)
		if err != nil {
			return nil, se.fail(err)
		}
		for _, e := range all {
			if e.Snapshot.SnapshotId == r.id.String() {
				return &csi.ListSnapshotsResponse_Entry{Snapshot: e.Snapshot}, nil
			}
		}
		return nil, nil
	}
	sn, err := se.csiSnapshot(ctx, r, se.sourceVolumeID(ctx, r))
	if status.Code(err) == codes.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &csi.ListSnapshotsResponse_Entry{Snapshot: sn}, nil
}

// sourceVolumeID is the id of the volume snapshot r was taken of: native
// snapshots record it; for ceph-csi's, the volume whose uuid ends the
// source image's name and whose journal entry names that image ("" when
// there is none).
func (se *session) sourceVolumeID(ctx context.Context, r *snapRef) string {
	if id := r.entry.Attrs[journal.KeySourceVolume]; id != "" {
		return id
	}
	src := r.entry.Attrs[journal.KeySource]
	if len(src) < 36 {
		return ""
	}
	uuid := src[len(src)-36:]
	if !csiceph.ValidUUID(uuid) {
		return ""
	}
	j := journal.Journal{IO: r.io, Instance: se.s.instance, Kind: journal.Volumes}
	e, err := j.Entry(ctx, uuid)
	if err != nil || j.ImageName(e) != src {
		return ""
	}
	return csiceph.VolumeID{ClusterID: se.cluster, PoolID: r.io.PoolID(), UUID: uuid}.String()
}

// listed is a snapshot found by listSnapshots, with its source image.
type listed struct {
	Snapshot    *csi.Snapshot
	sourceImage string
}

// listSnapshots returns the snapshots of the session's snapshot journal
// (both formats) whose RBD snapshots exist.
func (se *session) listSnapshots(ctx context.Context) ([]listed, error) {
	var out []listed
	legacy, err := se.legacySnapJournal().all(ctx, snapKeyPrefix)
	if err != nil {
		return nil, err
	}
	for _, v := range legacy {
		var rec snapRecord
		if jsonUnmarshal(v, &rec) != nil {
			continue // a uuid: ceph-csi's format, below
		}
		src, err := csiceph.ParseVolumeID(rec.Source)
		if err != nil {
			continue
		}
		out = append(out, listed{Snapshot: rec.csi(src), sourceImage: src.Image})
	}
	j := se.snapJournal()
	dir, err := j.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, dv := range dir {
		if dv.UUID == "" || (dv.PoolID >= 0 && dv.PoolID != se.io.PoolID()) {
			continue
		}
		e, err := j.Entry(ctx, dv.UUID)
		if errors.Is(err, journal.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if e.Attrs[journal.KeySnapKind] == journal.SnapKindGroup {
			continue
		}
		r := &snapRef{id: csiceph.SnapshotID{VolumeID: csiceph.VolumeID{ClusterID: se.cluster, PoolID: se.io.PoolID(), UUID: e.UUID}},
			io: se.io, entry: e, snap: j.ImageName(e)}
		r.native = onSource(e)
		r.holder = r.snap
		if r.native {
			r.holder = e.Attrs[journal.KeySource]
		}
		sn, err := se.csiSnapshot(ctx, r, se.sourceVolumeID(ctx, r))
		if status.Code(err) == codes.NotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, listed{Snapshot: sn, sourceImage: e.Attrs[journal.KeySource]})
	}
	return out, nil
}

// everyPool calls add with a session on every pool of every configured
// cluster (in the cluster's RADOS namespace); pools the secrets may not
// read are passed over.
func (s *Server) everyPool(ctx context.Context, secrets map[string]string, add func(*session) error) error {
	cr, err := csiceph.CredentialsFrom(secrets)
	if err != nil {
		return csiceph.Status(err, "")
	}
	for _, cl := range s.conns.Clusters().IDs() {
		c, err := s.conn(ctx, cl, cr)
		if err != nil {
			return err
		}
		pools, err := c.ListPools(ctx)
		if err != nil {
			return s.fail(c, err)
		}
		for _, p := range pools {
			se, err := s.open(ctx, cl, secrets, p, 0)
			if err != nil {
				return err
			}
			if err := add(se); err != nil && csiceph.Code(err) != codes.PermissionDenied {
				return se.fail(err)
			}
		}
	}
	return nil
}

// page sorts entries by snapshot id and returns max of them (0: all) from
// start on, with the token of the next page.
func page(entries []*csi.ListSnapshotsResponse_Entry, start, max int) (*csi.ListSnapshotsResponse, error) {
	sort.Slice(entries, func(a, b int) bool { return entries[a].Snapshot.SnapshotId < entries[b].Snapshot.SnapshotId })
	if start > len(entries) {
		return nil, status.Errorf(codes.Aborted, "starting_token %d is past the end (%d)", start, len(entries))
	}
	entries = entries[start:]
	resp := &csi.ListSnapshotsResponse{}
	if max > 0 && max < len(entries) {
		resp.NextToken = strconv.Itoa(start + max)
		entries = entries[:max]
	}
	resp.Entries = entries
	return resp, nil
}
