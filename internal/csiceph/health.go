package csiceph

import (
	"context"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rados/config"
)

// checkTimeout bounds one health or reachability check.
const checkTimeout = 5 * time.Second

// Session is the health of one pooled cluster connection.
type Session struct {
	Cluster, User string
	Up            bool
}

// Ping asks the monitors for their version within 5 seconds. Only
// connection-level failures count as down: a refusal still proves the
// cluster answers.
func Ping(ctx context.Context, c *rados.Conn) bool {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	_, _, err := c.MonCommand(ctx, `{"prefix": "version"}`, nil)
	return !down(err)
}

// Health pings every ready connection of the pool, concurrently, and
// reports each one.
func (p *Pool) Health(ctx context.Context) []Session {
	all := p.ready()
	out := make([]Session, len(all))
	var wg sync.WaitGroup
	for i, s := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = Session{Cluster: s.cluster, User: s.user, Up: Ping(ctx, s.conn)}
		}()
	}
	wg.Wait()
	return out
}

// Reachable reports whether any monitor of the cluster accepts a TCP
// connection within 5 seconds. It is what a probe can check for a cluster
// no request has dialled yet: sessions need the secrets only requests
// carry.
func Reachable(ctx context.Context, ci ClusterInfo) bool {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	mons, err := config.ParseMonHost(ctx, strings.Join(ci.Monitors, ","), nil)
	if err != nil {
		return false
	}
	var d net.Dialer
	for _, m := range mons {
		for _, a := range m.Addrs {
			c, err := d.DialContext(ctx, "tcp", a.IP.String())
			if err == nil {
				_ = c.Close()
				return true
			}
		}
	}
	return false
}
