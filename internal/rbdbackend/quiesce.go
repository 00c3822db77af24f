package rbdbackend

import (
	"context"
	"time"

	"github.com/csi-gorbd/csi-gorbd/nbd"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// Quiesce says what a served image does when a snapshot asks its users
// to quiesce (`rbd snap create`, `rbd group snap create`, the CSI
// controller's snapshots): Freeze runs first (the node freezes a mounted
// filesystem there: it still flushes through the export), then the
// export's gate closes and the requests at the backend drain; on
// unquiesce the gate opens, then Thaw runs. Hold is how long to stay
// quiesced without word from the snapshotter (0: librbd's 10 s).
type Quiesce struct {
	Freeze func(ctx context.Context) error
	Thaw   func(ctx context.Context)
	Hold   time.Duration
}

// EnableQuiesce makes the backend answer its image's quiesce requests as
// q says, pausing the export with the returned gate (ConfigureExport puts
// it on every kernel connection's export). Call it once, before serving.
func (b *Backend) EnableQuiesce(q Quiesce) *nbd.Gate {
	g := &nbd.Gate{}
	b.gate = g
	b.img.OnQuiesce(&rbd.QuiesceHooks{
		Quiesce: func(ctx context.Context) error {
			if q.Freeze != nil {
				if err := q.Freeze(ctx); err != nil {
					return err
				}
			}
			if err := g.Pause(ctx); err != nil {
				g.Resume()
				if q.Thaw != nil {
					q.Thaw(context.WithoutCancel(ctx))
				}
				return err
			}
			return nil
		},
		Unquiesce: func(ctx context.Context) {
			g.Resume()
			if q.Thaw != nil {
				q.Thaw(ctx)
			}
		},
		Hold: q.Hold,
	})
	return g
}

// Gate returns the gate EnableQuiesce made, or nil.
func (b *Backend) Gate() *nbd.Gate { return b.gate }
