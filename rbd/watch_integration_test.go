package rbd

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// holdingStore passes everything to a real store, except that while held
// it keeps header reads (get_size, the first call of a refresh) waiting
// until their context ends, counting those in flight.
type holdingStore struct {
	store
	held     atomic.Bool
	inFlight atomic.Int64
	entered  chan struct{}
}

func (s *holdingStore) call(ctx context.Context, oid, class, method string, in []byte) ([]byte, error) {
	if s.held.Load() && method == "get_size" {
		s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		select {
		case s.entered <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.store.call(ctx, oid, class, method, in)
}

// Close stops and waits for the work the header watch started: a refresh
// that a HEADER_UPDATE started and that is stuck on the wire has returned
// by the time Close does.
func TestCloseWaitsForWatchWork(t *testing.T) {
	for _, c := range trimClusters {
		t.Run(c, func(t *testing.T) {
			e := newTrimEnv(t, c)
			ctx := trimCtx(t, time.Minute)
			name := trimName("close")
			for _, features := range []uint64{FeatureLayering, FeaturesDefault} {
				if _, err := Create(ctx, e.io, name, 8<<20, &CreateOptions{Features: features}); err != nil {
					t.Fatal(err)
				}
				hs := &holdingStore{store: newRadosStore(e.io), entered: make(chan struct{}, 1)}
				img, err := open(ctx, hs, name, "", nil)
				if err != nil {
					t.Fatal(err)
				}
				hs.held.Store(true)
				// Another client's HEADER_UPDATE: our watch starts a refresh.
				if _, err := newRadosStore(e.io).notify(ctx, img.hdr(), notifyPayload(notifyHeaderUpdate, 0, 0)); err != nil {
					t.Fatal(err)
				}
				select {
				case <-hs.entered:
				case <-ctx.Done():
					t.Fatal("the HEADER_UPDATE started no refresh")
				}
				if err := img.Close(ctx); err != nil {
					t.Fatal(err)
				}
				if n := hs.inFlight.Load(); n != 0 {
					t.Fatalf("features %#x: %d header reads still running after Close", features, n)
				}
				if err := Remove(ctx, e.io, name); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
