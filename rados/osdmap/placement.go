package osdmap

import (
	"github.com/csi-gorbd/csi-gorbd/rados/crush"
)

// ItemNone marks an empty position in an erasure-coded pg's sets.
const ItemNone = crush.ItemNone

// Mapping is where a pg lives. Slices alias the Mapping's own storage.
type Mapping struct {
	PG            PG // the pg (folded into pg_num)
	Raw           []int32
	RawPrimary    int32
	Up            []int32
	UpPrimary     int32
	Acting        []int32
	ActingPrimary int32
	PlacementSeed uint32
	Erasure       bool // positions are shards; ItemNone holes are kept
}

// PrimaryShard is the erasure-code shard the acting primary holds (its
// index in Acting), or -1 (NO_SHARD) for replicated pools or no primary.
func (mp *Mapping) PrimaryShard() int {
	if !mp.Erasure {
		return -1
	}
	for i, o := range mp.Acting {
		if o == mp.ActingPrimary && o != ItemNone {
			return i
		}
	}
	return -1
}

// ObjectToPG maps an object (name, optional locator key, namespace) in a
// pool to its raw pg (seed not yet folded into pg_num) as
// OSDMap::object_locator_to_pg does.
func (m *OSDMap) ObjectToPG(pool int64, name, key, ns string) (PG, error) {
	p := m.Pools[pool]
	if p == nil {
		return PG{}, ErrNoPool
	}
	if key == "" {
		key = name
	}
	return PG{Pool: pool, Seed: p.HashKey(key, ns)}, nil
}

func (m *OSDMap) workspace() *crush.Workspace {
	if w, ok := m.workspaces.Get().(*crush.Workspace); ok {
		return w
	}
	return m.Crush.NewWorkspace()
}

// pgToRawOSDs is _pg_to_raw_osds: CRUSH with the pool's rule, size and
// choose_args, then nonexistent OSDs removed.
func (m *OSDMap) pgToRawOSDs(p *Pool, pg PG, raw []int32) ([]int32, uint32) {
	pps := p.RawPGToPPS(pg)
	size := int(p.Size)
	if cap(raw) < size {
		raw = make([]int32, size)
	}
	raw = raw[:size]
	ws := m.workspace()
	n := m.Crush.DoRule(int(p.CrushRule), int32(pps), raw, m.OSDWeight, m.Crush.ChooseArgsFor(pg.Pool), ws)
	m.workspaces.Put(ws)
	raw = raw[:n]
	return m.removeNonexistent(p, raw), pps
}

func (m *OSDMap) removeNonexistent(p *Pool, osds []int32) []int32 {
	if p.CanShiftOSDs() {
		j := 0
		for _, o := range osds {
			if m.Exists(o) {
				osds[j] = o
				j++
			}
		}
		return osds[:j]
	}
	for i, o := range osds {
		if !m.Exists(o) {
			osds[i] = ItemNone
		}
	}
	return osds
}

func pickPrimary(osds []int32) int32 {
	for _, o := range osds {
		if o != ItemNone {
			return o
		}
	}
	return -1
}

// markedOut is the "target is marked out" test of _apply_upmap.
func (m *OSDMap) markedOut(osd int32) bool {
	return osd != ItemNone && osd >= 0 && osd < m.MaxOSD && m.OSDWeight[osd] == 0
}

// applyUpmap is _apply_upmap: pg_upmap, then pg_upmap_items, then
// pg_upmap_primaries, on the raw set.
func (m *OSDMap) applyUpmap(p *Pool, rawPG PG, raw []int32) []int32 {
	pg := p.RawPGToPG(rawPG)
	if um, ok := m.PGUpmap[pg]; ok {
		use := true
		for _, o := range um {
			if m.markedOut(o) {
				use = false
				break
			}
		}
		if use {
			raw = append(raw[:0], um...)
		}
		// An ignored pg_upmap returns before the items and primaries are
		// considered, exactly like Ceph's early return.
		if !use {
			return raw
		}
	}
	for _, it := range m.PGUpmapItems[pg] {
		exists := false
		pos := -1
		for i, o := range raw {
			if o == it.To {
				exists = true
				break
			}
			if o == it.From && pos < 0 && !m.markedOut(it.To) {
				pos = i
			}
		}
		if !exists && pos >= 0 {
			raw[pos] = it.To
		}
	}
	if np, ok := m.PGUpmapPrimaries[pg]; ok {
		if np != ItemNone && np >= 0 && np < m.MaxOSD && m.OSDWeight[np] != 0 {
			for i := 1; i < len(raw); i++ {
				if raw[i] == np {
					raw[i] = raw[0]
					raw[0] = np
					break
				}
			}
		}
	}
	return raw
}

// rawToUp is _raw_to_up_osds.
func (m *OSDMap) rawToUp(p *Pool, raw, up []int32) []int32 {
	up = up[:0]
	if p.CanShiftOSDs() {
		for _, o := range raw {
			if m.IsUp(o) {
				up = append(up, o)
			}
		}
		return up
	}
	for _, o := range raw {
		if m.IsUp(o) {
			up = append(up, o)
		} else {
			up = append(up, ItemNone)
		}
	}
	return up
}

// applyPrimaryAffinity is _apply_primary_affinity.
func (m *OSDMap) applyPrimaryAffinity(seed uint32, p *Pool, osds []int32, primary int32) int32 {
	if m.PrimaryAffinity == nil {
		return primary
	}
	any := false
	for _, o := range osds {
		if o != ItemNone && m.PrimaryAffinity[o] != DefaultPrimaryAffinity {
			any = true
			break
		}
	}
	if !any {
		return primary
	}
	pos := -1
	for i, o := range osds {
		if o == ItemNone {
			continue
		}
		a := m.PrimaryAffinity[o]
		if a < maxPrimaryAffinity && crush.Hash2(crush.HashRjenkins1, seed, uint32(o))>>16 >= a {
			if pos < 0 {
				pos = i
			}
		} else {
			pos = i
			break
		}
	}
	if pos < 0 {
		return primary
	}
	primary = osds[pos]
	if p.CanShiftOSDs() && pos > 0 {
		copy(osds[1:pos+1], osds[:pos])
		osds[0] = primary
	}
	return primary
}

// tempOSDs is _get_temp_osds.
func (m *OSDMap) tempOSDs(p *Pool, rawPG PG, temp []int32) ([]int32, int32) {
	pg := p.RawPGToPG(rawPG)
	temp = temp[:0]
	if t, ok := m.PGTemp[pg]; ok {
		for _, o := range t {
			if !m.IsUp(o) {
				if p.CanShiftOSDs() {
					continue
				}
				temp = append(temp, ItemNone)
			} else {
				temp = append(temp, o)
			}
		}
	}
	primary := int32(-1)
	if pt, ok := m.PrimaryTemp[pg]; ok {
		primary = pt
	} else if len(temp) > 0 {
		primary = pickPrimary(temp)
	}
	return temp, primary
}

// MapPG computes the raw, up and acting sets of a pg as
// pg_to_raw_osds + pg_to_up_acting_osds do. The pg's seed may be raw (it is
// folded into pg_num). mp's slices are reused when large enough, so a
// caller mapping many pgs can avoid allocation.
func (m *OSDMap) MapPG(pg PG, mp *Mapping) error {
	p := m.Pools[pg.Pool]
	if p == nil {
		*mp = Mapping{PG: pg, RawPrimary: -1, UpPrimary: -1, ActingPrimary: -1}
		return ErrNoPool
	}
	mp.PG = p.RawPGToPG(pg)
	mp.Erasure = !p.CanShiftOSDs()
	mp.Erasure = !p.CanShiftOSDs()
	raw, pps := m.pgToRawOSDs(p, pg, mp.Raw)
	mp.Raw = raw
	mp.RawPrimary = pickPrimary(raw)
	mp.PlacementSeed = pps

	// _apply_upmap works on its own copy of raw.
	buf := append(mp.Up[:0], raw...)
	buf = m.applyUpmap(p, pg, buf)
	up := m.rawToUp(p, buf, buf)
	mp.Up = up
	mp.UpPrimary = m.applyPrimaryAffinity(pps, p, up, pickPrimary(up))

	acting, ap := m.tempOSDs(p, pg, mp.Acting)
	if len(acting) == 0 {
		acting = append(acting[:0], up...)
		if ap == -1 {
			ap = mp.UpPrimary
		}
	}
	mp.Acting = acting
	mp.ActingPrimary = ap
	return nil
}

// MapObject maps an object to its pg and OSDs.
func (m *OSDMap) MapObject(pool int64, name, key, ns string, mp *Mapping) error {
	pg, err := m.ObjectToPG(pool, name, key, ns)
	if err != nil {
		return err
	}
	return m.MapPG(pg, mp)
}
