package controllerserver

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// connPool caches one rados.Conn per (cluster, user, key).
type connPool struct {
	clusters map[string]ClusterInfo
	timeout  time.Duration

	mu    sync.Mutex
	conns map[string]*rados.Conn
	who   map[string]owner // key → whom the connection belongs to (for health reports)
}

func (p *connPool) key(cluster string, cr Credentials) string {
	h := sha256.Sum256([]byte(cr.Key))
	return fmt.Sprintf("%s\x00%s\x00%x", cluster, cr.User, h[:8])
}

// get returns the cached connection for the cluster and user, dialling a
// new one when none is cached.
func (p *connPool) get(ctx context.Context, cluster string, cr Credentials) (*rados.Conn, error) {
	ci, ok := p.clusters[cluster]
	if !ok {
		known := make([]string, 0, len(p.clusters))
		for k := range p.clusters {
			known = append(known, k)
		}
		sort.Strings(known)
		return nil, fmt.Errorf("%w: clusterID %q is not in the clusters file (known: %s); fix the StorageClass parameter clusterID or the clusters file",
			errUnknownCluster, cluster, strings.Join(known, ", "))
	}
	k := p.key(cluster, cr)
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.conns[k]; c != nil {
		return c, nil
	}
	cctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	c, err := rados.Connect(cctx, rados.Config{Monitors: ci.Monitors, User: cr.User, Key: cr.Key, ConnectTimeout: p.timeout})
	if err != nil {
		return nil, err
	}
	if p.conns == nil {
		p.conns = map[string]*rados.Conn{}
	}
	p.conns[k] = c
	if p.who == nil {
		p.who = map[string]owner{}
	}
	p.who[k] = owner{cluster: cluster, user: cr.User}
	return c, nil
}

// failed drops the cached connection when err says it is unusable, so
// the next call redials.
func (p *connPool) failed(cluster string, cr Credentials, err error) {
	if !errors.Is(err, rados.ErrClosed) && !errors.Is(err, rados.ErrNoMonitor) {
		return
	}
	k := p.key(cluster, cr)
	p.mu.Lock()
	c := p.conns[k]
	delete(p.conns, k)
	delete(p.who, k)
	p.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// owner is whom a cached connection belongs to.
type owner struct{ cluster, user string }

// cached is one cached connection and its owner.
type cached struct {
	owner
	conn *rados.Conn
}

// all returns the cached connections.
func (p *connPool) all() []cached {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]cached, 0, len(p.conns))
	for k, c := range p.conns {
		out = append(out, cached{owner: p.who[k], conn: c})
	}
	return out
}

// closeAll closes every cached connection.
func (p *connPool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, c := range p.conns {
		_ = c.Close()
		delete(p.conns, k)
		delete(p.who, k)
	}
}
