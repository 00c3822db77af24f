package controllerserver

import (
	"context"
	"net"
	"strings"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/config"
)

// probeTimeout bounds one reachability check.
const probeTimeout = 5 * time.Second

// reachable reports whether any monitor of the cluster accepts a TCP
// connection. It is what Probe can check for a cluster no request has
// dialled yet: sessions need the secrets that only requests carry.
func reachable(ctx context.Context, ci ClusterInfo) bool {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
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
