package controllerserver

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/internal/journal"
	"github.com/csi-gorbd/csi-gorbd/rados"
)

// Finding volumes and snapshots from their ids.
//
// A ceph-csi handle names a pool (by id) and a journal uuid: the volume's
// image is csi.imagename of csi.volume.<uuid> in that pool, in the
// clusterID's RADOS namespace; a snapshot's is csi.snap.<uuid>. When the
// pool or the entry is not there, the locations cluster-mapping.json maps
// the handle's clusterID and pool to are tried, as ceph-csi does. A legacy
// id names the image (and snapshot) itself, in the pool's default
// namespace.

// errGone: the id's pool or journal entry does not exist (anywhere the
// cluster mapping points).
var errGone = errors.New("controller: no such volume or snapshot")

// volRef is a volume found from its id.
type volRef struct {
	id    csiceph.VolumeID // the id the request gave
	io    *rados.IOContext // the image's pool and namespace
	image string
	entry journal.Entry // ceph-csi form (UUID empty for a legacy id)
}

// snapRef is a snapshot found from its id: RBD snapshot snap of the image
// holder. For csi-gorbd's snapshots (native, and legacy ids) the holder is
// the source volume's image; for ceph-csi's it is the csi-snap-<uuid>
// image that carries a snapshot of the same name.
type snapRef struct {
	id     csiceph.SnapshotID
	io     *rados.IOContext
	holder string
	snap   string
	native bool
	entry  journal.Entry
}

// onSource reports whether the snapshot of journal entry e is an RBD
// snapshot on its source image (csi-gorbd's: alone or a group's member)
// rather than ceph-csi's image of its own.
func onSource(e journal.Entry) bool {
	k := e.Attrs[journal.KeySnapKind]
	return k == journal.SnapKindNative || k == journal.SnapKindGroupMember
}

// cephCSI reports whether the snapshot is ceph-csi's (an image of its
// own).
func (r *snapRef) cephCSI() bool { return r.entry.UUID != "" && !r.native }

// locations lists where a handle may lead: its own cluster and pool, then
// the mapped ones.
func (s *Server) locations(id csiceph.VolumeID) []csiceph.Location {
	own := csiceph.Location{ClusterID: id.ClusterID, PoolID: id.PoolID}
	return append([]csiceph.Location{own}, s.mapping.Alternatives(own)...)
}

// locate opens a session on each location of id in turn and calls find
// with it until find succeeds or fails with something other than errGone.
// A location whose pool does not exist counts as gone; so does one whose
// cluster is not configured, unless it is the handle's own.
func (s *Server) locate(ctx context.Context, id csiceph.VolumeID, secrets map[string]string,
	find func(*session) error) (*session, error) {
	var last error
	for i, l := range s.locations(id) {
		if i > 0 {
			if _, err := s.conns.Clusters().Lookup(l.ClusterID); err != nil {
				continue
			}
		}
		se, err := s.open(ctx, l.ClusterID, secrets, "", l.PoolID)
		if status.Code(err) == codes.NotFound {
			last = fmt.Errorf("%w: %v", errGone, err)
			continue
		}
		if err != nil {
			return nil, err
		}
		if id.Legacy() {
			se.io.SetNamespace("")
		}
		err = find(se)
		if errors.Is(err, errGone) || errors.Is(err, journal.ErrNotFound) {
			last = err
			continue
		}
		if err != nil {
			return nil, se.fail(err)
		}
		return se, nil
	}
	if last == nil {
		last = errGone
	}
	if !errors.Is(last, errGone) {
		last = fmt.Errorf("%w: %v", errGone, last)
	}
	return nil, last
}

// gone turns errGone into NotFound; other errors pass.
func gone(err error, what string) error {
	if errors.Is(err, errGone) {
		return status.Errorf(codes.NotFound, "%s: %v", what, err)
	}
	return err
}

// beginVolume is begin (without the image lock) for a request's volume
// id: a malformed id or a volume that is gone is NotFound.
func (s *Server) beginVolume(ctx context.Context, volumeID string, secrets map[string]string) (*session, *volRef, func(), error) {
	id, err := csiceph.ParseVolumeID(volumeID)
	if err != nil {
		return nil, nil, nil, status.Errorf(codes.NotFound, "volume %q: %v", volumeID, err)
	}
	se, v, done, err := s.begin(ctx, "volume-id/"+volumeID, id, secrets, false)
	if err != nil {
		return nil, nil, nil, gone(err, "volume "+volumeID)
	}
	return se, v, done, nil
}

// openVolume finds the volume of id: the session is on its image's pool
// and namespace. A volume that does not exist is errGone.
func (s *Server) openVolume(ctx context.Context, id csiceph.VolumeID, secrets map[string]string) (*session, *volRef, error) {
	v := &volRef{id: id}
	se, err := s.locate(ctx, id, secrets, func(se *session) error {
		v.io = se.io
		if id.Legacy() {
			v.image = id.Image
			return nil
		}
		e, err := se.volJournal().Entry(ctx, id.UUID)
		if err != nil {
			return err
		}
		v.entry, v.image = e, se.volJournal().ImageName(e)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return se, v, nil
}

// openSnapshot finds the snapshot of id (errGone if it does not exist).
func (s *Server) openSnapshot(ctx context.Context, id csiceph.SnapshotID, secrets map[string]string) (*session, *snapRef, error) {
	r := &snapRef{id: id}
	se, err := s.locate(ctx, id.VolumeID, secrets, func(se *session) error {
		r.io = se.io
		if id.Legacy() {
			r.holder, r.snap, r.native = id.Image, id.Snap, true
			return nil
		}
		j := se.snapJournal()
		e, err := j.Entry(ctx, id.UUID)
		if err != nil {
			return err
		}
		if e.Attrs[journal.KeySnapName] == "" {
			return fmt.Errorf("%w: %s is not a snapshot's journal entry", errGone, j.EntryObject(id.UUID))
		}
		r.entry, r.snap = e, j.ImageName(e)
		if e.Attrs[journal.KeySnapKind] == journal.SnapKindGroup {
			return status.Errorf(codes.InvalidArgument, "%s is a volume group snapshot, not a snapshot", id)
		}
		if onSource(e) {
			r.native, r.holder = true, e.Attrs[journal.KeySource]
		} else {
			r.holder = r.snap
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return se, r, nil
}
