package csiceph

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"

	"github.com/csi-gorbd/csi-gorbd/internal/journal"
)

// ErrNoVolume: a volume id leads to no journal entry (nor its pool to a
// pool), where it points or where the cluster mapping sends it.
var ErrNoVolume = errors.New("csiceph: no such volume")

// Resolved is where a volume's image is.
type Resolved struct {
	ClusterID string
	PoolID    int64
	Namespace string
	Image     string
	// Owner is the journal's csi.volume.owner (the PVC namespace; "" for
	// legacy ids).
	Owner string
}

// ResolveVolume finds the image of a volume id for the node: a legacy id
// names it (default namespace); a ceph-csi handle leads to csi.volume.<uuid>
// in its pool and the clusterID's RADOS namespace, or in a location the
// cluster mapping gives.
func (p *Pool) ResolveVolume(ctx context.Context, id VolumeID, cr Credentials, mapping ClusterMapping) (Resolved, error) {
	if id.Legacy() {
		if _, err := p.clusters.Lookup(id.ClusterID); err != nil {
			return Resolved{}, err
		}
		return Resolved{ClusterID: id.ClusterID, PoolID: id.PoolID, Image: id.Image}, nil
	}
	own := Location{ClusterID: id.ClusterID, PoolID: id.PoolID}
	var last error
	for i, l := range append([]Location{own}, mapping.Alternatives(own)...) {
		ci, err := p.clusters.Lookup(l.ClusterID)
		if err != nil {
			if i == 0 {
				return Resolved{}, err
			}
			continue
		}
		c, err := p.Get(ctx, l.ClusterID, cr)
		if err != nil {
			return Resolved{}, err
		}
		io, err := c.OpenIOContextByID(ctx, l.PoolID)
		if Code(err) == codes.NotFound {
			last = err
			continue
		}
		if err != nil {
			p.Failed(c, err)
			return Resolved{}, err
		}
		io.SetNamespace(ci.Namespace())
		j := journal.Journal{IO: io, Kind: journal.Volumes}
		e, err := j.Entry(ctx, id.UUID)
		if errors.Is(err, journal.ErrNotFound) {
			last = err
			continue
		}
		if err != nil {
			p.Failed(c, err)
			return Resolved{}, err
		}
		return Resolved{ClusterID: l.ClusterID, PoolID: l.PoolID, Namespace: ci.Namespace(), Image: j.ImageName(e),
			Owner: e.Attrs[journal.KeyOwner]}, nil
	}
	return Resolved{}, fmt.Errorf("%w: %s (%v)", ErrNoVolume, id, last)
}
