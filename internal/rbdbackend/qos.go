package rbdbackend

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/csi-gorbd/csi-gorbd/nbd"
	"github.com/csi-gorbd/csi-gorbd/nbd/qos"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// Limits turns librbd's QoS settings into the NBD server's limits; the
// semantics are the same (package qos follows librbd's throttle), only
// the operation kinds differ: librbd's write_same is a write-zeroes that
// allocates, its compare_and_write has no NBD counterpart.
func Limits(q rbd.QoS) qos.Limits {
	conv := func(l rbd.QoSLimit) qos.Limit {
		return qos.Limit{Rate: l.Limit, Burst: l.Burst, BurstSeconds: l.BurstSeconds}
	}
	l := qos.Limits{
		IOPS: conv(q.IOPS), ReadIOPS: conv(q.ReadIOPS), WriteIOPS: conv(q.WriteIOPS),
		BPS: conv(q.BPS), ReadBPS: conv(q.ReadBPS), WriteBPS: conv(q.WriteBPS),
		TickMin: time.Duration(q.ScheduleTickMin) * time.Millisecond,
	}
	for bit, op := range map[uint64]qos.Op{rbd.IOOpRead: qos.Read, rbd.IOOpWrite: qos.Write,
		rbd.IOOpDiscard: qos.Discard, rbd.IOOpWriteSame: qos.WriteZeroes} {
		if q.ExcludeOps&bit != 0 {
			l.Exclude = l.Exclude.With(op)
		}
	}
	return l
}

// qosState follows the image's QoS settings into a limiter.
type qosState struct {
	lim      *qos.Limiter
	onChange func(qos.Limits, error)
	mu       sync.Mutex // one reload at a time (notifies may overlap)
}

// EnableQoS makes the backend enforce the image's QoS settings (librbd's
// rbd_qos_* options, from the pool's and the image's config overrides)
// and follow them: every HEADER_UPDATE notify on the image (`rbd config
// image set` or `remove` sends one) reads them again and changes the
// limits of the requests that come next. A pool-level change is seen at
// the next open or notify, as by librbd. The returned Limiter goes on the
// export (ConfigureExport does that for the kernel path).
//
// onChange, if set, is called with the limits after every read that
// changed them or failed (err: the read failed, and the limits in force
// stay; or values were skipped, matching rbd.ErrQoSValue). Call EnableQoS
// once, before serving.
func (b *Backend) EnableQoS(ctx context.Context, onChange func(qos.Limits, error)) (*qos.Limiter, error) {
	s := &qosState{lim: qos.New(qos.Limits{}), onChange: onChange}
	if err := s.reload(ctx, b.img); err != nil && !errors.Is(err, rbd.ErrQoSValue) {
		return nil, err
	}
	b.qos = s
	b.img.OnHeaderUpdate(func(ctx context.Context) { _ = s.reload(ctx, b.img) })
	return s.lim, nil
}

// Limiter returns the limiter EnableQoS made, or nil.
func (b *Backend) Limiter() *qos.Limiter {
	if b.qos == nil {
		return nil
	}
	return b.qos.lim
}

// ConfigureExport sets the export's Limiter and Gate (the kernel path
// calls it on every export it makes for this backend: see
// attach.ExportConfigurer).
func (b *Backend) ConfigureExport(e *nbd.Export) { e.Limiter, e.Gate = b.Limiter(), b.gate }

func (s *qosState) reload(ctx context.Context, img *rbd.Image) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := img.QoS(ctx)
	if err != nil && !errors.Is(err, rbd.ErrQoSValue) {
		if ctx.Err() != nil {
			return err // the image is closing: nothing to report
		}
		if s.onChange != nil {
			s.onChange(s.lim.Limits(), err)
		}
		return err
	}
	l := Limits(q)
	if changed := s.lim.Set(l); (changed || err != nil) && s.onChange != nil {
		s.onChange(l, err)
	}
	return err
}
