package osd

import (
	"context"
)

// listBatch is how many entries one PGNLS asks for.
const listBatch = 1024

// List calls fn for every object in a pool namespace (AllNamespaces for
// all), walking the pgs in the OSD's bitwise hash order with PGNLS as
// librados does. fn's error stops the walk and is returned.
func (c *Client) List(ctx context.Context, pool int64, ns string, fn func(ListEntry) error) error {
	if err := c.WaitForMap(ctx, 1); err != nil {
		return err
	}
	cursor := MinHObject()
	for !cursor.IsMax() {
		m := c.Map()
		p := m.Pools[pool]
		if p == nil {
			return &OpError{Op: OpPGNLS, Pool: pool, Err: errNoPool}
		}
		pg := p.RawPGToPG(osdmapPG(pool, cursor.Hash))
		req := &Request{Pool: pool, Namespace: ns, Ops: []Op{PGNLS(listBatch, &cursor, m.Epoch)}}
		r, err := c.newRequest(req)
		if err != nil {
			return err
		}
		r.pg = true
		r.pgSeed = pg.Seed
		r.flags |= FlagPGOp | FlagIgnoreOverlay
		c.submit(r)
		if err := c.wait(ctx, r); err != nil {
			return err
		}
		next, entries, err := ParsePGNLS(req.Ops[0].Out)
		if err != nil {
			return &OpError{Op: OpPGNLS, Pool: pool, Err: err}
		}
		for _, e := range entries {
			if err := fn(e); err != nil {
				return err
			}
		}
		if next.Compare(&cursor) <= 0 && !next.IsMax() {
			// The OSD must move forward; stop rather than loop.
			return &OpError{Op: OpPGNLS, Pool: pool, Err: ErrProtocol}
		}
		cursor = next
	}
	return nil
}
