package controllerserver

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// CreateSnapshot takes a native RBD snapshot of the source image.
func (s *Server) CreateSnapshot(ctx context.Context, req *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	name := req.GetName()
	if err := csiceph.Required("name", name, "source_volume_id", req.GetSourceVolumeId()); err != nil {
		return nil, err
	}
	src, err := csiceph.ParseVolumeID(req.GetSourceVolumeId())
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "source volume: %v", err)
	}
	se, done, err := s.begin(ctx, "snapshot-name/"+name, src, req.GetSecrets(), true)
	if err != nil {
		return nil, err
	}
	defer done()
	j := se.snapJournal()
	var rec snapRecord
	found, err := j.get(ctx, snapKeyPrefix+name, &rec)
	if err != nil {
		return nil, se.fail(err)
	}
	if found && rec.Source != src.String() {
		return nil, status.Errorf(codes.AlreadyExists, "snapshot %q exists for another volume", name)
	}
	img, err := rbd.Open(ctx, se.io, src.Image, nil)
	if err != nil {
		return nil, se.volumeErr(src, err)
	}
	defer s.closeImage(ctx, img, src.Image)
	if !found {
		rec = snapRecord{Source: src.String(), Snap: newName(csiceph.SnapPrefix(req.GetParameters())), Size: img.Size(),
			Created: time.Now().UnixNano()}
		if err := se.reserve(ctx, j, fmt.Sprintf("snapshot %q", name),
			map[string]any{snapKeyPrefix + name: rec, snapIDKey(src.Image, rec.Snap): name}); err != nil {
			return nil, err
		}
	}
	if !hasSnapshot(img, rec.Snap) {
		if _, err := img.CreateSnapshot(ctx, rec.Snap); err != nil {
			if !found {
				s.cleanup(ctx, fmt.Sprintf("snapshot %s@%s and the journal entry of snapshot %q (a retry of the request finishes them)",
					src.Image, rec.Snap, name),
					func(ctx context.Context) error { return se.undoSnapshot(ctx, img, name, src.Image, rec.Snap) })
			}
			return nil, se.fail(err)
		}
	}
	return &csi.CreateSnapshotResponse{Snapshot: rec.csi(src)}, nil
}

func hasSnapshot(img *rbd.Image, snap string) bool {
	for _, si := range img.Stat().Snapshots {
		if si.Name == snap {
			return true
		}
	}
	return false
}

// undoSnapshot removes what a failed CreateSnapshot made: the snapshot,
// if it was taken after all (the answer lost), and the journal entries.
func (se *session) undoSnapshot(ctx context.Context, img *rbd.Image, name, image, snap string) error {
	if err := img.Refresh(ctx); err != nil {
		return err
	}
	if hasSnapshot(img, snap) {
		if err := img.RemoveSnapshot(ctx, snap); err != nil && !notFound(err) {
			return err
		}
	}
	return se.snapJournal().remove(ctx, snapKeyPrefix+name, snapIDKey(image, snap))
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

// DeleteSnapshot removes the RBD snapshot; unknown ids are success.
func (s *Server) DeleteSnapshot(ctx context.Context, req *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	if err := csiceph.Required("snapshot_id", req.GetSnapshotId()); err != nil {
		return nil, err
	}
	id, err := csiceph.ParseSnapshotID(req.GetSnapshotId())
	if err != nil {
		return &csi.DeleteSnapshotResponse{}, nil
	}
	se, done, err := s.begin(ctx, "snapshot-id/"+req.GetSnapshotId(), id.VolumeID, req.GetSecrets(), true)
	if status.Code(err) == codes.NotFound {
		return &csi.DeleteSnapshotResponse{}, nil // the pool is gone
	}
	if err != nil {
		return nil, err
	}
	defer done()
	if err := se.deleteSnapshot(ctx, id.Image, id.Snap); err != nil {
		return nil, se.fail(err)
	}
	if err := se.snapJournal().forget(ctx, snapIDKey(id.Image, id.Snap), snapKeyPrefix); err != nil {
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
	add := func(se *session) error {
		found, err := se.listSnapshots(ctx, req.GetSnapshotId(), req.GetSourceVolumeId())
		entries = append(entries, found...)
		return err
	}
	var scope *csiceph.VolumeID
	if id := req.GetSnapshotId(); id != "" {
		sid, err := csiceph.ParseSnapshotID(id)
		if err != nil {
			return &csi.ListSnapshotsResponse{}, nil
		}
		scope = &sid.VolumeID
	} else if id := req.GetSourceVolumeId(); id != "" {
		vid, err := csiceph.ParseVolumeID(id)
		if err != nil {
			return &csi.ListSnapshotsResponse{}, nil
		}
		scope = &vid
	}
	if scope != nil {
		se, err := s.open(ctx, scope.ClusterID, req.GetSecrets(), "", scope.PoolID)
		if err != nil {
			if status.Code(err) == codes.NotFound {
				return &csi.ListSnapshotsResponse{}, nil
			}
			return nil, err
		}
		if err := add(se); err != nil {
			return nil, se.fail(err)
		}
	} else if err := s.everyPool(ctx, req.GetSecrets(), add); err != nil {
		return nil, err
	}
	return page(entries, start, int(req.GetMaxEntries()))
}

// listSnapshots returns the snapshots of the session's snapshot journal,
// only those with the snapshot or source volume id when one is given.
func (se *session) listSnapshots(ctx context.Context, snapID, sourceID string) ([]*csi.ListSnapshotsResponse_Entry, error) {
	m, err := se.snapJournal().all(ctx, snapKeyPrefix)
	if err != nil {
		return nil, err
	}
	var out []*csi.ListSnapshotsResponse_Entry
	for _, v := range m {
		var rec snapRecord
		if jsonUnmarshal(v, &rec) != nil {
			continue
		}
		src, err := csiceph.ParseVolumeID(rec.Source)
		if err != nil {
			continue
		}
		sn := rec.csi(src)
		if (snapID != "" && sn.SnapshotId != snapID) || (sourceID != "" && sn.SourceVolumeId != sourceID) {
			continue
		}
		out = append(out, &csi.ListSnapshotsResponse_Entry{Snapshot: sn})
	}
	return out, nil
}

// everyPool calls add with a session on every pool of every configured
// cluster; pools the secrets may not read are passed over.
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
