package csiceph

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/rados"
)

// TestPoolOnPacific: concurrent callers get one connection, whose
// on-connect hook ran once before any of them had it; the session is up;
// a connection-level failure drops it and the next caller dials anew
// (the hook runs again); Close closes it.
func TestPoolOnPacific(t *testing.T) {
	c := cephtest.Need(t, "pacific")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var mu sync.Mutex
	var hooked []*rados.Conn
	p := NewPool(PoolOptions{
		Clusters: Clusters{"p": {ClusterID: "p", Monitors: []string{c.Get("CEPH_MON_V2")}}},
		OnConnect: func(conn *rados.Conn) error {
			mu.Lock()
			defer mu.Unlock()
			hooked = append(hooked, conn)
			return nil
		},
	})
	defer p.Close()
	cr := Credentials{User: "admin", Key: c.Get("CEPH_ADMIN_KEY")}
	const n = 6
	conns := make([]*rados.Conn, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := p.Get(ctx, "p", cr)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			if len(hooked) == 0 || hooked[len(hooked)-1] != conn {
				t.Error("a caller got the connection before the on-connect hook ran")
			}
			mu.Unlock()
			conns[i] = conn
		}()
	}
	wg.Wait()
	for _, conn := range conns {
		if conn != conns[0] {
			t.Fatalf("callers got different connections")
		}
	}
	if len(hooked) != 1 {
		t.Fatalf("on-connect hook ran %d times for one connection", len(hooked))
	}
	if h := p.Health(ctx); len(h) != 1 || !h[0].Up || h[0].Cluster != "p" || h[0].User != "admin" {
		t.Errorf("health: %+v", h)
	}
	p.Failed(conns[0], context.DeadlineExceeded) // not connection-level: kept
	if again, _ := p.Get(ctx, "p", cr); again != conns[0] {
		t.Error("a request-level error dropped the connection")
	}
	conns[0].Close()
	p.Failed(conns[0], rados.ErrClosed)
	fresh, err := p.Get(ctx, "p", cr)
	if err != nil || fresh == conns[0] {
		t.Fatalf("after a connection-level failure: %v (same connection: %v)", err, fresh == conns[0])
	}
	p.Failed(conns[0], rados.ErrClosed) // the old one again: the fresh one stays
	if again, _ := p.Get(ctx, "p", cr); again != fresh {
		t.Error("a failure of a dropped connection dropped its successor")
	}
	if len(hooked) != 2 {
		t.Errorf("on-connect hook ran %d times for two connections", len(hooked))
	}
}
