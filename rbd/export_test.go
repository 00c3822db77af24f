package rbd

import (
	"context"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// TestingQuiesceOnly sends QUIESCE to image name's watchers and never
// UNQUIESCE (a snapshotter that died).
func TestingQuiesceOnly(ctx context.Context, io *rados.IOContext, name string) error {
	img, err := Open(ctx, io, name, &OpenOptions{ReadOnly: true, NoWatch: true})
	if err != nil {
		return err
	}
	defer img.Close(ctx)
	q := &quiesced{img: img, id: asyncRequestID{gid: img.s.clientID(), id: asyncRequests.Add(1)}}
	return q.send(ctx)
}
