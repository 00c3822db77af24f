package rados

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados/mon"
	"github.com/csi-gorbd/csi-gorbd/rados/osdmap"
)

// ErrPoolNotFound: no pool of that name or id in the current OSDMap. It
// also matches syscall.ENOENT.
var ErrPoolNotFound = errors.New("rados: pool not found")

type poolNotFound struct{ what string }

func (e poolNotFound) Error() string { return ErrPoolNotFound.Error() + ": " + e.what }
func (e poolNotFound) Is(t error) bool {
	return t == ErrPoolNotFound || t == syscall.ENOENT
}

// PoolInfo describes a pool as the OSDMap has it.
type PoolInfo struct {
	ID   int64
	Name string
	*osdmap.Pool
}

// waitMap waits for the first OSDMap and returns the current one.
func (c *Conn) waitMap(ctx context.Context) (*osdmap.OSDMap, error) {
	if err := c.WaitForOSDMap(ctx, 1); err != nil {
		return nil, err
	}
	return c.osd.Map(), nil
}

// LookupPool returns the id of the named pool (ErrPoolNotFound if the
// current map has no such pool; call WaitForLatestOSDMap first to see
// pools created moments ago by someone else).
func (c *Conn) LookupPool(ctx context.Context, name string) (int64, error) {
	m, err := c.waitMap(ctx)
	if err != nil {
		return 0, err
	}
	id, ok := m.PoolByName(name)
	if !ok {
		return 0, poolNotFound{fmt.Sprintf("%q", name)}
	}
	return id, nil
}

// GetPoolByID returns the name of pool id.
func (c *Conn) GetPoolByID(ctx context.Context, id int64) (string, error) {
	m, err := c.waitMap(ctx)
	if err != nil {
		return "", err
	}
	name, ok := m.PoolNames[id]
	if !ok || m.Pools[id] == nil {
		return "", poolNotFound{fmt.Sprintf("id %d", id)}
	}
	return name, nil
}

// GetPool returns the pool's description from the current map.
func (c *Conn) GetPool(ctx context.Context, name string) (*PoolInfo, error) {
	m, err := c.waitMap(ctx)
	if err != nil {
		return nil, err
	}
	id, ok := m.PoolByName(name)
	if !ok {
		return nil, poolNotFound{fmt.Sprintf("%q", name)}
	}
	return &PoolInfo{ID: id, Name: name, Pool: m.Pools[id]}, nil
}

// ListPoolIDs returns the ids of the pools in the current map, in order.
func (c *Conn) ListPoolIDs(ctx context.Context) ([]int64, error) {
	m, err := c.waitMap(ctx)
	if err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(m.Pools)), nil
}

// ListPools returns the pool names in id order.
func (c *Conn) ListPools(ctx context.Context) ([]string, error) {
	m, err := c.waitMap(ctx)
	if err != nil {
		return nil, err
	}
	ids := slices.Sorted(maps.Keys(m.Pools))
	names := make([]string, 0, len(ids))
	for _, id := range ids {
		names = append(names, m.PoolNames[id])
	}
	return names, nil
}

// monCommandJSON marshals cmd and runs it.
func (c *Conn) monCommandJSON(ctx context.Context, cmd map[string]any) ([]byte, error) {
	b, err := json.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	out, _, err := c.MonCommand(ctx, string(b), nil)
	return out, err
}

// PoolCreate creates a replicated pool (pgNum 0: the cluster's default)
// and waits until the client's map has it. Creating an existing pool
// succeeds, as with the ceph CLI.
func (c *Conn) PoolCreate(ctx context.Context, name string, pgNum int) error {
	cmd := map[string]any{"prefix": "osd pool create", "pool": name}
	if pgNum > 0 {
		cmd["pg_num"] = pgNum
	}
	if _, err := c.monCommandJSON(ctx, cmd); err != nil {
		return fmt.Errorf("rados: creating pool %q: %w", name, err)
	}
	return c.WaitForLatestOSDMap(ctx)
}

// PoolDelete deletes a pool (the monitors must allow it:
// mon_allow_pool_delete) and waits until the client's map no longer has
// it. A missing pool is ErrPoolNotFound.
func (c *Conn) PoolDelete(ctx context.Context, name string) error {
	// The monitors answer success for a pool that does not exist; look
	// it up in the newest map first.
	if err := c.WaitForLatestOSDMap(ctx); err != nil {
		return err
	}
	if _, err := c.LookupPool(ctx, name); err != nil {
		return err
	}
	cmd := map[string]any{"prefix": "osd pool delete", "pool": name, "pool2": name,
		"yes_i_really_really_mean_it": true}
	if _, err := c.monCommandJSON(ctx, cmd); err != nil {
		var me *mon.CommandError
		if errors.As(err, &me) && me.Errno == syscall.ENOENT {
			return poolNotFound{fmt.Sprintf("%q", name)}
		}
		return fmt.Errorf("rados: deleting pool %q: %w", name, err)
	}
	return c.WaitForLatestOSDMap(ctx)
}

// ApplicationEnable tags a pool with an application ("rbd").
func (c *Conn) ApplicationEnable(ctx context.Context, pool, app string) error {
	cmd := map[string]any{"prefix": "osd pool application enable", "pool": pool, "app": app,
		"yes_i_really_mean_it": true}
	if _, err := c.monCommandJSON(ctx, cmd); err != nil {
		return fmt.Errorf("rados: enabling %s on pool %q: %w", app, pool, err)
	}
	return c.WaitForLatestOSDMap(ctx)
}

// poolOp sends a pool operation and waits for the map epoch it produced.
func (c *Conn) poolOp(ctx context.Context, op mon.MPoolOp) (*mon.MPoolOpReply, error) {
	if op.Epoch == 0 {
		op.Epoch = uint64(c.maps.epoch())
	}
	rep, err := c.mc.PoolOp(ctx, op)
	if err != nil {
		return nil, err
	}
	if err := c.WaitForOSDMap(ctx, rep.Epoch); err != nil {
		return nil, err
	}
	return rep, nil
}

// CreateSelfManagedSnap allocates a self-managed snapshot id in pool (the
// monitors' pool op, as librados' selfmanaged_snap_create).
func (c *Conn) CreateSelfManagedSnap(ctx context.Context, pool int64) (uint64, error) {
	rep, err := c.poolOp(ctx, mon.MPoolOp{Pool: uint32(pool), Op: mon.PoolOpCreateUnmanagedSnap})
	if err != nil {
		return 0, fmt.Errorf("rados: creating a snapshot id in pool %d: %w", pool, err)
	}
	id, ok := rep.SnapID()
	if !ok {
		return 0, fmt.Errorf("rados: pool op reply without a snap id: %w", mon.ErrBadMessage)
	}
	return id, nil
}

// RemoveSelfManagedSnap releases a self-managed snapshot id; the OSDs then
// trim its clones.
func (c *Conn) RemoveSelfManagedSnap(ctx context.Context, pool int64, snap uint64) error {
	_, err := c.poolOp(ctx, mon.MPoolOp{Pool: uint32(pool), Op: mon.PoolOpDeleteUnmanagedSnap, SnapID: snap})
	if err != nil {
		return fmt.Errorf("rados: removing snapshot %d of pool %d: %w", snap, pool, err)
	}
	return nil
}
