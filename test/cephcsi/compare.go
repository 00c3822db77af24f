package cephcsi

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Compare lists every difference between a captured layout and a dump of
// the pools it was replayed into (nil when they match). Pool names and ids
// are mapped (r); values that encode a pool id are compared after
// translation. Snapshot ids and trash-namespace snapshot names (random
// uuids librbd picks when a snapshot moves to the trash) cannot be
// replayed: snapshots are compared by their order, namespace, user-visible
// (or original) name, size and protection, and a clone's parent snapshot by
// the same identity.
func Compare(captured, replayed *Layout, r *Replayed) []string {
	var diffs []string
	add := func(format string, args ...any) { diffs = append(diffs, fmt.Sprintf(format, args...)) }

	type objKey struct{ pool, ns, name string }
	got := map[objKey]*Object{}
	for i := range replayed.Objects {
		o := &replayed.Objects[i]
		got[objKey{o.Pool, o.Namespace, o.Name}] = o
	}
	for _, o := range captured.Objects {
		k := objKey{r.Pools[o.Pool], o.Namespace, o.Name}
		g, ok := got[k]
		if !ok {
			add("object %s/%s/%s: missing", k.pool, k.ns, k.name)
			continue
		}
		delete(got, k)
		if g.Size != o.Size {
			add("object %s: size %d, captured %d", o.Name, g.Size, o.Size)
		}
		gv := map[string][]byte{}
		for _, e := range g.Omap {
			gv[e.Key] = e.Value
		}
		for _, e := range o.Omap {
			want, err := TranslateOmapValue(o.Name, e.Key, e.Value, r.PoolIDs)
			if err != nil {
				add("object %s key %s: %v", o.Name, e.Key, err)
				continue
			}
			v, ok := gv[e.Key]
			if !ok {
				add("object %s: key %q missing", o.Name, e.Key)
			} else if !bytes.Equal(v, want) {
				add("object %s key %q: %q, captured %q", o.Name, e.Key, v, want)
			}
			delete(gv, e.Key)
		}
		for k := range gv {
			add("object %s: extra key %q", o.Name, k)
		}
	}
	for k := range got {
		add("object %s/%s/%s: not captured", k.pool, k.ns, k.name)
	}

	type imgKey struct{ pool, ns, id string }
	imgs := map[imgKey]*Image{}
	for i := range replayed.Images {
		im := &replayed.Images[i]
		imgs[imgKey{im.Pool, im.Namespace, im.ID}] = im
	}
	for i := range captured.Images {
		c := &captured.Images[i]
		k := imgKey{r.Pools[c.Pool], c.Namespace, c.ID}
		g, ok := imgs[k]
		if !ok {
			add("image %s/%s/%s (%s): missing", k.pool, k.ns, c.Name, c.ID)
			continue
		}
		delete(imgs, k)
		for _, d := range compareImage(c, g, captured, replayed, r) {
			add("image %s/%s/%s: %s", k.pool, k.ns, c.Name, d)
		}
	}
	for k, im := range imgs {
		add("image %s/%s/%s (%s): not captured", k.pool, k.ns, im.Name, k.id)
	}
	sort.Strings(diffs)
	return diffs
}

// snapIdentity names a snapshot independent of ids and trash names.
func snapIdentity(s *Snapshot) string {
	return fmt.Sprintf("%s:%s size=%d protected=%s", s.Namespace, userName(s), s.Size, s.Protected)
}

func compareImage(c, g *Image, cl, gl *Layout, r *Replayed) []string {
	var d []string
	add := func(format string, args ...any) { d = append(d, fmt.Sprintf(format, args...)) }
	if c.Name != g.Name {
		add("name %q, captured %q", g.Name, c.Name)
	}
	ci, gi := c.Info, g.Info
	ci.BlockNamePrefix = translatePrefix(ci.BlockNamePrefix, r.PoolIDs)
	if ci.Size != gi.Size || ci.ObjectSize != gi.ObjectSize || ci.Order != gi.Order || ci.Format != gi.Format ||
		ci.BlockNamePrefix != gi.BlockNamePrefix || ci.StripeUnit != gi.StripeUnit || ci.StripeCount != gi.StripeCount {
		add("layout size=%d obj=%d order=%d fmt=%d prefix=%s stripe=%d/%d, captured size=%d obj=%d order=%d fmt=%d prefix=%s stripe=%d/%d",
			gi.Size, gi.ObjectSize, gi.Order, gi.Format, gi.BlockNamePrefix, gi.StripeUnit, gi.StripeCount,
			ci.Size, ci.ObjectSize, ci.Order, ci.Format, ci.BlockNamePrefix, ci.StripeUnit, ci.StripeCount)
	}
	if ci.DataPool != "" && r.Pools[ci.DataPool] != gi.DataPool || ci.DataPool == "" && gi.DataPool != "" {
		add("data pool %q, captured %q", gi.DataPool, ci.DataPool)
	}
	for _, f := range []struct {
		what   string
		c, got []string
	}{{"features", ci.Features, gi.Features}, {"op_features", ci.OpFeatures, gi.OpFeatures}, {"flags", ci.Flags, gi.Flags}} {
		a, b := slices.Sorted(slices.Values(f.c)), slices.Sorted(slices.Values(f.got))
		if !slices.Equal(a, b) {
			add("%s %v, captured %v", f.what, b, a)
		}
	}
	switch {
	case (ci.Parent == nil) != (gi.Parent == nil):
		add("parent %+v, captured %+v", gi.Parent, ci.Parent)
	case ci.Parent != nil:
		cp, gp := *ci.Parent, *gi.Parent
		if r.Pools[cp.Pool] != gp.Pool || cp.PoolNamespace != gp.PoolNamespace || cp.Image != gp.Image ||
			cp.ID != gp.ID || cp.Trash != gp.Trash || cp.Overlap != gp.Overlap {
			add("parent %+v, captured %+v", gp, cp)
		}
		cs, gs := parentSnap(cl, &cp), parentSnap(gl, &gp)
		if cs != gs {
			add("parent snapshot %q, captured %q", gs, cs)
		}
	}
	if !equalMaps(c.Metadata, g.Metadata) {
		add("metadata %v, captured %v", g.Metadata, c.Metadata)
	}
	var cs, gs []string
	for i := range c.Snapshots {
		cs = append(cs, snapIdentity(&c.Snapshots[i]))
	}
	for i := range g.Snapshots {
		gs = append(gs, snapIdentity(&g.Snapshots[i]))
	}
	if !slices.Equal(cs, gs) {
		add("snapshots %v, captured %v", gs, cs)
	}
	if (c.Trash == nil) != (g.Trash == nil) || c.Trash != nil && *c.Trash != *g.Trash {
		add("trash %+v, captured %+v", g.Trash, c.Trash)
	}
	return d
}

// parentSnap finds the identity of a clone's parent snapshot in layout l.
func parentSnap(l *Layout, p *Parent) string {
	for i := range l.Images {
		im := &l.Images[i]
		if im.Pool != p.Pool || im.Namespace != p.PoolNamespace || im.ID != p.ID {
			continue
		}
		for j := range im.Snapshots {
			if im.Snapshots[j].Name == p.Snapshot {
				return snapIdentity(&im.Snapshots[j])
			}
		}
	}
	return "?" + p.Snapshot
}

// translatePrefix re-points a data-pool image's object prefix,
// rbd_data.<pool id>.<image id>, at the target pool.
func translatePrefix(p string, poolIDs map[int64]int64) string {
	rest, ok := strings.CutPrefix(p, "rbd_data.")
	if !ok {
		return p
	}
	pool, id, ok := strings.Cut(rest, ".")
	if !ok {
		return p
	}
	n, err := strconv.ParseInt(pool, 10, 64)
	if err != nil {
		return p
	}
	if to, ok := poolIDs[n]; ok {
		return "rbd_data." + strconv.FormatInt(to, 10) + "." + id
	}
	return p
}
